"""The dashboard's own queries on PostgreSQL (Optuna's state column is an ENUM there).

Runs when DLFORGE_TEST_POSTGRES_URL names a database the tests may write to (CI sets it)."""

from __future__ import annotations

import os
import uuid

import pytest
from fastapi.testclient import TestClient
from ui_store import add_search, history

from dlforge.registry import Store
from dlforge.ui import create_ui_app

POSTGRES_URL = os.environ.get("DLFORGE_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(not POSTGRES_URL,
                                reason="set DLFORGE_TEST_POSTGRES_URL to run on PostgreSQL")


def test_runs_and_search_pages_on_postgresql(tmp_path, monkeypatch):
    monkeypatch.delenv("DLFORGE_SERVE_TOKEN", raising=False)
    tag = uuid.uuid4().hex[:8]
    with Store(POSTGRES_URL, artifacts_dir=tmp_path) as store:
        run = store.create_run(f"pg-{tag}", {"name": tag}, None, "test", 0)
        store.finish_run(run.id, "completed", history=history(2))
        add_search(store, f"study-{tag}", values=[0.6, 0.8])
        client = TestClient(create_ui_app(store))
        runs = client.get(f"/runs?q=PG-{tag}&status=completed")
        assert runs.status_code == 200 and "1 runs · page 1 of 1" in runs.text
        search = client.get(f"/searches/study-{tag}?state=pruned")
        assert search.status_code == 200
        assert "1 trials · page 1 of 1" in search.text
        assert "pruned at epoch 2: val_accuracy 0.3 below the median 0.7" in search.text
        listing = client.get("/searches").text
        assert f"study-{tag}</a></td><td>maximize</td><td>0.8</td><td>4</td>" in listing
