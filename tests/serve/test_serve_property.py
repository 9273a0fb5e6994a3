"""Property-based: whatever JSON, bytes or path a client sends, the service answers with a
JSON body and never a 5xx."""

from __future__ import annotations

import os
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlforge.config.schema import ServeConfig
from dlforge.serve import create_app

MODELS = ["digits", "churn", "topics"]
SETTINGS = settings(max_examples=int(os.environ.get("DLFORGE_HYPOTHESIS_EXAMPLES", 60)), deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

scalars = (st.none() | st.booleans() | st.integers() | st.text(max_size=12)
           | st.floats(allow_nan=False, allow_infinity=False))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=40)
# Near-miss images: nested lists of numbers of almost the right shape (1, 8, 8) / (8, 8).
pixels = st.integers(-300, 10**400) | st.floats(allow_nan=False, allow_infinity=False)
images = st.integers(6, 9).flatmap(lambda h: st.lists(
    st.lists(st.lists(pixels, min_size=h, max_size=h), min_size=h, max_size=h), min_size=1, max_size=2))
rows = st.dictionaries(st.sampled_from(["a", "b", "color", "x"]), scalars, max_size=4)
bodies = (st.fixed_dictionaries({"inputs": st.lists(json_values, max_size=4)},
                                optional={"top_k": st.integers(-2, 10**12)})
          | st.fixed_dictionaries({"inputs": st.lists(images | rows | st.text(max_size=30),
                                                      min_size=1, max_size=3)})
          | json_values)


@pytest.fixture(scope="module")
def client(store):
    from fastapi.testclient import TestClient

    with TestClient(create_app(store, ServeConfig(max_body_mb=0.5, token="t")),
                    raise_server_exceptions=False) as client:
        yield client


def check(response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert isinstance(response.json()["detail"], str)


@SETTINGS
@given(model=st.sampled_from(MODELS), body=bodies)
def test_any_json_body_is_never_a_5xx(client, model, body):
    check(client.post(f"/v1/models/{model}/predict", json=body))


@SETTINGS
@given(model=st.sampled_from(MODELS), content=st.binary(max_size=200))
def test_any_bytes_are_never_a_5xx(client, model, content):
    check(client.post(f"/v1/models/{model}/predict", content=content))
    check(client.post(f"/v1/models/{model}/predict", files=[("files", ("f.png", content, "image/png"))]))


@SETTINGS
@given(name=st.text(alphabet=st.characters(codec="utf-8", exclude_characters="/?#%"),
                    min_size=1, max_size=30))
def test_any_model_name_is_never_a_5xx(client, name):
    name = quote(name, safe="@")
    check(client.post(f"/v1/models/{name}/predict", json={"inputs": [[[0.0] * 8] * 8]}))
    check(client.get(f"/v1/models/{name}"))


@SETTINGS
@given(alias=st.text(alphabet=st.characters(codec="utf-8", exclude_characters="/?#%"),
                     min_size=1, max_size=20), body=json_values)
def test_any_alias_move_is_never_a_5xx(client, alias, body):
    check(client.put(f"/v1/models/digits/aliases/{quote(alias)}", json=body,
                     headers={"Authorization": "Bearer t"}))
    check(client.post("/v1/models/digits/reload", headers={"Authorization": "Bearer t"}))
