"""Kill a real `dlforge run` with SIGKILL at each named fault point (`dlforge.faults`), then
resume it: the store stays sound, and the resumed run ends with exactly one version, the alias
moved once and the weights of an uninterrupted run.

Set DLFORGE_RELIABILITY_TABLE=path to write the outcome table (benchmarks/RESULTS.md,
"Reliability") from this run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from dlforge.cli import main
from dlforge.pipeline import run
from dlforge.registry import Store
from dlforge.registry.integrity import check_store

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
CONFIG = {
    "name": "tiny",
    "data": {"source": "builtin", "name": "breast_cancer"},
    "model": {"type": "mlp", "hidden": [8]},
    "train": {"epochs": 3, "batch_size": 64, "num_threads": 1},
    "evaluate": {"baseline": False},
    "registry": {"alias": "production"},
}
# DLFORGE_FAULT_AT -> what the kill leaves: (description, temporary files?, bundle staged?,
# registered versions, aliases), checked before resuming
NOTHING = (False, [], {})
POINTS = {
    "mid-epoch@2": ("epoch 0 checkpointed, epoch 1 half done", False, *NOTHING),
    "checkpoint-write@3": ("epoch 1 checkpoint half written", True, *NOTHING),
    "mid-report": ("report half written", True, *NOTHING),
    "bundle-saved": ("bundle staged, not registered", False, True, [], {}),
    "registered": ("version 1 committed, alias not moved", False, False, [1], {}),
    "alias-moved": ("alias moved, run not completed", False, False, [1], {"production": 1}),
}
RESULTS: dict[str, list[str]] = {}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run: its weights, and its workspace."""
    workspace = tmp_path_factory.mktemp("reference")
    result = run(CONFIG, workspace=workspace, progress=False)
    return load_file(result.bundle_path / "weights.safetensors"), workspace, result.run_id


@pytest.fixture(scope="module", autouse=True)
def reliability_table():
    yield
    target = os.environ.get("DLFORGE_RELIABILITY_TABLE")
    if target and RESULTS:
        head = ["fault point", "state at the kill", "store check after kill", "shown as", "resume",
                "versions", "alias moves", "weights = uninterrupted"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join([f"`{p}`", *RESULTS[p]]) + " |" for p in POINTS if p in RESULTS]
        Path(target).write_text("\n".join(lines) + "\n")


def _kill_at(point: str, config: Path, workspace: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DLFORGE_FAULT_AT": point, "DLFORGE_WORKSPACE": str(workspace)}
    return subprocess.run([sys.executable, "-m", "dlforge", "run", str(config), "--quiet"],
                          env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)


def _temporaries(run_dir: Path) -> list[str]:
    return sorted(p.name for p in run_dir.rglob(".*.tmp"))


@pytest.mark.parametrize("point", list(POINTS))
def test_a_killed_run_resumes_to_one_version_one_alias_move_and_the_same_weights(
        point, reference, tmp_path):
    config, workspace = tmp_path / "tiny.yaml", tmp_path / "ws"
    config.write_text(yaml.safe_dump(CONFIG))
    proc = _kill_at(point, config, workspace)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    store = Store.open(workspace)
    (killed,) = store.list_runs()
    run_dir = workspace / "artifacts" / "runs" / killed.id
    tiny = {m.name: m for m in store.list_models()}.get("tiny")
    assert (bool(_temporaries(run_dir)), (run_dir / "bundle").is_dir(),
            list(range(1, tiny.latest_version + 1)) if tiny else [],
            tiny.aliases if tiny else {}) == POINTS[point][1:]
    check = check_store(store)
    assert (check.problems, check.interrupted) == ([], [killed.id])
    assert (killed.status, store.liveness(killed)) == ("running", "interrupted")

    resumed = run(workspace=workspace, resume=killed.id, progress=False)

    assert (resumed.run_id, resumed.model_ref) == (killed.id, "tiny@1")
    assert [(v.version, v.run_id, v.aliases) for v in store.list_versions("tiny")] == [
        (1, killed.id, ("production",))]
    assert [(e.event, e.version) for e in store.history("tiny")] == [("registered", 1), ("alias_set", 1)]
    assert store.get_run(killed.id).status == "completed"
    assert check_store(store) == type(check)([], [])
    assert _temporaries(run_dir) == []
    weights = load_file(resumed.bundle_path / "weights.safetensors")
    want = reference[0]
    assert weights.keys() == want.keys()
    assert all(torch.equal(weights[k], want[k]) for k in want)
    RESULTS[point] = [POINTS[point][0], "ok", "interrupted", "completed", "1", "1", "yes"]


def test_the_cli_refuses_to_resume_a_completed_run(reference, capsys):
    _, workspace, run_id = reference
    assert main(["-w", str(workspace), "run", "--resume", run_id, "--quiet"]) == 2
    assert capsys.readouterr().err == (
        f"error: resume: run {run_id} already completed and registered tiny@1; there is nothing "
        "to resume; start a new run with `dlforge run CONFIG`\n")
    assert [v.version for v in Store.open(workspace).list_versions("tiny")] == [1]
