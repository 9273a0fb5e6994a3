"""Fixtures of the serve tests: a real store with tiny models, and an app client over it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from serve_models import make_store

from dlforge.config.schema import ServeConfig
from dlforge.serve import create_app
from dlforge.serve.app import DEFAULT_MAX_PIXELS


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = make_store(tmp_path_factory.mktemp("serve"))
    yield store
    store.close()


@pytest.fixture
def make_client(store, monkeypatch):
    """`make_client(**serve_settings)` -> a started TestClient (lifespan run)."""
    monkeypatch.delenv("DLFORGE_SERVE_TOKEN", raising=False)
    clients = []

    def make(models=(), max_items=1024, max_pixels=DEFAULT_MAX_PIXELS, **settings):
        client = TestClient(create_app(store, ServeConfig(**settings), models=models,
                                       max_items=max_items, max_pixels=max_pixels))
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client):
    return make_client()
