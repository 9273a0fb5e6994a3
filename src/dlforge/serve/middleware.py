"""ASGI middleware: the request-body limit (413) and the per-request metrics."""

from __future__ import annotations

import json
import time
from typing import Any

from dlforge.serve.errors import INTERNAL, BodyTooLarge
from dlforge.serve.metrics import ServeMetrics

Scope = dict[str, Any]


class BodyLimit:
    """Refuse bodies over `max_bytes` with 413, before they are read into memory.

    A Content-Length over the limit is refused at once; a chunked body is counted as it
    arrives and the read that crosses the limit raises `BodyTooLarge` (its handler sends 413).
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            status = 413 if declared.isdigit() else 400
            message = (str(BodyTooLarge(self.max_bytes)) if status == 413
                       else "Content-Length: not a number")
            await _send_json(send, status, message)
            return
        received = 0

        async def limited_receive() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited_receive, send)


class Observe:
    """Count every request and its latency under its route template (``/v1/models/{name}``)."""

    def __init__(self, app: Any, metrics: ServeMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # if the app fails before it answers, the server sends a 500

        async def send_status(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(scope["method"], label, status, time.perf_counter() - start)


async def _send_json(send: Any, status: int, message: str) -> None:
    body = json.dumps({"detail": message or INTERNAL}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
