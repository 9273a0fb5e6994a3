"""Pages of the registry: every model, one model's versions (with their headline test
metrics), aliases, lineage and audit timeline (promotions, refusals and rollbacks included),
and the one state change the dashboard makes: moving an alias.

Promotion through the gate and rollback run from the CLI (`dlforge promote`, `dlforge
rollback`), which score models; a POST route for them here would be shaped like `move_alias`:
`require_change` first (token and confirmation), then one call, then a redirect back.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from dlforge.ui import runview
from dlforge.ui.auth import require_change
from dlforge.ui.render import render, root

router = APIRouter()


@router.get("/models", response_class=HTMLResponse)
async def models(request: Request) -> HTMLResponse:
    """Every registered model with its latest version, version count and aliases."""
    return render(request, "models.html", models=request.app.state.store.list_models())


@router.get("/models/{name}", response_class=HTMLResponse)
async def model_page(request: Request, name: str, moved: str = "") -> HTMLResponse:
    """One model: versions with their run and parent, aliases, the audit history, alias moves."""
    store = request.app.state.store
    versions = store.list_versions(name)
    aliases = sorted({a for v in versions for a in v.aliases})
    return render(request, "model.html", name=name, versions=versions[::-1], aliases=aliases,
                  events=store.history(name)[::-1], moved=moved, view=runview,
                  can_change=request.app.state.token is not None)


@router.post("/models/{name}/aliases")
async def move_alias(request: Request, name: str, alias: Annotated[str, Form()],
                     version: Annotated[int, Form()], token: Annotated[str, Form()] = "",
                     confirm: Annotated[str, Form()] = "") -> RedirectResponse:
    """Point `alias` at `version` (creating it), with the token and the confirmation box."""
    require_change(request, token or None, confirm == "yes")
    store = request.app.state.store
    moved = store.set_alias(name, alias, version, reason="moved from the dashboard")
    query = urlencode({"moved": f"{alias} -> v{moved.version}"})
    return RedirectResponse(f"{root(request)}/models/{quote(name, safe='')}?{query}",
                            status_code=303)
