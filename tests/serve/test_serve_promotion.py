"""A running server follows promotions and rollbacks made through the gate by another client
(the CLI, another process) without failing a request."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient

from dlforge.config import load_config
from dlforge.config.schema import ServeConfig
from dlforge.data.prepare import load_and_split
from dlforge.lifecycle.promote import promote, rollback
from dlforge.pipeline import run
from dlforge.registry import Store
from dlforge.serve import create_app

TINY = {"name": "dg", "data": {"source": "builtin", "name": "digits"},
        "model": {"type": "mlp", "hidden": [16]},
        "train": {"epochs": 2, "batch_size": 64, "num_threads": 1},
        "evaluate": {"baseline": False}, "registry": {"alias": "production"}}


def wait_for(condition, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def test_serve_follows_promotion_and_rollback_under_load(tmp_path):
    run(TINY, workspace=tmp_path, progress=False)
    run({**TINY, "registry": {}, "train": {**TINY["train"], "epochs": 1}}, workspace=tmp_path,
        progress=False)
    x = load_and_split(load_config(TINY))[1].test.x[:4].tolist()
    store = Store.open(tmp_path)
    stop, seen = threading.Event(), []
    with TestClient(create_app(store, ServeConfig(max_wait_ms=2.0))) as client:
        def hammer() -> None:
            for _ in range(2000):  # bounded even if the test fails early
                if stop.is_set():
                    return
                r = client.post("/v1/models/dg@production/predict", json={"inputs": x})
                seen.append((r.status_code, r.json().get("version")))

        with ThreadPoolExecutor(3) as pool:
            futures = [pool.submit(hammer) for _ in range(3)]
            assert wait_for(lambda: len(seen) >= 10)
            assert promote(store, "dg", 2, conditions=["accuracy >= 0"]).passed
            followed = wait_for(lambda: seen[-1][1] == 2)
            assert rollback(store, "dg") == (2, 1)
            mark = len(seen)
            returned = wait_for(lambda: len(seen) > mark + 10 and seen[-1][1] == 1)
            stop.set()
            for f in futures:
                f.result()
    store.close()
    assert followed and returned
    assert {status for status, _ in seen} == {200}
    versions = [v for _, v in seen]
    assert versions[0] == 1 and 2 in versions and versions[-1] == 1
