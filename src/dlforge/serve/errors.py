"""Exception handlers: dlforge errors become JSON bodies with one status code each.

    DataError, ConfigError, request validation  -> 422 (the message names the field)
    NotFoundError                               -> 404
    TooLarge (body bytes, image pixels)         -> 413
    StoreError                                  -> 503 (the store or a bundle is unavailable)
    a client gone before its body arrived       -> counted as 499, unanswered, not logged
    anything else                               -> 500, logged with its traceback, generic body
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from dlforge.errors import ConfigError, DataError, NotFoundError, StoreError
from dlforge.registry.bundle_checks import json_kind

logger = logging.getLogger("dlforge.serve")

INTERNAL = "internal error; the server log has the details"
# The status a request is counted under when its client went away before its body arrived
# (nginx's "client closed request"): not answered, not logged as a server error.
CLIENT_GONE = 499


class TooLarge(Exception):
    """The request is over a size limit of the server; the message names it and the fix."""


class BodyTooLarge(TooLarge):
    """The request body is over ``serve.max_body_mb``."""

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(f"body: larger than the limit of {limit_bytes} bytes (serve.max_body_mb); "
                         "send fewer or smaller inputs per request")


def detail(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The error body every failure has: ``{"detail": "<what is wrong and the fix>"}``."""
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


def validation_message(errors: list[dict]) -> str:
    """One line per problem: ``<field path>: <pydantic message>``."""
    lines = []
    for error in errors:
        where = ""
        for part in error.get("loc", ()):
            if part != "body":
                where += f"[{part}]" if isinstance(part, int) else f".{part}" if where else str(part)
        where = where or "body"
        if error.get("type") in ("model_type", "dict_type", "model_attributes_type"):
            # pydantic: "Input should be a valid dictionary or instance of PredictRequest"
            got = json_kind(error.get("input"))
            example = ' such as {"inputs": [...]}' if where == "body" else ""
            lines.append(f"{where}: must be a JSON object{example} (got {got})")
            continue
        lines.append(f"{where}: {error.get('msg', 'invalid')}")
    return "\n".join(lines)


# The status code of each dlforge error, looked up along the exception's class hierarchy as
# Starlette looks up handlers (the most specific class first); anything else is a 500.
STATUS = {DataError: 422, ConfigError: 422, NotFoundError: 404, TooLarge: 413, StoreError: 503}


def status_for(exc: BaseException) -> int:
    """The status code `exc` answers with.

    Example:
        >>> status_for(NotFoundError("x")), status_for(BodyTooLarge(1)), status_for(OSError())
        (404, 413, 500)
    """
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_response(exc: Exception, method: str, path: str) -> JSONResponse:
    """The answer to a request that raised `exc`: its status and message, or a generic 500
    whose traceback goes to the server log."""
    status = status_for(exc)
    if status == 500:
        logger.exception("%s %s failed", method, path, exc_info=exc)
        return detail(500, INTERNAL)
    return detail(status, str(exc))


def install_handlers(app: FastAPI) -> None:
    """Register the handlers above on `app`."""

    async def handle(request: Request, exc: Exception) -> JSONResponse:
        return error_response(exc, request.method, request.url.path)

    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return detail(422, validation_message(list(exc.errors())))

    async def client_gone(_: Request, exc: ClientDisconnect) -> Response:
        return Response(status_code=CLIENT_GONE)  # the server drops it: nobody is listening

    for cls in STATUS:
        app.add_exception_handler(cls, handle)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(ClientDisconnect, client_gone)
    app.add_exception_handler(Exception, handle)
