"""The dashboard in a real browser: headless Chromium (Debian's chromium and chromium-driver,
driven by selenium) against a real `dlforge ui` process on a free loopback port, over a
store holding runs, a search, a model and, for the live page, a real `dlforge run` training.

Screenshots of each page go to test-artifacts/ui/ (gitignored).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from ui_store import HOSTILE, TOKEN, make_store

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "ui"
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = [
    pytest.mark.e2e, pytest.mark.browser,
    pytest.mark.skipif(not (CHROMIUM and DRIVER),
                       reason="needs Debian's chromium and chromium-driver on PATH "
                              "(apt-get install chromium chromium-driver; .ci/run installs them)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    ws = tmp_path_factory.mktemp("ui-browser")
    store, ids = make_store(ws)
    store.close()
    return ws, ids


@pytest.fixture(scope="module")
def server(workspace):
    ws, _ = workspace
    port = free_port()
    env = {**os.environ, "DLFORGE_WORKSPACE": str(ws), "DLFORGE_SERVE_TOKEN": TOKEN}
    proc = subprocess.Popen([sys.executable, "-m", "dlforge", "ui", "--port", str(port)],
                            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/runs", timeout=2)  # noqa: S310 - loopback
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"dlforge ui did not start:\n{proc.stdout.read().decode()}")
            time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def driver():
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (the dev extra)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1280,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(DRIVER), options=options)
    shutil.rmtree(SHOTS, ignore_errors=True)  # this run's screenshots only
    SHOTS.mkdir(parents=True)
    yield browser
    browser.quit()


def visit(driver, url: str, shot: str | None = None) -> list[dict]:
    """Load `url`; returns the browser's console errors since the last call."""
    driver.get(url)
    if shot:
        driver.save_screenshot(str(SHOTS / f"{shot}.png"))
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def open_store(workspace):
    from dlforge.registry import Store

    return Store.open(workspace[0])


def test_every_page_loads_without_console_errors(driver, server, workspace):
    ids = workspace[1]
    search = "/searches/search-%3Cscript%3Ealert(1)%3C%2Fscript%3E"
    pages = {"runs": "/runs", "run": f"/runs/{ids.hostile}", "run-live": f"/runs/{ids.running}",
             "compare": f"/compare?run={ids.hostile}&run={ids.plain}", "models": "/models",
             "model": "/models/digits", "searches": "/searches", "search": search,
             "search-compare": f"/searches/compare?study={search.rsplit('/', 1)[1]}"}
    for name, path in pages.items():
        assert visit(driver, server + path, shot=name) == [], path
        assert driver.title.endswith("· dlforge"), path
    assert {f"{n}.png" for n in pages} <= {p.name for p in SHOTS.glob("*.png")}


def test_hostile_names_are_shown_not_executed(driver, server, workspace):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    ids = workspace[1]
    for path in ("/runs", f"/runs/{ids.hostile}", "/searches"):
        visit(driver, server + path)
        with pytest.raises(NoAlertPresentException):
            driver.switch_to.alert.text  # noqa: B018 - raises when no script ran alert()
    visit(driver, f"{server}/runs/{ids.hostile}")
    assert driver.find_element(By.TAG_NAME, "h1").text == f"{HOSTILE} {ids.hostile}"
    assert driver.execute_script("return document.querySelectorAll('main script').length") == 0


