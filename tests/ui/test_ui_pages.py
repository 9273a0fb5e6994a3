"""Every dashboard page through TestClient against a real store: status, content, escaping,
pagination, and the token and confirmation that an alias move needs."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from ui_store import HOSTILE, TOKEN, history, make_store, write_progress

from dlforge.registry.tables import RunRow
from dlforge.ui import create_ui_app

ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def pages(ids) -> list[str]:
    return ["/runs", "/runs?kind=trial", "/runs?status=failed", f"/runs/{ids.hostile}",
            f"/runs/{ids.running}", f"/runs/{ids.failed}", f"/runs/{ids.trial}",
            f"/runs/{ids.running}/live", f"/compare?run={ids.hostile}&run={ids.plain}",
            "/compare", "/models", "/models/digits", "/searches",
            "/searches/search-%3Cscript%3Ealert(1)%3C%2Fscript%3E",
            "/searches/search-%3Cscript%3Ealert(1)%3C%2Fscript%3E?state=failed",
            "/searches/compare?study=search-%3Cscript%3Ealert(1)%3C%2Fscript%3E"]


def test_every_page_answers_200_and_escapes_stored_strings(client, ids):
    for url in pages(ids):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["content-type"] == "text/html; charset=utf-8", url
        assert HOSTILE not in response.text, url


def test_hostile_names_appear_as_text(client, ids):
    assert f'<a href="/runs/{ids.hostile}">{ESCAPED}</a>' in client.get("/runs").text
    run = client.get(f"/runs/{ids.hostile}").text
    assert f"<h1>{ESCAPED} <code>{ids.hostile}</code></h1>" in run
    assert f'<th scope="row">{ESCAPED}</th>' in run  # a class name in the confusion matrix
    assert f"DataError: {ESCAPED}" in client.get(f"/runs/{ids.failed}").text
    search = client.get("/searches").text
    assert f">search-{ESCAPED}</a>" in search


def test_runs_table_shows_headline_test_metrics_precision_and_time(client, ids):
    row = _row(client.get("/runs?q=plain&kind=train").text, ids.plain)
    assert "accuracy 0.85" in row and "macro_f1 0.8" in row and "<td>bf16</td>" in row
    assert '<span class="status completed">completed</span>' in row


def test_runs_table_filters_sorts_and_pages(client, store):
    assert "1 runs · page 1 of 1" in client.get("/runs?kind=trial").text
    assert "1 runs · page 1 of 1" in client.get("/runs?status=running").text
    assert "1 runs · page 1 of 1" in client.get("/runs?q=BROK").text
    first = client.get("/runs?sort=name&order=asc&per_page=2").text
    assert "5 runs · page 1 of 3" in first
    assert _names(first) == sorted([HOSTILE, "broken"])
    assert 'rel="next" href="?sort=name&amp;order=asc&amp;per_page=2&amp;page=2"' in first
    assert 'rel="prev"' not in first
    last = client.get("/runs?sort=name&order=asc&per_page=2&page=3").text
    assert _names(last) == ["plain-trial-0"] and 'rel="next"' not in last
    beyond = client.get("/runs?sort=name&order=asc&per_page=2&page=9").text
    assert ('<td colspan="9">No runs on this page: 5 match, on pages 1 to 3 (<a href="?sort=name'
            '&amp;order=asc&amp;per_page=2&amp;page=3">the last</a>).</td>') in beyond
    assert "No runs match." in client.get("/runs?q=nothing-has-this-name").text


def test_a_run_whose_process_died_shows_as_interrupted(fresh):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    killed = fresh.create_run("killed", {"name": "killed"}, None, "test", 0)
    with fresh._session(write=True) as s:
        s.execute(update(RunRow).where(RunRow.id == killed.id).values(pid=gone.pid))
    write_progress(fresh, killed.id, history(4), epochs=10)  # killed: no history stored
    client = TestClient(create_ui_app(fresh))
    row = _row(client.get("/runs?q=killed").text, killed.id)
    assert '<span class="status interrupted">interrupted</span>' in row
    page = client.get(f"/runs/{killed.id}").text
    assert '<span class="status interrupted" id="status">interrupted</span>' in page
    assert 'http-equiv="refresh"' not in page and 'data-finished="1"' in page  # stops polling
    assert "<summary>History (4 epochs)</summary>" in page and "Training: epoch" not in page
    live_id = next(r.id for r in fresh.list_runs() if r.name == "live")  # this test's process
    live = _row(client.get("/runs?q=live").text, live_id)
    assert '<span class="status running">running</span>' in live
    # the status filter matches what the table shows, not the stored status
    assert killed.id in client.get("/runs?status=interrupted").text
    running = client.get("/runs?status=running").text
    assert killed.id not in running and live_id in running
    compared = client.get(f"/compare?run={killed.id}&run={live_id}").text
    assert [m for m in re.findall(r'<span class="status (\w+)">', compared)] == ["interrupted", "running"]


def test_bad_sort_and_page_are_refused_with_the_reason(client):
    response = client.get("/runs?sort=bogus")
    assert response.status_code == 422
    assert "sort: must be one of created, name, kind, status (got &#39;bogus&#39;)" in response.text
    response = client.get("/runs?status=bogus")
    assert response.status_code == 422
    assert ("status: must be one of running, completed, failed, interrupted (got &#39;bogus&#39;)"
            in response.text)
    response = client.get("/runs?page=0")
    assert response.status_code == 422
    assert "page: Input should be greater than or equal to 1" in response.text


def test_unknown_run_is_404_with_the_stores_message(client):
    response = client.get("/runs/ffffffffffff")
    assert response.status_code == 404
    assert "No run with id &#39;ffffffffffff&#39;." in response.text


def test_run_page_has_curves_metrics_confusion_matrix_and_report_link(client, ids):
    text = client.get(f"/runs/{ids.hostile}").text
    assert re.findall(r'<svg class="chart" [^>]*aria-label="([^"]+)"', text) == [
        "loss", "accuracy", "learning rate"]
    assert '<th scope="row">accuracy</th><td>0.91</td><td>0.61</td>' in text
    assert "<td>40</td><td>2</td>" in text and "<td>3</td><td>15</td>" in text
    assert f'<a href="/runs/{ids.hostile}/report">' in text
    assert '<h2 id="diagnosis">Diagnosis: overfitting</h2>' in text
    assert f"<li>val_loss rose: {ESCAPED}</li>" in text and "<li>Stop early.</li>" in text
    assert 'data-finished="1"' in text and "live.js" not in text  # finished: no polling


def test_a_gan_run_page_draws_both_losses_and_the_frechet_distance(fresh):
    """A GAN's history has no `loss`: its curves are d_loss, g_loss and val_frechet."""
    rows = [{"epoch": e, "d_loss": 1.2 - e / 10, "g_loss": 0.9 + e / 10, "val_d_loss": 1.0,
             "val_g_loss": 1.1, "val_frechet": 0.3 - e / 20, "lr": 5e-4} for e in range(3)]
    gan = fresh.create_run("gan", {"name": "gan"}, None, "test", 0)
    fresh.finish_run(gan.id, "completed", history=rows, metrics={"headline": [["frechet", 0.2]]})
    plain = next(r.id for r in fresh.list_runs() if r.name == "plain")
    client = TestClient(create_ui_app(fresh))
    charts = r'<svg class="chart" [^>]*aria-label="([^"]+)"'
    text = client.get(f"/runs/{gan.id}").text
    assert re.findall(charts, text) == ["d_loss", "g_loss", "frechet", "learning rate"]
    assert re.findall(r'data-label="([^"]+)"', text) == [
        "d_loss", "val_d_loss", "g_loss", "val_g_loss", "val_frechet", "lr"]
    compared = client.get(f"/compare?run={gan.id}&run={plain}").text
    assert re.findall(charts, compared) == ["loss", "d_loss", "g_loss", "accuracy", "frechet",
                                            "learning rate"]
    # no baseline: no baseline column (a classifier's page has one: the test above)
    assert ('<th scope="col">metric</th><th scope="col">deep model</th></tr>' in text
            and '<th scope="row">frechet</th><td>0.2</td></tr>' in text)


