"""The `store` fixture of the store contract suites: every test runs on each backend.

SQLite always runs; PostgreSQL runs when DLFORGE_TEST_POSTGRES_URL names a database the tests
may wipe (CI sets it).
"""

from __future__ import annotations

import os

import pytest

from dlforge.registry import Store
from dlforge.registry.tables import Base

POSTGRES_URL = os.environ.get("DLFORGE_TEST_POSTGRES_URL")


@pytest.fixture(params=[
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.skipif(
        not POSTGRES_URL, reason="set DLFORGE_TEST_POSTGRES_URL to run the PostgreSQL backend")),
])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path / 'dlforge.db'}", artifacts_dir=tmp_path / "artifacts")
    else:
        s = Store(POSTGRES_URL, artifacts_dir=tmp_path / "artifacts")
        Base.metadata.drop_all(s._engine)  # a clean database for every test
        s.close()
        s = Store(POSTGRES_URL, artifacts_dir=tmp_path / "artifacts")
    yield s
    s.close()
