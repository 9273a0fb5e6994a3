"""The app's /openapi.json made true to its settings.

The routes are shared by every app, so what depends on an app's settings is set on the schema
once it is generated: read endpoints (predict, listings, metrics) declare the bearer token
only when ``serve.protect_reads`` makes them need it, and the predict body declares the
app's item limit.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from dlforge.serve.deps import read_access

PREDICT_PATH = "/v1/models/{name}/predict"


def install_openapi(app: FastAPI, routers: Sequence[APIRouter], *, protect_reads: bool,
                    max_items: int) -> None:
    """Make ``app.openapi()`` return the generated schema adjusted to the settings.

    Args:
        routers: the routers included in `app`, whose routes with `read_access` are reads.
    """
    generate = app.openapi
    adjusted: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        schema = generate()  # FastAPI's cached schema: ours once adjusted, until routes change
        if not adjusted or schema is not adjusted[0]:
            # A copy: generated schemas share dicts with the routes' module-level declarations.
            schema = copy.deepcopy(schema)
            if not protect_reads:
                _open_reads(schema, routers)
            _item_limits(schema, max_items)
            app.openapi_schema = schema
            adjusted[:] = [schema]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _open_reads(schema: dict[str, Any], routers: Sequence[APIRouter]) -> None:
    """Drop the bearer token FastAPI declares for `read_access` (it takes the credentials)."""
    for router in routers:
        for route in router.routes:
            if isinstance(route, APIRoute) and any(d.dependency is read_access
                                                   for d in route.dependencies):
                for method in route.methods:
                    schema["paths"][route.path][method.lower()].pop("security", None)


def _item_limits(schema: dict[str, Any], max_items: int) -> None:
    content = schema["paths"][PREDICT_PATH]["post"]["requestBody"]["content"]
    content["application/json"]["schema"]["oneOf"][0]["properties"]["inputs"]["maxItems"] = max_items
    files = content["multipart/form-data"]["schema"]["properties"]["files"]
    files |= {"minItems": 1, "maxItems": max_items}
