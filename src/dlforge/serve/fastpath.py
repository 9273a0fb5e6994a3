"""Plain predict requests answered before the ASGI middleware stack and FastAPI's routing.

Under load most of the event loop's CPU per predict request went to the layers around the
endpoint, not to it: FastAPI's parameter and dependency solving was about 40 % of a profile
of the Basic CNN's server, and the middleware stack (FastAPI's error, telemetry and body-limit
layers, this app's metrics and body limit, the exception layer, the router) about 40 % of
what remained. Most predict requests are plain: a POST with no query or just ``?top_k=N`` in
range, a model name of at most 200 characters, a body that is not multipart with a
Content-Length within ``serve.max_body_mb`` and no Transfer-Encoding, and reads open
(``serve.protect_reads`` off), on an app without a root_path or FastAPI's OpenTelemetry
support enabled. `ServeApp`
answers those itself, through the same parsing (`inputs.parse_body`), prediction
(`routes.predict_json`), error statuses and messages (`errors.error_response`) and request
metrics as the full stack; every other request (multipart files, a chunked body, another
query, a protected server, any other path) goes through FastAPI unchanged, so validation
messages, the token check and the OpenAPI schema stay FastAPI's.
"""

from __future__ import annotations

import re
import time
from typing import Any, NamedTuple

from fastapi import FastAPI

from dlforge.serve.errors import CLIENT_GONE, BodyTooLarge, error_response
from dlforge.serve.inputs import parse_body
from dlforge.serve.openapi import PREDICT_PATH
from dlforge.serve.routes import predict_json

MAX_TOP_K = 10_000  # the predict route's Query(le=...)
MAX_NAME = 200  # its Path(max_length=...)
_PATH = re.compile(r"/v1/models/([^/]+)/predict")  # Starlette's match of PREDICT_PATH
_JSON = [(b"content-type", b"application/json")]


class Plain(NamedTuple):
    """What a plain predict request asks: the model reference, its top_k, its content type."""

    name: str
    top_k: int | None
    content_type: str


class ServeApp(FastAPI):
    """FastAPI, with plain predict requests (`plain_predict`) answered before its middleware.

    Example:
        >>> app = ServeApp(title="dlforge inference")  # create_app builds it  # doctest: +SKIP
    """

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        plain = plain_predict(scope, self.state) if scope["type"] == "http" else None
        # FastAPI's own OpenTelemetry spans and metrics, once a provider is configured, and an
        # app-wide root_path are FastAPI's to apply: such requests take the full path.
        if plain is None or self.root_path or self._native_telemetry.enabled():
            await super().__call__(scope, receive, send)
        else:
            await _answer(self.state, plain, scope, receive, send)


def plain_predict(scope: dict[str, Any], state: Any) -> Plain | None:
    """The `Plain` request of `scope`, or None when FastAPI must look: not a POST to the
    predict path, a root_path, a long name, another query, a top_k out of range or not a
    number, reads protected, multipart files, a Transfer-Encoding header, or no
    Content-Length within ``state.max_body_bytes``."""
    if scope["method"] != "POST" or scope.get("root_path") or state.protect_reads:
        return None
    match = _PATH.fullmatch(scope["path"])
    if match is None or len(match[1]) > MAX_NAME:
        return None
    top_k = _plain_top_k(scope.get("query_string", b""))
    if top_k is False:
        return None
    length = content_type = None
    for key, value in scope["headers"]:  # the first of repeated headers wins
        if key == b"content-length":
            length = value if length is None else length
        elif key == b"content-type":
            content_type = value if content_type is None else content_type
        elif key == b"transfer-encoding":
            return None
    if length is None or not length.isdigit() or int(length) > state.max_body_bytes:
        return None
    kind = (content_type or b"").decode("latin-1")
    return None if kind.startswith("multipart/") else Plain(match[1], top_k, kind)


def _plain_top_k(query: bytes) -> int | None | bool:
    """The ``top_k`` of a plain query (None if not given), or False when FastAPI must look."""
    if not query:
        return None
    digits = query.removeprefix(b"top_k=")
    if digits is query or not digits.isdigit() or len(digits) > 5:
        return False
    value = int(digits)
    return value if 1 <= value <= MAX_TOP_K else False


async def _answer(state: Any, plain: Plain, scope: dict[str, Any], receive: Any,
                  send: Any) -> None:
    """Predict, answer, and count the request as the metrics middleware would (a client that
    disconnects before its body arrived as `CLIENT_GONE`, unanswered)."""
    start = time.perf_counter()
    try:
        body = await _body(receive, state.max_body_bytes)
        if body is None:
            state.metrics.observe("POST", PREDICT_PATH, CLIENT_GONE, time.perf_counter() - start)
            return
        parsed = parse_body(plain.content_type, body, state.max_items)
        content = await predict_json(state.models, plain.name, parsed, plain.top_k,
                                     state.max_pixels)
    except Exception as exc:
        response = error_response(exc, "POST", scope["path"])
        await response(scope, receive, send)
        status = response.status_code
    else:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [*_JSON, (b"content-length", str(len(content)).encode())]})
        await send({"type": "http.response.body", "body": content})
        status = 200
    state.metrics.observe("POST", PREDICT_PATH, status, time.perf_counter() - start)


async def _body(receive: Any, max_bytes: int) -> bytes | None:
    """The whole request body, or None if the client disconnected.

    Raises:
        BodyTooLarge: more than `max_bytes` arrived (a server may pass on more than the
            Content-Length declared).
    """
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge(max_bytes)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
