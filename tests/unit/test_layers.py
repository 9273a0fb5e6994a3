"""Architecture rules of DESIGN.md and docs/architecture.md that a test can hold: the layers'
import DAG, entry points nothing imports, one loop that steps an optimizer."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "dlforge"
ENTRY_POINT_NAMES = ("dlforge.serve", "dlforge.cli", "dlforge.ui", "fastapi", "typer", "uvicorn")

_BASE = {"errors", "dlforge", "faults"}  # dlforge: the root package (version; lazy API)
_CORE = _BASE | {"atomic", "workspace", "runtime", "config"}
_STAGES = _CORE | {"data", "models", "train", "evaluate", "report", "registry"}
# What each top-level module or package of dlforge may import (itself always), from the layer
# diagram of docs/architecture.md: imports point downward only.
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "dlforge": set(),
    "faults": set(),  # the fault-injection testing hook: imports nothing of dlforge
    "atomic": {"errors"},
    "workspace": {"errors"},
    "runtime": {"errors"},
    "config": {"errors"},
    "data": {"errors", "config", "atomic", "workspace"},
    "models": {"errors", "config", "data"},
    "train": {"errors", "faults", "config", "atomic", "runtime", "data", "models"},
    "evaluate": {"errors", "config", "data", "models"},
    "report": {"errors", "faults", "config", "atomic", "evaluate"},
    "registry": _CORE | {"data", "models"},
    "candidate": _CORE | {"data", "models", "train", "evaluate"},
    "export": _CORE | {"data", "models", "evaluate", "registry"},
    "tune": _STAGES | {"candidate"},
    "lifecycle": _STAGES | {"candidate"},
    "review": _STAGES | {"candidate"},
    "pipeline": _STAGES | {"candidate", "tune", "lifecycle", "review"},
    "serve": _CORE | {"data", "models", "registry", "lifecycle"},
    "cli": _STAGES | {"candidate", "tune", "pipeline", "export", "serve", "ui", "lifecycle", "review"},
    "ui": _STAGES | {"candidate", "tune", "pipeline", "export", "serve"},
    "__main__": {"cli"},
}


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, dlforge module) of every import in a file: top level, in functions and under
    TYPE_CHECKING alike."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.lineno, node.module)]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
    return [(line, name) for line, name in found if name == "dlforge" or name.startswith("dlforge.")]


def layer_of(module: str) -> str:
    """`dlforge.train.loop` -> `train`; `dlforge` -> `dlforge`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "dlforge"


def upward_imports(src: Path) -> tuple[int, list[str]]:
    """How many imports between dlforge's layers a scan of `src` found, and those the DAG
    forbids (or from a layer it does not know), as `file:line: layer -> layer (module)`."""
    edges, offenders = 0, []
    for path in sorted(src.rglob("*.py")):
        rel = path.relative_to(src)
        here = rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 else rel.stem
        here = "dlforge" if here == "__init__" else here
        for line, module in imports_of(path):
            there = layer_of(module)
            if there == here:
                continue
            edges += 1
            if here not in ALLOWED or there not in ALLOWED[here]:
                offenders.append(f"{rel}:{line}: {here} -> {there} ({module})")
    return edges, offenders


def test_every_import_points_down_the_layers():
    edges, offenders = upward_imports(SRC)
    assert edges > 150  # the scan read the package; an empty scan must not pass
    assert offenders == []


def test_the_layer_check_catches_an_upward_import(tmp_path):
    pkg = tmp_path / "dlforge"
    (pkg / "models").mkdir(parents=True)
    (pkg / "models" / "mlp.py").write_text("from dlforge.config.schema import MLPConfig\n")
    (pkg / "models" / "bad.py").write_text(
        "def f():\n    from dlforge.pipeline import run  # upward, inside a function\n")
    (pkg / "nowhere").mkdir()
    (pkg / "nowhere" / "x.py").write_text("import dlforge.errors\n")
    edges, offenders = upward_imports(pkg)
    assert edges == 3
    assert offenders == ["models/bad.py:2: models -> pipeline (dlforge.pipeline)",
                         "nowhere/x.py:1: nowhere -> errors (dlforge.errors)"]


def test_the_dag_has_no_cycle_and_names_every_package():
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    modules = {p.stem for p in SRC.glob("*.py")} - {"__init__"}
    assert packages | modules | {"dlforge"} == set(ALLOWED)
    seen: dict[str, str] = {}

    def visit(layer: str) -> None:  # depth-first; "open" twice means a cycle
        assert seen.get(layer) != "open", f"cycle through {layer}"
        if layer not in seen:
            seen[layer] = "open"
            for below in ALLOWED[layer]:
                visit(below)
            seen[layer] = "done"

    for layer in ALLOWED:
        visit(layer)


def test_core_never_imports_entry_points():
    offenders = []
    scanned = 0
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC).parts
        if parts[0] in ("serve", "cli", "ui") or path.name == "__main__.py":
            continue
        scanned += 1
        text = path.read_text()
        offenders += [f"{path.relative_to(SRC)}: {name}" for name in ENTRY_POINT_NAMES
                      if f"import {name}" in text or f"from {name}" in text]
    assert scanned > 100
    assert offenders == []


def test_only_the_loops_step_strategies_step_an_optimizer():
    steppers = sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
                      if "optimizer.step(" in p.read_text() or ".backward(" in p.read_text())
    assert steppers == ["train/pipeline_step.py", "train/steps.py"]


def test_only_the_cli_imports_the_dashboard():
    importers = sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
                       if p.relative_to(SRC).parts[0] not in ("ui", "cli")
                       and "dlforge.ui" in p.read_text())
    assert importers == []