def test_compare_draws_the_runs_ticked_in_the_table(driver, server, workspace):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    ids = workspace[1]
    visit(driver, f"{server}/runs")
    for run_id in (ids.hostile, ids.plain):
        driver.find_element(By.CSS_SELECTOR, f'input[name="run"][value="{run_id}"]').click()
    driver.find_element(By.XPATH, "//button[starts-with(., 'Compare the ticked runs')]").click()
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.ID, "compared"))
    assert driver.current_url.startswith(f"{server}/compare?run=")
    picked = [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#compared li")]
    assert sorted(picked) == sorted([f"{HOSTILE} ({ids.hostile[:6]}) completed",
                                     f"plain ({ids.plain[:6]}) completed"])
    labels = {g.get_attribute("data-label")
              for g in driver.find_elements(By.CSS_SELECTOR, "svg.chart g.series")}
    assert {f"{HOSTILE} ({ids.hostile[:6]}) val_loss", f"plain ({ids.plain[:6]}) val_loss"} <= labels
    lines = driver.find_elements(By.CSS_SELECTOR, "svg.chart g.series polyline")
    assert len(lines) >= 4 and all(line.get_attribute("points") for line in lines)
    driver.save_screenshot(str(SHOTS / "compare-picked.png"))
    assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []


def move_alias(driver, server, token: str) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    visit(driver, f"{server}/models/digits")
    alias = driver.find_element(By.NAME, "alias")
    alias.clear()
    alias.send_keys("production")
    Select(driver.find_element(By.NAME, "version")).select_by_visible_text("v2")
    driver.find_element(By.NAME, "token").send_keys(token)
    driver.find_element(By.NAME, "confirm").click()
    driver.find_element(By.XPATH, "//button[.='Move alias']").click()
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#moved, .error"))
    return driver.find_element(By.TAG_NAME, "main").text


def test_alias_move_needs_the_token(driver, server, workspace):
    with open_store(workspace) as store:
        assert store.get_version("digits", "production").version == 1
        text = move_alias(driver, server, token="")
        assert "token: missing" in text
        assert store.get_version("digits", "production").version == 1
        text = move_alias(driver, server, token=TOKEN)
        assert "Alias moved: production -> v2" in text
        assert store.get_version("digits", "production").version == 2
        driver.save_screenshot(str(SHOTS / "model-moved.png"))


def test_live_page_advances_while_a_run_trains(driver, server, workspace):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    ws = workspace[0]
    env = {**os.environ, "DLFORGE_WORKSPACE": str(ws)}
    run = subprocess.Popen(
        [sys.executable, "-m", "dlforge", "run", "examples/digits.yaml", "--quiet",
         "--set", "name=live-digits", "--set", "train.epochs=40", "--set", "train.batch_size=16",
         "--set", "train.early_stopping=null"],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        run_id = _wait_for_running(workspace, "live-digits", run)
        visit(driver, f"{server}/runs/{run_id}")
        seen = []

        def epoch_shown(d):
            match = re.search(r"Training: epoch (\d+)", d.find_element(By.ID, "live").text)
            if match:
                seen.append(int(match.group(1)))
            return len(set(seen)) >= 2

        WebDriverWait(driver, 120, poll_frequency=0.2).until(epoch_shown)
        driver.save_screenshot(str(SHOTS / "run-training.png"))
        assert seen == sorted(seen) and seen[-1] > seen[0]  # advanced without a reload
        WebDriverWait(driver, 300, poll_frequency=0.5).until(
            lambda d: d.find_element(By.ID, "status").text == "completed")
        assert run.wait(timeout=60) == 0
        main = driver.find_element(By.TAG_NAME, "main").text
        assert "Confusion matrix" in main and "Diagnosis: " in main  # the pipeline stored it
        driver.save_screenshot(str(SHOTS / "run-finished.png"))
        assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()


def _wait_for_running(workspace, name: str, proc: subprocess.Popen) -> str:
    from dlforge.registry.queries import RunFilter, runs_page

    deadline = time.monotonic() + 180
    with open_store(workspace) as store:
        while time.monotonic() < deadline:
            lines = runs_page(store, RunFilter(name=name)).lines
            if lines:
                return lines[0].id
            if proc.poll() is not None:
                pytest.fail(f"dlforge run exited {proc.returncode}:\n{proc.stdout.read().decode()}")
            time.sleep(0.1)
    pytest.fail(f"no run named {name} appeared within 180 s")
