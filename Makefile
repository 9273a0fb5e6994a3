# The two commands a newcomer needs: `make demo` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# One hash seed for every process we start, so that string hashing (set and dict order of
# strings) is the same in every run. glibc's malloc thresholds are set at run time by
# dlforge.runtime (see docs/performance.md).
export PYTHONHASHSEED := 0

.PHONY: demo test test-fast lint bench clean upgrade-deps

# Installs are reproducible (README, "Dependencies"): every package of `.[dev,postgres,export]`
# except torch comes from requirements-lock.txt, pinned with hashes; torch is the CPU wheel pinned
# in constraints.txt (no hash: the CPU build's wheel is not the CUDA one PyPI has for Linux);
# dlforge itself is built with the locked setuptools. `pip check` proves nothing is missing.
LOCK := requirements-lock.txt
# torch's dependencies that only its CUDA build on PyPI has; the lock leaves them out.
CUDA_ONLY := cuda-bindings cuda-toolkit nvidia-cudnn-cu13 nvidia-cusparselt-cu13 \
	nvidia-nccl-cu13 nvidia-nvshmem-cu13 triton

$(STAMP): pyproject.toml constraints.txt $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -c constraints.txt torch
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

# Refresh the lock to the newest releases the ranges in pyproject.toml allow (torch stays at
# constraints.txt's release), for Python 3.10 and later on any platform, then run the tests.
# uv resolves against PyPI, whose torch of the same release has the CPU wheel's dependencies
# plus the CUDA ones in CUDA_ONLY.
upgrade-deps: $(STAMP)
	sed 's/+cpu//' constraints.txt > $(VENV)/torch-pin.txt
	printf '%s\n' $(CUDA_ONLY) > $(VENV)/cuda-only.txt
	UV_PYTHON_DOWNLOADS=never $(BIN)/uv pip compile pyproject.toml --quiet \
	  --extra dev --extra postgres --extra export --universal --python-version 3.10 \
	  --generate-hashes --upgrade --constraints $(VENV)/torch-pin.txt \
	  --excludes $(VENV)/cuda-only.txt --no-emit-package torch \
	  --custom-compile-command 'make upgrade-deps' --output-file $(LOCK)
	$(MAKE) test

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
