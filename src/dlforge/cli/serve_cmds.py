"""`dlforge serve`: the inference service (FastAPI app run by uvicorn)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dlforge.cli import output

if TYPE_CHECKING:
    from dlforge.cli.listen import Where
    from dlforge.config.schema import ServeConfig

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
# uvicorn's "auto" picks uvloop and httptools (C) when installed, asyncio and h11 (Python) else.
LOOPS = ("auto", "asyncio", "uvloop")
HTTP_PARSERS = ("auto", "h11", "httptools")


def serve_command(
    ctx: typer.Context,
    model: Annotated[list[str], typer.Option(
        "--model", "-m", help="NAME@ALIAS to load at startup; a bare NAME in URLs then means that "
                              "alias (repeatable). Other models load on first use, latest version.")] = [],  # noqa: B006
    host: Annotated[str | None, typer.Option(help="Address to bind. Default serve.host (127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port. Default serve.port (8000).", min=1, max=65535)] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="Config (YAML) whose serve section (batching, body limit, token) and drift section "
                              "(served-input sample, refresh interval) to use.")] = None,
    set_: Annotated[list[str], typer.Option(
        "--set", "-s", help="Override a key: --set serve.max_batch=64 (repeatable).")] = [],  # noqa: B006
    max_items: Annotated[int, typer.Option(help="Most inputs in one predict request.", min=1)] = 1024,
    max_pixels: Annotated[int, typer.Option(
        help="Most pixels (width x height) of the image files in one predict request together.",
        min=1)] = 67_108_864,
    log_level: Annotated[str, typer.Option(help="uvicorn log level: info, warning, error.")] = "info",
    loop: Annotated[str, typer.Option(help="Event loop: auto (uvloop when installed), asyncio, uvloop.")] = "auto",
    http: Annotated[str, typer.Option(help="HTTP parser: auto (httptools when installed), h11, httptools.")] = "auto",
    ui: Annotated[bool, typer.Option("--ui", help="Also serve the dashboard (dlforge ui) at /ui.")] = False,
) -> None:
    """Serve registered models over HTTP: POST /v1/models/NAME/predict, GET /v1/models, /metrics.

    State changes (PUT /v1/models/NAME/aliases/ALIAS, POST /v1/models/NAME/reload) need
    'Authorization: Bearer <token>' with serve.token or $DLFORGE_SERVE_TOKEN.

    Example: dlforge serve --model digits@staging --port 8000
    """
    for value, allowed, hint in ((log_level, LOG_LEVELS, "--log-level"), (loop, LOOPS, "--loop"),
                                 (http, HTTP_PARSERS, "--http")):
        if value not in allowed:
            raise typer.BadParameter(f"must be one of {', '.join(allowed)} (got {value!r})",
                                     param_hint=hint)
    from dlforge.cli.listen import bind_listeners, run_uvicorn
    from dlforge.config import load_config
    from dlforge.registry import Store
    from dlforge.registry.bundle import check_bundle
    from dlforge.registry.model_kind import check_bundle_kind
    from dlforge.serve import create_app
    from dlforge.workspace import resolve_workspace

    cfg = load_config(config, set_)
    settings = cfg.serve
    settings = settings.model_copy(update={k: v for k, v in (("host", host), ("port", port))
                                           if v is not None})
    store = Store.open(resolve_workspace(ctx.obj["workspace"]), ctx.obj["store_url"])
    try:
        for ref in model:  # unknown, GAN and damaged models fail here, as one line, not as
            bundle = store.resolve(ref).bundle_path  # a traceback from uvicorn's start-up
            check_bundle_kind(ref, bundle)
            check_bundle(bundle)
        app = create_app(store, settings, models=model, max_items=max_items,
                         max_pixels=max_pixels, drift=cfg.drift)
        if ui:
            from dlforge.cli.ui_cmds import mount_ui

            mount_ui(app, store, settings)
        where = _where(settings, cfg.serve.model_fields_set, host, port)
        sockets = bind_listeners(where)
        output.err.print(f"serving {store.url} on {where.url} (docs at /docs)")
        # Above info no access line is printed, but uvicorn would still build each one's
        # arguments (client address, quoted path): ~5 us of the event loop per request.
        run_uvicorn(app, sockets, where, log_level=log_level, loop=loop, http=http,
                    access_log=log_level in ("info", "debug"))
    finally:
        store.close()


def _where(settings: ServeConfig, from_config: set[str], host: str | None, port: int | None) -> Where:
    """The address to listen on, named as the user gave it: --host/--port, or serve.host/
    serve.port when the value came from the config or --set (the options' default else)."""
    from dlforge.cli.listen import Where

    def name(key: str, option: str | int | None) -> str:
        return f"serve.{key}" if option is None and key in from_config else f"--{key}"

    return Where(settings.host, settings.port, name("host", host), name("port", port))
