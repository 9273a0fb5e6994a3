"""Pages of searches: every study, one study's trials and optimisation history, and several
studies' histories on shared axes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from dlforge.ui import searchview, studies
from dlforge.ui.charts import Series, line_chart
from dlforge.ui.render import render

router = APIRouter()
MAX_STUDIES = 5


@router.get("/searches", response_class=HTMLResponse)
async def searches(request: Request) -> HTMLResponse:
    """Every study with its trial counts and best value; pick several to compare."""
    return render(request, "searches.html", studies=studies.list_studies(request.app.state.store),
                  max_studies=MAX_STUDIES)


@router.get("/searches/compare", response_class=HTMLResponse)
async def compare_searches(request: Request,
                           study: Annotated[list[str], Query()] = []) -> HTMLResponse:  # noqa: B006
    """The best-so-far curves of 2-5 studies on shared axes, and their counts side by side."""
    store = request.app.state.store
    picked = [studies.find_study(store, name) for name in study[:MAX_STUDIES]]
    series = [Series(s.name, studies.best_so_far(studies.history(store, s.name), s.direction))
              for s in picked]
    chart = line_chart("best value so far", series, x_label="trial", y_label="value")
    return render(request, "search_compare.html", studies=picked, chart=chart,
                  enough=len(picked) >= 2, max_studies=MAX_STUDIES)


@router.get("/searches/{name:path}", response_class=HTMLResponse)
async def search_page(request: Request, name: str, state: str = "",
                      page: Annotated[int, Query(ge=1)] = 1,
                      per_page: Annotated[int, Query(ge=1, le=200)] = 50) -> HTMLResponse:
    """One study: its optimisation history and a page of its trials (filter by state)."""
    store = request.app.state.store
    study = studies.find_study(store, name)
    points = studies.history(store, name)
    chart = line_chart("optimisation history", [
        Series("trial value", points, dots=True),
        Series("best so far", studies.best_so_far(points, study.direction)),
    ], x_label="trial", y_label="value")
    complete = studies.complete_trials(store, name)
    extra = [searchview.importance_chart(searchview.importances(complete)),
             searchview.parallel_chart(complete, study.direction)]
    trials, total = studies.trials_page(store, name, state=state or None, page=page,
                                        per_page=per_page)
    keys = sorted({k for t in trials for k in t.params})
    return render(request, "search.html", study=study, charts=[chart, *extra], trials=trials,
                  keys=keys,
                  total=total, page=page, per_page=per_page, state=state,
                  pages=max(1, -(-total // per_page)), states=tuple(studies.STATES.values())[:4])