def test_running_run_shows_progress_from_its_file_and_polls(client, ids, store):
    text = client.get(f"/runs/{ids.running}").text
    assert "live.js" in text and '<meta http-equiv="refresh" content="5">' in text
    live = client.get(f"/runs/{ids.running}/live").text
    assert re.search(r"Training: epoch 2\s+of 5", live)
    assert "about 6 s left (at most)" in live  # 3 epochs left at 2.0 s each
    assert "data-finished" not in live


def test_report_is_served_only_from_the_artifacts_folder(client, ids, fresh):
    response = client.get(f"/runs/{ids.hostile}/report")
    assert (response.status_code, response.text) == (200, f"<html><body>report of {ids.hostile}</body></html>")
    outside = fresh.create_run("outside", {}, None, "test", 0).id
    fresh.finish_run(outside, "completed", report_path="/etc/passwd")
    response = TestClient(create_ui_app(fresh)).get(f"/runs/{outside}/report")
    assert response.status_code == 404
    assert f"run {outside} has no report under" in response.text


def test_compare_draws_each_run_and_lists_config_differences(client, ids):
    text = client.get(f"/compare?run={ids.hostile}&run={ids.plain}").text
    labels = [f"{ESCAPED} ({ids.hostile[:6]})", f"plain ({ids.plain[:6]})"]
    series = re.findall(r'<g class="series" data-label="([^"]+)"', text)
    assert f"{labels[0]} val_loss" in series and f"{labels[1]} val_loss" in series
    assert '<th scope="row"><code>train.lr</code></th><td><code>0.01</code></td><td><code>0.1</code></td>' in text
    assert '<th scope="row"><code>train.epochs</code></th><td><code>4</code></td><td><code>3</code></td>' in text
    assert '<th scope="row">accuracy</th><td>0.91</td><td>0.85</td>' in text


