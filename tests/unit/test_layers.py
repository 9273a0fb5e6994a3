"""Architecture rules of DESIGN.md that a test can hold."""

from __future__ import annotations

from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "dlforge"
ENTRY_POINT_NAMES = ("dlforge.serve", "dlforge.cli", "dlforge.ui", "fastapi", "typer", "uvicorn")


def test_core_never_imports_entry_points():
    offenders = []
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC).parts
        if parts[0] in ("serve", "cli", "ui") or path.name == "__main__.py":
            continue
        text = path.read_text()
        offenders += [f"{path.relative_to(SRC)}: {name}" for name in ENTRY_POINT_NAMES
                      if f"import {name}" in text or f"from {name}" in text]
    assert offenders == []


def test_only_the_loop_steps_an_optimizer():
    steppers = sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
                      if "optimizer.step(" in p.read_text() or ".backward(" in p.read_text())
    assert steppers in ([], ["train/loop.py"]), steppers


def test_only_the_cli_imports_the_dashboard():
    importers = sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
                       if p.relative_to(SRC).parts[0] not in ("ui", "cli")
                       and "dlforge.ui" in p.read_text())
    assert importers == []
