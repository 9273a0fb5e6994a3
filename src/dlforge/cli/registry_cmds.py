"""`dlforge models ...`, `dlforge runs ...` and `dlforge report RUN`: read and steer the registry."""

from __future__ import annotations

from typing import Annotated

import typer

from dlforge.cli import output

models_app = typer.Typer(help="Registered models: versions, aliases, history.", no_args_is_help=True)
runs_app = typer.Typer(help="Runs recorded in the store.", no_args_is_help=True)


def open_store(ctx: typer.Context):
    """The store of the workspace given by --workspace / $DLFORGE_WORKSPACE."""
    from dlforge.registry import Store
    from dlforge.workspace import resolve_workspace

    obj = ctx.find_root().obj or {}
    return Store.open(resolve_workspace(obj.get("workspace")), obj.get("store_url"))


@models_app.command("list")
def models_list(ctx: typer.Context) -> None:
    """List registered models with their latest version, aliases and type: the `model.type`
    of the champion (the version `production` names), else of the latest version."""
    store = open_store(ctx)
    rows = store.list_models()
    if not rows:
        output.err.print("no models registered yet; `dlforge run` trains and registers one")
        return
    output.table(None, ["name", "latest", "versions", "aliases", "type"],
                 [(m.name, m.latest_version, m.count, _aliases(m.aliases), _summary_type(store, m))
                  for m in rows])


def _summary_type(store, summary) -> str:
    """`mlp (production)`: the champion's type (the version the promotion gate's default
    alias names), else `mlp (latest)`."""
    from dlforge.lifecycle.promote import DEFAULT_ALIAS

    champion = summary.aliases.get(DEFAULT_ALIAS)
    version = champion if champion is not None else summary.latest_version
    which = DEFAULT_ALIAS if champion is not None else "latest"
    return _model_type(store.resolve(f"{summary.name}@{version}").bundle_path, which)


@models_app.command("show")
def models_show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME (all versions), NAME@VERSION or NAME@ALIAS.")],
) -> None:
    """Show a model's versions, or one version's metrics and lineage."""
    from dlforge.registry.refs import check_model_name

    store = open_store(ctx)
    if "@" not in ref:
        versions = store.list_versions(check_model_name(ref))
        output.table(ref, ["version", "type", "created", "run", "parent", "aliases", "headline"],
                     [(v.version, _model_type(v.bundle_path), _time(v.created_at), v.run_id,
                       v.parent_version, ", ".join(v.aliases), _headline(v.metrics))
                      for v in versions])
        return
    v = store.resolve(ref)
    output.table(f"{v.name} version {v.version}", ["field", "value"], [
        ("type", _model_type(v.bundle_path)),
        ("run", v.run_id), ("created", _time(v.created_at)), ("parent", v.parent_version),
        ("aliases", ", ".join(v.aliases)), ("bundle", v.bundle_path),
        *[(name, value) for name, value in (v.metrics.get("headline") or [])],
    ])


def _model_type(bundle_path: str, which: str | None = None) -> str:
    """The version's `model.type` (mlp, basic_cnn, dcgan, ...) from its bundle's model.json,
    without loading the weights, followed by `which` version it is in brackets; a missing or
    corrupt file is shown, not an error: `? (latest: model.json unreadable)`."""
    from dlforge.errors import DlforgeError
    from dlforge.registry.bundle import model_type

    notes = [which] if which else []
    try:
        kind = model_type(bundle_path) or "?"
    except DlforgeError:
        kind = "?"
        notes.append("model.json unreadable")
    return f"{kind} ({': '.join(notes)})" if notes else kind


@models_app.command("alias")
def models_alias(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str, typer.Argument(help="Alias, e.g. production or staging.")],
    version: Annotated[int, typer.Argument(help="Version the alias should point to.")],
    reason: Annotated[str | None, typer.Option(help="Why, for the audit history.")] = None,
) -> None:
    """Point ALIAS of model NAME at VERSION (creating or moving it)."""
    open_store(ctx).set_alias(name, alias, version, reason=reason)
    output.out.print(f"{name}@{alias} -> version {version}")


