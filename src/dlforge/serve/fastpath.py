"""The predict endpoint without FastAPI's per-request parameter solving, for plain requests.

FastAPI solves a route's dependencies and parameters on every request (the path name, the
``top_k`` query, the model cache, the read-token check): about 40 % of the event loop's CPU
per predict request in a profile of the Basic CNN's server, more than parsing the body. Most
predict requests are plain: a POST with no query or just ``?top_k=N`` in range, a name of at
most 200 characters, and reads open (``serve.protect_reads`` off). `PredictRoute`, placed
before the FastAPI routes, matches only those and answers them through the same
`predict_response`; every other request does not match it and reaches the FastAPI route
unchanged, so validation messages, the token check and the OpenAPI schema stay FastAPI's.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from dlforge.serve.openapi import PREDICT_PATH
from dlforge.serve.routes import predict_response

MAX_TOP_K = 10_000  # the predict route's Query(le=...)
MAX_NAME = 200  # its Path(max_length=...)
TOP_K_KEY = "dlforge.top_k"  # the scope key under which a matched request carries its top_k


class PredictRoute(Route):
    """Answers plain predict requests; it does not match any other request, which then reaches
    the FastAPI route behind it.

    Example:
        >>> install_fast_predict(create_app(store, ServeConfig()))  # doctest: +SKIP
    """

    def __init__(self) -> None:
        super().__init__(PREDICT_PATH, _predict, methods=["POST"], include_in_schema=False)

    def matches(self, scope: dict[str, Any]) -> tuple[Match, dict[str, Any]]:
        match, child = super().matches(scope)
        if match is not Match.FULL:
            return Match.NONE, {}
        top_k = _plain_top_k(scope, child["path_params"]["name"])
        if top_k is False:
            return Match.NONE, {}
        child["route"] = self  # the metrics label it under its path, as FastAPI's own route
        child[TOP_K_KEY] = top_k  # read once, here; _predict takes it from the scope
        return match, child


async def _predict(request: Request) -> Response:
    return await predict_response(request, request.path_params["name"],
                                  request.app.state.models, request.scope[TOP_K_KEY])


def _plain_top_k(scope: dict[str, Any], name: str) -> int | None | bool:
    """The ``top_k`` of a plain request (None if not given), or False when FastAPI must look:
    reads protected, a long name, another query, a top_k out of range or not a number."""
    if scope["app"].state.protect_reads or len(name) > MAX_NAME:
        return False
    query: bytes = scope.get("query_string", b"")
    if not query:
        return None
    digits = query.removeprefix(b"top_k=")
    if digits is query or not digits.isdigit() or len(digits) > 5:
        return False
    value = int(digits)
    return value if 1 <= value <= MAX_TOP_K else False


def install_fast_predict(app: FastAPI) -> None:
    """Put a `PredictRoute` in front of `app`'s routes."""
    app.router.routes.insert(0, PredictRoute())
