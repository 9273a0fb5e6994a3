"""The README's "In Python" snippet runs as written, from the repository's root, in a fresh
workspace: the whole digits run (its shipped config, early stopping), then predictions."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def python_snippet(after: str) -> str:
    """The first ```python block of README.md after the line `after`."""
    text = (ROOT / "README.md").read_text(encoding="utf-8").split(f"\n{after}\n", 1)[1]
    return text.split("```python\n", 1)[1].split("\n```", 1)[0]


def test_the_in_python_snippet_runs_as_written(tmp_path):
    snippet = python_snippet("In Python:")
    assert "dlforge.run(" in snippet and "predictor.predict(" in snippet
    # the bare expression lines print nothing in a script: print them to check what they return
    lines = [f"print(repr({line.split('#')[0].strip()}))" if line.startswith("predictor.predict(")
             else line for line in snippet.splitlines()]
    env = {**os.environ, "DLFORGE_WORKSPACE": str(tmp_path / "ws")}
    proc = subprocess.run([sys.executable, "-c", "\n".join(lines)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()[-3:]  # after the epoch lines
    headline, ref, report = out[0].rsplit(" ", 2)
    assert headline.startswith("[('accuracy', ") and ref == "digits@1"
    assert Path(report).is_file() and Path(report).is_relative_to(tmp_path / "ws")
    every, top2 = ast.literal_eval(out[1]), ast.literal_eval(out[2])
    assert [p["label"] for p in every] == ["0", "1", "2", "3"]  # load_digits' first four
    assert [len(p["scores"]) for p in every] == [10] * 4 and [len(p["scores"]) for p in top2] == [2] * 4
