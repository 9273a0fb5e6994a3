# The two commands a newcomer needs: `make demo` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# One hash seed for every process we start, so that string hashing (set and dict order of
# strings) is the same in every run. glibc's malloc thresholds are set at run time by
# dlforge.runtime (see docs/performance.md).
export PYTHONHASHSEED := 0

.PHONY: demo test test-fast lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,postgres,export]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/dlforge run

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not e2e and not slow"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/data_pipeline.py
	$(BIN)/python benchmarks/trainer_overhead.py

clean:
	rm -rf $(VENV) dlforge-workspace build *.egg-info src/*.egg-info
