"""Dependencies of the routes: the app's model cache and store, and the bearer-token checks.

They are `async def` although they never await: FastAPI runs a plain `def` dependency in a
worker thread, two thread hops per predict request for a dictionary lookup.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from dlforge.registry import Store
from dlforge.serve.models import ModelCache

TOKEN_ENV = "DLFORGE_SERVE_TOKEN"
bearer = HTTPBearer(auto_error=False, description=f"serve.token or ${TOKEN_ENV}")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def get_models(request: Request) -> ModelCache:
    """The loaded-model cache created by the app's lifespan."""
    return request.app.state.models


async def get_store(request: Request) -> Store:
    return request.app.state.store


def _check(request: Request, credentials: HTTPAuthorizationCredentials | None) -> None:
    token: str | None = request.app.state.token
    if token is None:
        raise HTTPException(403, f"this server has no token, so it refuses state changes; set "
                                 f"serve.token or ${TOKEN_ENV} and restart it")
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise HTTPException(401, "Authorization: missing; send the header 'Authorization: "
                                 "Bearer <token>'", headers=challenge)
    if not hmac.compare_digest(credentials.credentials.encode(), token.encode()):
        raise HTTPException(401, "Authorization: wrong bearer token", headers=challenge)


async def require_token(request: Request, credentials: Credentials) -> None:
    """For endpoints that change state (move an alias, reload a model): always need the token."""
    _check(request, credentials)


async def read_access(request: Request, credentials: Credentials) -> None:
    """For predict and read endpoints: open unless ``serve.protect_reads`` is set."""
    if request.app.state.protect_reads:
        _check(request, credentials)


StoreDep = Annotated[Store, Depends(get_store)]
ModelsDep = Annotated[ModelCache, Depends(get_models)]
