"""registry.queries: a page of runs, filtered and sorted by the database."""

from __future__ import annotations

import pytest

from dlforge.errors import ConfigError, NotFoundError
from dlforge.registry import Store
from dlforge.registry.queries import RunFilter, runs_by_ids, runs_page


@pytest.fixture
def store(tmp_path):
    store = Store.open(tmp_path)
    for i, (name, kind) in enumerate([("b_50%", "train"), ("a", "trial"), ("c", "train"),
                                      ("B-two", "trial"), ("d", "train")]):
        run = store.create_run(name, {"i": i}, None, "test", 0, kind=kind)
        if i != 4:
            store.finish_run(run.id, "failed" if i == 2 else "completed", history=[{"epoch": 0}],
                             metrics={"i": i})
    yield store
    store.close()


def names(page):
    return [line.name for line in page.lines]


def test_newest_first_by_default_with_total_and_pages(store):
    page = runs_page(store, per_page=2)
    assert (names(page), page.total, page.pages) == (["d", "B-two"], 5, 3)
    assert names(runs_page(store, per_page=2, page=3)) == ["b_50%"]
    assert names(runs_page(store, per_page=2, page=4)) == []


def test_sort_by_name_ascending(store):
    assert names(runs_page(store, sort="name", descending=False)) == ["B-two", "a", "b_50%", "c", "d"]


def test_filters_are_exact_for_kind_and_status_and_substring_for_name(store):
    assert names(runs_page(store, RunFilter(kind="trial"))) == ["B-two", "a"]
    assert names(runs_page(store, RunFilter(status="failed"))) == ["c"]
    assert names(runs_page(store, RunFilter(status="running"))) == ["d"]
    assert names(runs_page(store, RunFilter(name="b"))) == ["B-two", "b_50%"]
    assert names(runs_page(store, RunFilter(name="_5"))) == ["b_50%"]  # LIKE wildcards escaped
    assert names(runs_page(store, RunFilter(name="%"))) == ["b_50%"]


def test_lines_carry_metrics_and_time_but_not_history(store):
    line = runs_page(store, RunFilter(name="c")).lines[0]
    assert (line.metrics, line.status, line.seconds >= 0) == ({"i": 2}, "failed", True)
    assert not hasattr(line, "history")
    assert runs_page(store, RunFilter(name="d")).lines[0].seconds is None


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"sort": "metrics"}, r"^sort: must be one of created, name, kind, status \(got 'metrics'\)$"),
    ({"page": 0}, r"^page: must be >= 1 with 1-200 runs per page \(got page 0, 50 per page\)$"),
    ({"per_page": 201}, r"^page: must be >= 1 with 1-200 runs per page \(got page 1, 201 per page\)$"),
])
def test_bad_arguments(store, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        runs_page(store, **kwargs)


def test_runs_by_ids_keeps_the_order_and_refuses_too_many(store):
    ids = [line.id for line in runs_page(store).lines]
    assert [r.name for r in runs_by_ids(store, ids[:2][::-1])] == ["B-two", "d"]
    with pytest.raises(ConfigError, match=r"^compare: at most 5 runs at once \(got 6\)$"):
        runs_by_ids(store, ids + ids[:1])
    with pytest.raises(NotFoundError, match="No run with id 'ffff'"):
        runs_by_ids(store, ["ffff"])
