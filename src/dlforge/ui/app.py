"""The dashboard's FastAPI application: `create_ui_app(store, token=None)`."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from dlforge.errors import ConfigError, DataError, NotFoundError, StoreError
from dlforge.ui.auth import TOKEN_ENV, Refused
from dlforge.ui.models import router as models_router
from dlforge.ui.render import render, root
from dlforge.ui.runs import router as runs_router
from dlforge.ui.searches import router as searches_router

if TYPE_CHECKING:
    from dlforge.registry import Store

logger = logging.getLogger("dlforge.ui")
STATIC = Path(__file__).parent / "static"


def create_ui_app(store: Store, *, token: str | None = None) -> FastAPI:
    """The dashboard over `store`: runs, compare, searches and models, read-only except alias moves.

    Args:
        store: the registry to show (the caller keeps it open while the app runs).
        token: the bearer token that alias moves need (default ``$DLFORGE_SERVE_TOKEN``, as the
            server's write endpoints); without one, every state change is refused.

    Example:
        >>> with TestClient(create_ui_app(Store.open(ws))) as client:  # doctest: +SKIP
        ...     client.get("/runs").status_code
        200
    """
    app = FastAPI(title="dlforge ui", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = store
    app.state.token = token or os.environ.get(TOKEN_ENV) or None
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(runs_router)
    app.include_router(searches_router)
    app.include_router(models_router)

    @app.get("/", include_in_schema=False)
    async def home(request: Request) -> RedirectResponse:
        return RedirectResponse(f"{root(request)}/runs", status_code=307)

    _install_handlers(app)
    return app


def _install_handlers(app: FastAPI) -> None:
    """dlforge errors become an error page with the message and one status code each."""

    def page(status: int):
        async def handler(request: Request, exc: Exception) -> HTMLResponse:
            return render(request, "error.html", status=status, message=str(exc))
        return handler

    async def invalid(request: Request, exc: RequestValidationError) -> HTMLResponse:
        lines = [f"{'.'.join(str(p) for p in e.get('loc', ())[1:])}: {e.get('msg')}"
                 for e in exc.errors()]
        return render(request, "error.html", status=422, message="\n".join(lines))

    async def refused(request: Request, exc: Refused) -> HTMLResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return render(request, "error.html", status=exc.status, message=str(exc), headers=headers)

    async def internal(request: Request, exc: Exception) -> HTMLResponse:
        logger.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
        return render(request, "error.html", status=500,
                      message="internal error; the server log has the details")

    app.add_exception_handler(NotFoundError, page(404))
    app.add_exception_handler(ConfigError, page(422))
    app.add_exception_handler(DataError, page(422))
    app.add_exception_handler(StoreError, page(503))
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(Refused, refused)
    app.add_exception_handler(Exception, internal)
