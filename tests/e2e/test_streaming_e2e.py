"""End to end: `dlforge data shard` then `dlforge run` streaming the shards trains exactly as
the in-memory run of the same config and seed, in one process and in two (torchrun, DDP: 1,168
training samples over 2 ranks, reader processes in each); a missing shard stops the run before
it is recorded."""

from __future__ import annotations

import json

import pytest
from tests.e2e.test_cli_e2e import cli

from dlforge.registry import Store

pytestmark = pytest.mark.e2e

EPOCHS = ("--set", "train.epochs=3", "--quiet")


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits") / "shards"
    proc = cli(out.parent / "ws", "data", "shard", "examples/digits.yaml", "--output", str(out),
               "--shard-size", "256")
    assert proc.stderr.strip() == (f"wrote {out}: train 1168 (5 shards), val 270 (2 shards), "
                                   f"test 359 (2 shards); 0.12 MiB decoded")
    return out


@pytest.mark.parametrize("nproc", [
    pytest.param(None, id="one process"),
    pytest.param("2", id="two ranks", marks=pytest.mark.slow)])
def test_a_streamed_run_trains_exactly_as_the_in_memory_run(shards, tmp_path, nproc):
    ws, ranks = tmp_path / "ws", ("--nproc", nproc) if nproc else ()
    cli(ws, "run", "examples/digits.yaml", "--set", "name=memory", *EPOCHS, *ranks)
    cli(ws, "run", "examples/digits_streaming.yaml", "--set", f"data.path={shards}",
        "--set", "name=streamed", *EPOCHS, *ranks)
    store = Store.open(ws)
    memory, streamed = (store.resolve(name) for name in ("memory", "streamed"))
    assert dict(streamed.metrics["headline"])["accuracy"] == dict(memory.metrics["headline"])["accuracy"]
    histories = [store.get_run(v.run_id).history for v in (memory, streamed)]
    assert [row["val_loss"] for row in histories[1]] == [row["val_loss"] for row in histories[0]]
    assert len(histories[0]) == 3


def test_a_missing_shard_stops_the_run_before_it_is_recorded(shards, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in shards.iterdir():
        if path.name != "train-00003.x.npy":
            (broken / path.name).write_bytes(path.read_bytes())
    proc = cli(tmp_path / "ws", "run", "examples/digits_streaming.yaml", "--set",
               f"data.path={broken}", *EPOCHS, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"error: data.path: shard train-00003.x.npy is missing from "
                                   f"{broken}; write the shards again")
    assert Store.open(tmp_path / "ws").list_runs() == []
    assert json.loads((broken / "manifest.json").read_text())["splits"]["train"]["count"] == 1168
