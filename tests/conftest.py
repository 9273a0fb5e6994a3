"""Shared fixtures: every test gets its own workspace and cache, never the user's."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_workspace(tmp_path_factory, monkeypatch):
    root = tmp_path_factory.mktemp("dlforge-env")
    monkeypatch.setenv("DLFORGE_WORKSPACE", str(root / "workspace"))
    monkeypatch.setenv("DLFORGE_CACHE", str(root / "cache"))
    monkeypatch.setenv("DLFORGE_NO_SYSTEM_DATA", "1")  # never read /usr/share/datasets in unit tests
    yield
