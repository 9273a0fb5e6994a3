"""Pages of runs: the table, one run (live while it trains), its report, and a comparison."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse

from dlforge.errors import NotFoundError
from dlforge.registry.queries import MAX_COMPARED, SORTS, RunFilter, runs_by_ids, runs_page
from dlforge.registry.records import RUN_STATUSES
from dlforge.ui import runview
from dlforge.ui.render import render

if TYPE_CHECKING:
    from dlforge.registry import Run, Store

router = APIRouter()
KINDS = ("train", "trial")
LIVE_POLL_S = 1.0


@router.get("/runs", response_class=HTMLResponse)
async def runs(request: Request, kind: str = "", status: str = "", q: str = "",
               sort: str = "created", order: str = "desc",
               page: Annotated[int, Query(ge=1)] = 1,
               per_page: Annotated[int, Query(ge=1, le=200)] = 50) -> HTMLResponse:
    """The runs table: filter by kind, status and name; sort; one page at a time."""
    where = RunFilter(kind=kind or None, status=status or None, name=q or None)
    result = runs_page(request.app.state.store, where, sort=sort, descending=order != "asc",
                       page=page, per_page=per_page)
    args = {"kind": kind, "status": status, "q": q, "sort": sort, "order": order,
            "per_page": per_page}
    return render(request, "runs.html", page=result, args=args, kinds=KINDS,
                  statuses=RUN_STATUSES, sorts=tuple(SORTS), view=runview,
                  max_compared=MAX_COMPARED)


@router.get("/runs/{run_id}", response_class=HTMLResponse)
async def run_page(request: Request, run_id: str) -> HTMLResponse:
    """One run: config, curves and LR, test metrics, confusion matrix, link to its report."""
    store = request.app.state.store
    run = _shown(store, run_id)
    return render(request, "run.html", run=run, view=runview, live=_live(store, run),
                  poll_s=LIVE_POLL_S, test=run.metrics.get("test") or {})


@router.get("/runs/{run_id}/live", response_class=HTMLResponse)
async def run_live(request: Request, run_id: str) -> HTMLResponse:
    """The live part of a run page (progress and curves), polled while the run trains."""
    store = request.app.state.store
    run = _shown(store, run_id)
    return render(request, "_live.html", run=run, live=_live(store, run))


def _shown(store: Store, run_id: str) -> Run:
    """The run with the status to show: a ``running`` run whose process is gone is
    ``interrupted`` (so its page stops polling)."""
    run = store.get_run(run_id)
    return replace(run, status=store.liveness(run))


@router.get("/runs/{run_id}/report")
async def run_report(request: Request, run_id: str) -> FileResponse:
    """The run's own HTML report, when it is a file under the store's artifacts folder."""
    store = request.app.state.store
    run = store.get_run(run_id)
    root = Path(store.artifacts_dir).resolve()
    path = Path(run.report_path).resolve() if run.report_path else None
    if path is None or not path.is_file() or not path.is_relative_to(root):
        raise NotFoundError(f"run {run.id} has no report under {root}; "
                            f"`dlforge report {run.id}` writes one")
    return FileResponse(path, media_type="text/html")


@router.get("/compare", response_class=HTMLResponse)
async def compare(request: Request,
                  run: Annotated[list[str], Query()] = []) -> HTMLResponse:  # noqa: B006
    """2-5 runs: curves on shared axes, config differences, metrics side by side."""
    if not 2 <= len(run) <= MAX_COMPARED:
        return render(request, "compare.html", status=200 if not run else 422, runs=[],
                      message=f"Pick 2 to {MAX_COMPARED} runs in the runs table "
                              f"(got {len(run)}).", charts=[], differences=[], metric_rows=[])
    store = request.app.state.store
    records = [replace(r, status=store.liveness(r)) for r in runs_by_ids(store, run)]
    labels = [f"{r.name} ({r.id[:6]})" for r in records]
    charts = runview.curve_charts([(label, r.history)
                                   for label, r in zip(labels, records, strict=True)])
    tested = [dict(runview.headline_test_metrics(r.metrics)) for r in records]
    names = list(dict.fromkeys(n for metrics in tested for n in metrics))
    metric_rows = [(n, [metrics.get(n) for metrics in tested]) for n in names]
    differences = runview.config_differences([r.config for r in records])
    return render(request, "compare.html", runs=records, labels=labels, message=None,
                  charts=charts, differences=differences, metric_rows=metric_rows)


def _live(store: Store, run: Run) -> dict[str, Any]:
    """What the live part shows: the history so far (the progress file while running, or for
    a run that ended without storing one: killed, shown `interrupted`; else the stored
    history), its charts, and progress and ETA while running."""
    running = run.status == "running"
    progress = runview.read_progress(Path(store.artifacts_dir), run.id) \
        if running or not run.history else None
    history = progress.history if progress else run.history
    return {"running": running, "progress": progress, "history": history,
            "columns": runview.history_columns(history),
            "charts": runview.curve_charts([(run.name, history)])}
