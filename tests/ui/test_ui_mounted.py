"""`dlforge serve --ui`: the dashboard mounted at /ui of the inference service."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from ui_store import TOKEN, make_store

from dlforge.cli.ui_cmds import mount_ui
from dlforge.config.schema import ServeConfig
from dlforge.errors import ConfigError
from dlforge.serve import create_app


@pytest.fixture
def served(tmp_path, monkeypatch):
    monkeypatch.delenv("DLFORGE_SERVE_TOKEN", raising=False)
    store, ids = make_store(tmp_path)
    settings = ServeConfig(token=TOKEN)
    app = create_app(store, settings)
    mount_ui(app, store, settings)
    with TestClient(app) as client:
        yield client, store, ids
    store.close()


def test_pages_links_and_redirects_carry_the_prefix(served):
    client, _, ids = served
    assert client.get("/ui/", follow_redirects=False).headers["location"] == "/ui/runs"
    text = client.get("/ui/runs").text
    assert f'<a href="/ui/runs/{ids.plain}">plain</a>' in text
    assert '<link rel="stylesheet" href="/ui/static/ui.css">' in text
    assert client.get("/ui/static/ui.css").status_code == 200
    live = client.get(f"/ui/runs/{ids.running}").text
    assert f'data-url="/ui/runs/{ids.running}/live"' in live
    assert client.get("/v1/models").status_code == 200  # the service itself is unchanged


def test_alias_move_through_the_mounted_dashboard_uses_the_servers_token(served):
    client, store, _ = served
    data = {"alias": "production", "version": "2", "confirm": "yes"}
    refused = client.post("/ui/models/digits/aliases", data=data | {"token": "nope"})
    assert refused.status_code == 401
    moved = client.post("/ui/models/digits/aliases", data=data | {"token": TOKEN},
                        follow_redirects=False)
    assert (moved.status_code, moved.headers["location"]) == (
        303, "/ui/models/digits?moved=production+-%3E+v2")
    assert store.get_version("digits", "production").version == 2


def test_protected_reads_refuse_the_dashboard(tmp_path):
    store, _ = make_store(tmp_path)
    settings = ServeConfig(token=TOKEN, protect_reads=True)
    with pytest.raises(ConfigError, match=r"^serve\.protect_reads: the dashboard \(--ui\) shows "
                                          r"runs and models without a token; drop --ui or set "
                                          r"serve\.protect_reads=false$"):
        mount_ui(create_app(store, settings), store, settings)
    store.close()
