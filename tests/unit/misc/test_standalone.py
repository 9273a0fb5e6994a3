"""The repository stands alone: nothing it tracks reads a folder beside it or a machine's path."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CHECKED = ["src", "tests", "examples", "scripts", "benchmarks", ".ci", "Makefile",
           "pyproject.toml", "README.md"]
# The development machine's data folder beside the clone (a parent-relative path to it, or its
# name joined on as a path component) and the machine's absolute working folder. The names are
# spelled in pieces so that this file, scanned like every other, holds neither.
FOLDER, MACHINE = "sha" + "red", "/" + "work/"
OUTSIDE = re.compile(rf"\.\./{FOLDER}|[\"']{FOLDER}[\"'/]|(?<![\w.~-]){MACHINE}")


def tracked_files() -> list[Path]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout to list the tracked files")
    out = subprocess.run(["git", "ls-files", "-z", "--", *CHECKED], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    return [ROOT / name for name in out.split("\0") if name]


def test_no_tracked_file_points_outside_the_repository():
    files = tracked_files()
    assert len(files) > 50 and ROOT / "examples" / "sms_spam.yaml" in files
    hits = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
            for path in files
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
            if OUTSIDE.search(line)]
    assert hits == []


@pytest.mark.parametrize(("line", "found"), [
    (f"  path: ../../{FOLDER}/data/sms-spam.csv", True),
    (f'SMS = "{MACHINE}{FOLDER}/data/sms-spam.csv"', True),
    (f'SMS = ROOT.parent / "{FOLDER}" / "data" / "sms-spam.csv"', True),
    (f"open('{FOLDER}/data/x.npz')", True),
    ("  path: data/sms-spam.csv", False),
    (f"see https://example.org{MACHINE}x and .{MACHINE}y", False),
    (f'"""Console output {FOLDER} by the commands."""', False),
])
def test_the_pattern_finds_outside_paths(line, found):
    assert bool(OUTSIDE.search(line)) is found
