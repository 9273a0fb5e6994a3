""".ci/run tests a fresh clone of HEAD and fails unless tests ran and passed.

Each case copies .ci/run into a scratch repository whose `make test` runs pytest on one tiny
test file (and whose PostgreSQL script fails, as on a machine without it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
GIT = ["git", "-c", "user.name=ci", "-c", "user.email=ci@example.org"]
# The clone must sit alone in an empty folder: nothing beside it, not the checkout itself.
ALONE = """from pathlib import Path

def test_runs_alone_in_a_fresh_clone():
    assert Path.cwd().name == "dlforge" and [p.name for p in Path.cwd().parent.iterdir()] == ["dlforge"]
"""


def scratch_repo(tmp_path: Path, test_file: str | None, recipe_prefix: str = "") -> Path:
    repo = tmp_path / "checkout"
    (repo / ".ci").mkdir(parents=True)
    (repo / "scripts").mkdir()
    (repo / "tests").mkdir()
    shutil.copy(ROOT / ".ci" / "run", repo / ".ci" / "run")
    (repo / "scripts" / "start_postgres.sh").write_text("exit 1\n")
    (repo / "Makefile").write_text(
        f"test:\n\t{recipe_prefix}{sys.executable} -m pytest -q -p no:cacheprovider tests\n")
    (repo / "tests" / "helper.py").write_text("X = 1\n")
    if test_file is not None:
        (repo / "tests" / "test_one.py").write_text(test_file)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*GIT, "-C", str(repo), "add", "-A"], check=True)
    subprocess.run([*GIT, "-C", str(repo), "commit", "-qm", "scratch"], check=True)
    return repo


@pytest.mark.skipif(shutil.which("git") is None or shutil.which("make") is None,
                    reason="needs git and make")
@pytest.mark.parametrize(("test_file", "prefix", "status", "last_line"), [
    (ALONE, "", 0, "make test passed: 1 tests"),
    ("def test_fails():\n    assert False\n", "", 2, "error: make test failed (exit 2) after 1 tests"),
    (None, "", 2, "error: pytest ran no tests (no JUnit report, or one with 0 tests)"),
    # a recipe whose status make ignores (`-`): the empty run still fails CI
    (None, "-", 1, "error: pytest ran no tests (no JUnit report, or one with 0 tests)"),
], ids=["passes", "fails", "no-tests", "no-tests-status-ignored-by-make"])
def test_ci_run_status(tmp_path, test_file, prefix, status, last_line):
    repo = scratch_repo(tmp_path, test_file, prefix)
    (repo / "uncommitted.txt").write_text("not in HEAD\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    proc = subprocess.run(["bash", str(repo / ".ci" / "run")], capture_output=True, text=True,
                          env={**env, "TMPDIR": str(tmp_path)}, timeout=120)
    assert proc.returncode == status, proc.stdout + proc.stderr
    assert (proc.stderr if status else proc.stdout).splitlines()[-1] == last_line
    assert "note: the checkout has uncommitted changes; CI tests commit " in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkout"]  # the clone is removed
