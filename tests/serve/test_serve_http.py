"""`dlforge serve` as a real process on a free loopback port, predicting over HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from serve_models import image_pixels, make_store

from dlforge.cli import main
from dlforge.registry import Predictor, load_bundle
from dlforge.serve.arrays import NPY_TYPE, encode_b64, encode_npy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url: str, body: dict | bytes | None = None,
         content_type: str = "application/json") -> tuple[int, dict]:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    request = urllib.request.Request(url, data=data, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_until_up(base: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:  # bounded: the server gets `seconds` to start
        if process.poll() is not None:
            raise AssertionError(f"server exited: {process.stderr.read().decode()}")
        try:
            if call(f"{base}/readyz")[0] == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"server not ready after {seconds} s")


def test_real_server_predicts_over_http(tmp_path):
    store = make_store(tmp_path)
    store.close()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DLFORGE_SERVE_TOKEN": ""}
    process = subprocess.Popen(
        [sys.executable, "-m", "dlforge", "-w", str(tmp_path / "ws"), "serve", "--port", str(port),
         "--model", "digits@production", "--log-level", "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        wait_until_up(base, process)
        x = image_pixels(2, seed=9)
        status, body = call(f"{base}/v1/models/digits/predict", {"inputs": x.tolist(), "top_k": 2})
        version = store.resolve("digits@production")
        expected = Predictor(load_bundle(version.bundle_path)).predict(x, top_k=2)
        assert (status, body) == (200, {"model": "digits", "version": 1, "predictions": expected})
        predict = f"{base}/v1/models/digits/predict"
        assert call(predict, encode_b64(x, top_k=2)) == (status, body)
        assert call(f"{predict}?top_k=2", encode_npy(x), NPY_TYPE) == (status, body)
        assert call(f"{base}/v1/models/nope/predict", {"inputs": []}) == (
            422, {"detail": "inputs: empty; send at least one input"})
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_serve_refuses_an_unknown_model_before_starting(tmp_path, capsys):
    make_store(tmp_path).close()
    code = main(["-w", str(tmp_path / "ws"), "serve", "--model", "digits@canary"])
    assert code == 1
    assert capsys.readouterr().err == (
        "error: Model 'digits' has no alias 'canary'. Available aliases: production. "
        "Use `dlforge models show digits` to see all.\n")


@pytest.mark.parametrize(("option", "value"), [("--log-level", "loud"), ("--loop", "trio"),
                                               ("--http", "h2")])
def test_serve_refuses_an_unknown_log_level_loop_or_parser(tmp_path, capsys, option, value):
    assert main(["-w", str(tmp_path / "ws"), "serve", option, value]) == 2
    err = capsys.readouterr().err
    assert option in err and repr(value) in err  # typer's usage box (wrapped to the terminal)