@pytest.mark.parametrize(("count", "status"), [(1, 422), (6, 422)])
def test_compare_needs_two_to_five_runs(client, ids, count, status):
    query = "&".join(f"run={ids.plain}" for _ in range(count))
    response = client.get(f"/compare?{query}")
    assert response.status_code == status
    assert f"Pick 2 to 5 runs in the runs table (got {count})." in response.text


def test_models_pages_show_versions_aliases_lineage_and_history(client, ids):
    assert '<span class="alias">production → v1</span>' in client.get("/models").text
    text = client.get("/models/digits").text
    assert re.search(r"<td>v2</td>\s*<td><span class=\"alias\">staging</span>", text)
    assert f'<a href="/runs/{ids.plain}">{ids.plain[:8]}</a></td>\n<td></td>' in text  # v1
    assert "<td></td>\n<td>v1</td>" in text  # v2, registered without a run, records its parent v1
    metrics = re.findall(r"</span> </td>\n<td>([^<]*)</td>", text)  # the column after the aliases
    assert metrics == ["accuracy 0.82, macro_f1 0.77", "accuracy 0.81, macro_f1 0.76"]
    events = re.findall(r"<strong>(\w+)</strong>", text)
    assert events == ["alias_set", "alias_set", "registered", "registered"]


def test_unknown_model_is_404(client):
    response = client.get("/models/nope")
    assert response.status_code == 404
    assert "No model named &#39;nope&#39;. Available models: digits." in response.text


def test_search_pages_show_trials_reasons_and_history(client):
    listing = client.get("/searches").text
    assert "<td>maximize</td><td>0.8</td><td>5</td>\n<td>3</td><td>1</td><td>1</td><td>0</td>" in listing
    text = client.get("/searches/search-%3Cscript%3Ealert(1)%3C%2Fscript%3E").text
    assert "5 trials · page 1 of 1" in text
    assert "pruned at epoch 2: val_accuracy 0.3 below the median 0.7" in text
    assert f"ConfigError: {ESCAPED}" in text
    assert 'aria-label="optimisation history"' in text
    assert re.findall(r'data-label="([^"]+)"', text) == ["trial value", "best so far"]
    failed = client.get("/searches/search-%3Cscript%3Ealert(1)%3C%2Fscript%3E?state=failed").text
    assert "1 trials · page 1 of 1" in failed


def test_search_trials_page(client):
    text = client.get("/searches/search-%3Cscript%3Ealert(1)%3C%2Fscript%3E?per_page=2&page=2").text
    assert "5 trials · page 2 of 3" in text
    assert re.findall(r"<tr><td>(\d+)</td>", text) == ["2", "3"]
    beyond = client.get("/searches/search-%3Cscript%3Ealert(1)%3C%2Fscript%3E?state=complete&per_page=2&page=7").text
    assert ('<td colspan="6">No trials on this page: 3 match, on pages 1 to 2 (<a href="?state=complete'
            '&amp;per_page=2&amp;page=2">the last</a>).</td>') in beyond  # it said 'No trials match'
    none = client.get("/searches/search-%3Cscript%3Ealert(1)%3C%2Fscript%3E?state=running").text
    assert '<td colspan="6">No trials match.</td>' in none


