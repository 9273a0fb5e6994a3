"""Exception handlers: dlforge errors become JSON bodies with one status code each.

    DataError, ConfigError, request validation  -> 422 (the message names the field)
    NotFoundError                               -> 404
    TooLarge (body bytes, image pixels)         -> 413
    StoreError                                  -> 503 (the store or a bundle is unavailable)
    anything else                               -> 500, logged with its traceback, generic body
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from dlforge.errors import ConfigError, DataError, NotFoundError, StoreError

logger = logging.getLogger("dlforge.serve")

INTERNAL = "internal error; the server log has the details"


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
        lines.append(f"{where}: {error.get('msg', 'invalid')}")
    return "\n".join(lines)


def install_handlers(app: FastAPI) -> None:
    """Register the handlers above on `app`."""

    async def unprocessable(_: Request, exc: Exception) -> JSONResponse:
        return detail(422, str(exc))

    async def not_found(_: Request, exc: Exception) -> JSONResponse:
        return detail(404, str(exc))

    async def too_large(_: Request, exc: Exception) -> JSONResponse:
        return detail(413, str(exc))

    async def unavailable(_: Request, exc: Exception) -> JSONResponse:
        return detail(503, str(exc))

    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return detail(422, validation_message(list(exc.errors())))

    async def internal(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
        return detail(500, INTERNAL)

    app.add_exception_handler(DataError, unprocessable)
    app.add_exception_handler(ConfigError, unprocessable)
    app.add_exception_handler(NotFoundError, not_found)
    app.add_exception_handler(TooLarge, too_large)
    app.add_exception_handler(StoreError, unavailable)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(Exception, internal)