@models_app.command("unalias")
def models_unalias(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str, typer.Argument(help="Alias to remove.")],
    reason: Annotated[str | None, typer.Option(help="Why, for the audit history.")] = None,
) -> None:
    """Remove ALIAS from model NAME."""
    open_store(ctx).remove_alias(name, alias, reason=reason)
    output.out.print(f"removed {name}@{alias}")


@models_app.command("history")
def models_history(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Model name.")]) -> None:
    """The audit history of a model: registrations, alias changes and gate decisions, oldest
    first; then who held each alias, from when until when, and why."""
    from dlforge.registry.holders import tenures
    from dlforge.registry.refs import check_model_name

    events = open_store(ctx).history(check_model_name(name))
    output.table(f"history of {name}", ["time", "event", "version", "alias", "from", "reason"],
                 [(_time(e.at), e.event, e.version, e.alias, e.from_version, e.reason) for e in events])
    held = tenures(events)
    if held:
        output.table(f"alias holders of {name}", ["alias", "version", "since", "until", "by", "why"],
                     [(t.alias, t.version, _time(t.since), _time(t.until) if t.until else "now",
                       t.event, t.reason) for t in held])


@runs_app.command("list")
def runs_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="How many of the newest runs.", min=1)] = 20,
) -> None:
    """List the newest runs; a run whose process died shows as interrupted, with its resume command."""
    store = open_store(ctx)
    runs = store.list_runs(limit=limit)
    if not runs:
        output.err.print("no runs yet; `dlforge run` starts one")
        return
    shown = [(r, store.liveness(r)) for r in runs]
    output.table(None, ["id", "name", "status", "started", "headline"],
                 [(r.id, r.name, status, _time(r.started_at), _headline(r.metrics)) for r, status in shown])
    for r, status in shown:
        if _resume(r, status):
            what = "it is a search trial: resume its search" if r.kind == "trial" else "resume it"
            output.err.print(f"run {r.id} was interrupted (its process is gone); "
                             f"{what} with `{_resume(r, status)}`")


@runs_app.command("show")
def runs_show(ctx: typer.Context, run_id: Annotated[str, typer.Argument(metavar="RUN", help="Run id (or a unique prefix).")]) -> None:
    """Show one run: status, times, data fingerprint, metrics and report path."""
    store = open_store(ctx)
    r = store.get_run(run_id)
    status = store.liveness(r)
    rows = [("name", r.name), ("status", status), ("started", _time(r.started_at)),
            ("ended", _time(r.ended_at)), ("seed", r.seed), ("data", r.data_fingerprint),
            ("code", r.code_version), ("epochs", len(r.history or [])), ("report", r.report_path)]
    if r.pid is not None:
        rows.append(("process", f"pid {r.pid} on {r.host}"))
    if r.error:  # a completed run with a message is a pruned trial: why it stopped, no error
        rows.append(("error" if status != "completed" else "reason", r.error))
    if _resume(r, status):
        rows.append(("resume", _resume(r, status)))
    rows += [(name, value) for name, value in (r.metrics or {}).get("headline", [])]
    output.table(f"run {r.id}", ["field", "value"], rows)


def report_command(ctx: typer.Context, run_id: Annotated[str, typer.Argument(metavar="RUN", help="Run id (or a unique prefix).")]) -> None:
    """Print the path of a run's HTML report."""
    from pathlib import Path

    from dlforge.errors import NotFoundError

    r = open_store(ctx).get_run(run_id)
    if not r.report_path or not Path(r.report_path).is_file():
        raise NotFoundError(f"run {r.id} has no report file (status {r.status}); "
                            f"reports are written when a run completes")
    output.out.print(r.report_path)


def _resume(run, status: str) -> str | None:
    """The command that resumes an interrupted run, or its search for a trial (None for any
    other status)."""
    from dlforge.registry.liveness import resume_command

    return resume_command(run.id, run.kind) if status == "interrupted" else None


def _aliases(aliases) -> str:
    if isinstance(aliases, dict):
        return ", ".join(f"{k}->{v}" for k, v in sorted(aliases.items()))
    return ", ".join(aliases or [])


def _headline(metrics) -> str:
    pairs = (metrics or {}).get("headline") or []
    return "  ".join(f"{k} {v:.4f}" for k, v in pairs[:2]) if pairs else "-"


def _time(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"
