"""End to end with the real `dlforge` command and a real server process: train -> promote ->
serve -> a fine-tuned worse candidate -> the gate refuses it -> promote a better one -> the
server follows -> rollback -> the server follows back."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e
TINY = {"name": "dg", "data": {"source": "builtin", "name": "digits"},
        "model": {"type": "mlp", "hidden": [32]},
        "train": {"epochs": 4, "batch_size": 64, "lr": 0.01, "num_threads": 1},
        "evaluate": {"baseline": False, "gate": {"conditions": ["accuracy >= champion - 0.01"]}}}


def cli(workspace: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DLFORGE_WORKSPACE": str(workspace), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "dlforge", *args], capture_output=True, text=True,
                          env=env, timeout=300, cwd=ROOT)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def served_version(port: int, x: list) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/models/dg@production/predict",
        data=json.dumps({"inputs": x}).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["version"]


def until(port: int, x: list, version: int, seconds: float = 20.0) -> int:
    deadline = time.monotonic() + seconds
    seen = served_version(port, x)
    while seen != version and time.monotonic() < deadline:
        time.sleep(0.1)
        seen = served_version(port, x)
    return seen


@contextlib.contextmanager
def serving(ws: Path, x: list) -> Iterator[int]:
    """A `dlforge serve` process of dg@production on a free port, up and serving version 1."""
    port = free_port()
    env = {**os.environ, "DLFORGE_WORKSPACE": str(ws)}
    server = subprocess.Popen([sys.executable, "-m", "dlforge", "serve", "--port", str(port),
                               "--model", "dg@production"], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                assert served_version(port, x) == 1
                break
            except OSError:
                time.sleep(0.2)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_train_promote_serve_refuse_promote_rollback(tmp_path):
    ws, config = tmp_path / "ws", tmp_path / "dg.yaml"
    config.write_text(yaml.safe_dump(TINY))
    first = cli(ws, "run", str(config), "--quiet")
    assert first.returncode == 0, first.stderr
    assert "gate:   promoted to production" in first.stdout
    from dlforge.config import load_config
    from dlforge.data.prepare import load_and_split

    x = load_and_split(load_config(TINY))[1].test.x[:2].tolist()
    with serving(ws, x) as port:
        worse = cli(ws, "finetune", str(config), "--from", "dg@production", "--quiet",
                    "--set", "train.lr=1.0", "--set", "transfer.freeze_epochs=0",
                    "--set", "transfer.backbone_lr_mult=1")
        assert worse.returncode == 0, worse.stderr
        assert "gate:   not promoted to production: failed accuracy >= champion - 0.01" in worse.stdout
        assert served_version(port, x) == 1
        refused = cli(ws, "promote", "dg", "--candidate", "2")
        assert refused.returncode == 1 and refused.stderr.startswith("error: promotion refused: accuracy ")
        # the lr-1.0 model predicts about one class: ~0.1 on ten balanced classes, so bound below it
        better = cli(ws, "promote", "dg", "--candidate", "2", "--require", "accuracy >= 0.05")
        assert better.returncode == 0, better.stderr
        assert until(port, x, 2) == 2
        back = cli(ws, "rollback", "dg", "--reason", "e2e")
        assert back.stdout == "dg@production: version 2 -> version 1 (rolled back)\n"
        assert until(port, x, 1) == 1
    history = cli(ws, "models", "history", "dg").stdout
    events = [line.split()[2] for line in history.splitlines() if line.startswith("20")][:7]
    assert events == ["registered", "promoted", "registered", "promotion_refused",
                      "promotion_refused", "promoted", "rolled_back"]
