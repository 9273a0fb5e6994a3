"""Fixtures of the dashboard tests: a seeded store and a TestClient over the app."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from ui_store import TOKEN, make_store

from dlforge.ui import create_ui_app


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    store, ids = make_store(tmp_path_factory.mktemp("ui"))
    yield store, ids
    store.close()


@pytest.fixture
def store(seeded):
    return seeded[0]


@pytest.fixture
def ids(seeded):
    return seeded[1]


@pytest.fixture
def make_client(store, monkeypatch):
    """`make_client(token=...)` -> a TestClient of the dashboard over the seeded store."""
    monkeypatch.delenv("DLFORGE_SERVE_TOKEN", raising=False)

    def make(token=None):
        return TestClient(create_ui_app(store, token=token))

    return make


@pytest.fixture
def client(make_client):
    return make_client(TOKEN)
