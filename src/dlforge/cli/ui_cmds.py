"""`dlforge ui`: the web dashboard (FastAPI app run by uvicorn) over the workspace's store."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dlforge.cli import output
from dlforge.cli.serve_cmds import LOG_LEVELS

if TYPE_CHECKING:
    from fastapi import FastAPI

    from dlforge.config.schema import ServeConfig
    from dlforge.registry import Store

UI_PATH = "/ui"


def ui_command(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to bind; another than 127.0.0.1 exposes "
                                           "the store to the network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8080,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="Config (YAML) whose serve.token alias moves need.")] = None,
    set_: Annotated[list[str], typer.Option(
        "--set", "-s", help="Override a key: --set serve.token=... (repeatable).")] = [],  # noqa: B006
    log_level: Annotated[str, typer.Option(help="uvicorn log level: info, warning, error.")] = "warning",
) -> None:
    """Browse runs, compare them, follow a training run live, look at searches and models.

    Read-only, except moving a model's alias, which needs the server's token (serve.token or
    $DLFORGE_SERVE_TOKEN) and a confirmation.

    Example: dlforge ui --port 8080, then open http://127.0.0.1:8080
    """
    if log_level not in LOG_LEVELS:
        raise typer.BadParameter(f"must be one of {', '.join(LOG_LEVELS)} (got {log_level!r})",
                                 param_hint="--log-level")
    from dlforge.cli.listen import Where, bind_listeners, run_uvicorn
    from dlforge.config import load_config
    from dlforge.registry import Store
    from dlforge.ui import create_ui_app
    from dlforge.workspace import resolve_workspace

    token = load_config(config, set_).serve.token if (config or set_) else None
    store = Store.open(resolve_workspace(ctx.obj["workspace"]), ctx.obj["store_url"])
    try:
        app = create_ui_app(store, token=token)
        where = Where(host, port)
        sockets = bind_listeners(where)
        output.err.print(f"dlforge ui for {store.url} on {where.url}")
        run_uvicorn(app, sockets, where, log_level=log_level)
    finally:
        store.close()


def mount_ui(app: FastAPI, store: Store, settings: ServeConfig) -> None:
    """`dlforge serve --ui`: the dashboard at ``/ui`` of the inference service, with its token.

    Raises:
        ConfigError: ``serve.protect_reads`` is set; the dashboard's pages have no read
            protection, so they would open what the setting closes.
    """
    from dlforge.errors import ConfigError
    from dlforge.ui import create_ui_app

    if settings.protect_reads:
        raise ConfigError("serve.protect_reads: the dashboard (--ui) shows runs and models "
                          "without a token; drop --ui or set serve.protect_reads=false")
    app.mount(UI_PATH, create_ui_app(store, token=settings.token))