def test_unknown_search_and_bad_state(client):
    response = client.get("/searches/nope")
    assert response.status_code == 404
    assert "No search named &#39;nope&#39;." in response.text
    response = client.get("/searches/search-%3Cscript%3Ealert(1)%3C%2Fscript%3E?state=odd")
    assert response.status_code == 422
    assert "state: must be one of complete, pruned, failed, running, waiting (got &#39;odd&#39;)" in response.text


# ------------------------------------------------------------------------ alias moves


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    """A store of its own, since these tests change it."""
    monkeypatch.delenv("DLFORGE_SERVE_TOKEN", raising=False)
    store, _ = make_store(tmp_path)
    yield store
    store.close()


def move(client, token="", confirm="yes", headers=None):
    data = {"alias": "production", "version": "2", "token": token, "confirm": confirm}
    return client.post("/models/digits/aliases", data=data, headers=headers or {},
                       follow_redirects=False)


def test_alias_move_with_token_and_confirmation_changes_the_registry(fresh):
    client = TestClient(create_ui_app(fresh, token=TOKEN))
    response = move(client, token=TOKEN)
    assert (response.status_code, response.headers["location"]) == (
        303, "/models/digits?moved=production+-%3E+v2")
    assert fresh.get_version("digits", "production").version == 2
    last = fresh.history("digits")[-1]
    assert (last.event, last.from_version, last.to_version, last.reason) == (
        "alias_moved", 1, 2, "moved from the dashboard")
    assert "Alias moved: production -&gt; v2" in client.get(response.headers["location"]).text


def test_alias_move_accepts_the_bearer_header(fresh):
    client = TestClient(create_ui_app(fresh, token=TOKEN))
    response = move(client, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 303
    assert fresh.get_version("digits", "production").version == 2


@pytest.mark.parametrize(("token", "confirm", "status", "message"), [
    ("", "yes", 401, "token: missing; type the server&#39;s token"),
    ("wrong", "yes", 401, "token: wrong token"),
    (TOKEN, "", 422, "confirm: tick the box to confirm the change"),
])
def test_alias_move_is_refused_without_token_or_confirmation(fresh, token, confirm, status, message):
    client = TestClient(create_ui_app(fresh, token=TOKEN))
    response = move(client, token=token, confirm=confirm)
    assert response.status_code == status
    assert message in response.text
    assert fresh.get_version("digits", "production").version == 1
    assert [e.event for e in fresh.history("digits")][-1] == "alias_set"


def test_a_dashboard_without_token_refuses_every_change(fresh):
    client = TestClient(create_ui_app(fresh))
    assert "This dashboard has no token" in client.get("/models/digits").text
    response = move(client, token=TOKEN)
    assert response.status_code == 403
    assert "this dashboard has no token, so it refuses changes" in response.text
    assert fresh.get_version("digits", "production").version == 1


def test_token_comes_from_the_servers_variable(fresh, monkeypatch):
    from dlforge.serve.deps import TOKEN_ENV as SERVE_TOKEN_ENV
    from dlforge.ui.auth import TOKEN_ENV

    assert TOKEN_ENV == SERVE_TOKEN_ENV
    monkeypatch.setenv(TOKEN_ENV, "from-env")
    client = TestClient(create_ui_app(fresh))
    assert move(client, token="from-env").status_code == 303


def test_static_files_and_home(client):
    assert client.get("/", follow_redirects=False).headers["location"] == "/runs"
    assert client.get("/static/ui.css").status_code == 200
    assert "fetch(url" in client.get("/static/live.js").text


def _row(html: str, run_id: str) -> str:
    match = re.search(rf'<tr>\s*<td><input type="checkbox" name="run" value="{run_id}".*?</tr>', html, re.S)
    assert match, run_id
    return match.group(0)


def _names(html: str) -> list[str]:
    import html as h

    return [h.unescape(n) for n in re.findall(r'<td><a href="/runs/\w+">([^<]+)</a> <code>', html)]
