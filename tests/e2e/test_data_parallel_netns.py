"""Two "machines" in two network namespaces joined by a veth pair: `dlforge train --nnodes 2
--node-rank R --rdzv-endpoint 10.x.0.1:PORT` in each meet at the static rendezvous node 0
hosts, and gloo trains across the link. Needs root and iproute2; skipped otherwise."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_data_parallel_cli import CONFIG

from dlforge.registry import Store

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def namespaces():
    """Two namespaces, 10.77.N.1 and 10.77.N.2 on a veth pair; removed afterwards."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 (ip netns)")
    tag, net = os.getpid() % 10000, os.getpid() % 250
    names = [f"dlf{tag}a", f"dlf{tag}b"]
    addrs = [f"10.77.{net}.1", f"10.77.{net}.2"]
    links = [f"dlf{tag}va", f"dlf{tag}vb"]
    try:
        for name in names:
            _ip("netns", "add", name)
        _ip("link", "add", links[0], "type", "veth", "peer", "name", links[1])
        for name, link, addr in zip(names, links, addrs, strict=True):
            _ip("link", "set", link, "netns", name)
            _ip("-n", name, "addr", "add", f"{addr}/24", "dev", link)
            _ip("-n", name, "link", "set", link, "up")
            _ip("-n", name, "link", "set", "lo", "up")
    except subprocess.CalledProcessError as exc:
        for name in names:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        pytest.skip(f"cannot create network namespaces here: {exc.stderr.decode().strip()}")
    yield list(zip(names, links, addrs, strict=True))
    for name in names:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def test_two_nodes_in_two_network_namespaces_train_one_model(tmp_path, namespaces):
    config, ws = tmp_path / "dp.yaml", tmp_path / "ws"
    config.write_text(yaml.safe_dump(CONFIG))
    endpoint = f"{namespaces[0][2]}:29400"
    nodes = [subprocess.Popen(
        ["ip", "netns", "exec", name, "env", f"GLOO_SOCKET_IFNAME={link}", sys.executable, "-m",
         "dlforge", "-w", str(ws), "train", str(config), "--nnodes", "2", "--node-rank", str(rank),
         "--rdzv-endpoint", endpoint, "--timeout", "60", "--quiet"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for rank, (name, link, _) in enumerate(namespaces)]
    outs = [node.communicate(timeout=300) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outs
    assert "model:  dp@1" in outs[0][0] and outs[1] == ("", "")  # node 1 writes nothing
    (run,) = Store.open(ws).list_runs()
    assert (run.status, [row["epoch"] for row in run.history]) == ("completed", [0, 1, 2])
