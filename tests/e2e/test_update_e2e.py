"""End to end with the real `dlforge` command and a server process, as issue 12 asks: train ->
promote -> serve -> update (through the gate, the server follows) -> the gate refuses a worse
update (the server stays) -> rollback (the server follows back). Digits, a few epochs."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from sklearn.datasets import load_digits
from test_lifecycle_e2e import TINY, cli, served_version, serving, until

pytestmark = pytest.mark.e2e


def shifted_digits(path) -> None:
    """600 digits shifted one pixel right: fresh samples none of the models trained on."""
    d = load_digits()
    x = np.roll(np.rint(d.images * (255 / 16)).astype(np.uint8), 1, axis=2)[:600, None]
    np.savez(path, x_train=x, y_train=d.target[:600])


def test_train_promote_serve_update_refuse_rollback(tmp_path):
    ws, config, fresh = tmp_path / "ws", tmp_path / "dg.yaml", tmp_path / "fresh.npz"
    config.write_text(yaml.safe_dump({**TINY, "update": {"max_forgetting": 0.05},
                                      "evaluate": {"baseline": False, "gate": {
                                          "conditions": ["accuracy >= champion - 0.05"]}}}))
    shifted_digits(fresh)
    first = cli(ws, "run", str(config), "--quiet")
    assert first.returncode == 0, first.stderr
    assert "gate:   promoted to production" in first.stdout
    x = np.load(fresh)["x_train"][:2].tolist()
    with serving(ws, x) as port:
        update = cli(ws, "update", "dg@production", "--data", str(fresh), "--quiet")
        assert update.returncode == 0, update.stdout + update.stderr
        assert update.stdout.startswith("update: dg@2 from dg@1: 420 new + 420 replayed samples")
        assert update.stdout.endswith("dg@production -> version 2\n")
        assert until(port, x, 2) == 2
        worse = cli(ws, "update", "dg@production", "--data", str(fresh), "--quiet",
                    "--set", "update.lr=5", "--set", "update.replay_ratio=0")
        assert worse.returncode == 1 and worse.stderr.startswith("error: update refused: accuracy ")
        assert served_version(port, x) == 2
        back = cli(ws, "rollback", "dg", "--reason", "e2e")
        assert back.stdout == "dg@production: version 2 -> version 1 (rolled back)\n"
        assert until(port, x, 1) == 1
    history = cli(ws, "models", "history", "dg").stdout
    events = [line.split()[2] for line in history.splitlines() if line.startswith("20")]
    assert events == ["registered", "promoted", "registered", "promoted", "registered",
                      "promotion_refused", "rolled_back"]
