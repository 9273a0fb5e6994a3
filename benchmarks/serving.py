"""Serving latency and throughput of the Basic CNN over HTTP, with and without micro-batching.

Trains a default Basic CNN (28x28x1, 10 classes) for one short epoch on random images with
`dlforge.run` in a temporary workspace (speed does not depend on accuracy), then starts the
real `dlforge serve --model bench@production` on a free loopback port three times: with
micro-batching (`serve.max_batch` 32, `max_wait_ms` 5), without (`serve.max_batch` 1), and
with micro-batching and `serve.threads=2`. A load generator in its own process (threads, one
keep-alive connection each) sends single-image JSON predicts from 1 and 32 concurrent clients,
each row bounded by a request count and a time cap; the server's CPU time per request comes
from /proc (it does not depend on what else the machine runs). Beside them, the same model in
this process: `Predictor.predict` at batch 1 and 32.

    .venv/bin/python benchmarks/serving.py            # ~3.5 min on a shared 2-core machine
    .venv/bin/python benchmarks/serving.py --quick    # a smoke run

Targets: micro-batching gives >= 3x the requests/s of batch-1 serving at 32 clients; p99
latency at 1 client under 10 ms (28x28 inputs).
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_line  # noqa: E402

MODEL = "bench"
SIDE = 28
BATCHED = {"max_batch": 32, "max_wait_ms": 5.0}  # serve.max_wait_ms at its default
UNBATCHED = {"max_batch": 1, "max_wait_ms": 0.0}
# serve.threads left at its default (physical cores - 1: one on this 2-core machine), and the
# batching server again with 2, to show what the default saves.
SERVERS = (("micro-batching", BATCHED), ("batch-1", UNBATCHED),
           ("micro-batching, serve.threads=2", {**BATCHED, "threads": 2}))


def register(root: Path) -> Path:
    """Train and register the Basic CNN in a fresh workspace; `production` points at it."""
    import dlforge
    from dlforge.registry import Store

    rng = np.random.default_rng(0)
    np.savez(root / "images.npz", x_train=rng.integers(0, 256, (256, SIDE, SIDE), dtype=np.uint8),
             y_train=np.arange(256) % 10)
    workspace = root / "ws"
    config = {"name": MODEL, "data": {"source": "npz", "path": str(root / "images.npz")},
              "model": {"type": "basic_cnn"}, "train": {"epochs": 1, "batch_size": 64}}
    dlforge.run(config, workspace=workspace, progress=False)
    with Store.open(workspace) as store:
        store.set_alias(MODEL, "production", 1, "benchmark")
    return workspace


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server(workspace: Path, settings: dict[str, float],
           options: tuple[str, ...] = ()) -> Iterator[tuple[str, int]]:
    """A `dlforge serve` process with `settings` and command-line `options`; yields its base
    URL and process id once it is ready."""
    port = free_port()
    sets = [arg for key, value in settings.items() for arg in ("--set", f"serve.{key}={value}")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "dlforge", "-w", str(workspace), "serve", "--model",
         f"{MODEL}@production", "--port", str(port), "--log-level", "error", *options, *sets],
        stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # bounded wait for startup
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"dlforge serve did not become ready on {base} within 60 s")
        yield base, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def request_body(encoding: str) -> tuple[bytes, str]:
    """One 28x28 image as a predict body in `encoding` (json, b64, npy), and its content type."""
    from dlforge.serve.arrays import NPY_TYPE, encode_b64, encode_npy

    image = np.random.default_rng(1).integers(0, 256, (1, SIDE, SIDE), dtype=np.uint8)
    if encoding == "json":
        return json.dumps({"inputs": image.tolist()}).encode(), "application/json"
    if encoding == "b64":
        return json.dumps(encode_b64(image)).encode(), "application/json"
    return encode_npy(image), NPY_TYPE


def _load(base: str, clients: int, requests: int, seconds: float,
          encoding: str = "json") -> dict[str, object]:
    """Latencies of up to `requests` predicts from `clients` threads, stopping after `seconds`.

    Each client is a thread with one keep-alive `http.client` connection: ~0.3 ms of client
    CPU per request here, where httpx's AsyncClient took ~10 ms and so measured itself.
    """
    content, content_type = request_body(encoding)
    host, port = base.removeprefix("http://").split(":")
    path = f"/v1/models/{MODEL}/predict"
    latencies: list[float] = []
    counter = itertools.count()  # shared: the clients stop after `requests` in total
    start_line = threading.Barrier(clients + 1, timeout=120)
    errors: list[BaseException] = []

    def client() -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        try:
            _post(conn, path, content, content_type)  # warm up the connection and the server
            start_line.wait()
            stop_at = time.perf_counter() + seconds
            while next(counter) < requests and time.perf_counter() < stop_at:
                begin = time.perf_counter()
                _post(conn, path, content, content_type)
                latencies.append(time.perf_counter() - begin)  # list.append is atomic
        except Exception as exc:  # reported by the main thread, which would wait otherwise
            errors.append(exc)
            start_line.abort()
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    try:
        start_line.wait()
    except threading.BrokenBarrierError:
        pass
    begin = time.perf_counter()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"{len(errors)} client(s) failed; the first: {errors[0]!r}")
    return {"latencies": latencies, "elapsed": time.perf_counter() - begin}


def _post(conn: http.client.HTTPConnection, path: str, content: bytes, content_type: str) -> None:
    conn.request("POST", path, body=content, headers={"Content-Type": content_type})
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        raise RuntimeError(f"predict answered {response.status}")


def load_in_child(base: str, clients: int, requests: int, seconds: float) -> dict[str, object]:
    """Run the load generator in its own process (its own GIL), return its measurements."""
    job = json.dumps({"base": base, "clients": clients, "requests": requests, "seconds": seconds})
    out = subprocess.run([sys.executable, __file__, "--load", job], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout)


def batch_counts(base: str) -> tuple[float, float]:
    """(inputs, forward passes) so far, from the server's batch-size histogram."""
    text = httpx.get(f"{base}/metrics").text
    values = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    return values["dlforge_batch_size_sum"], values["dlforge_batch_size_count"]


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def row(name: str, clients: int, latencies: list[float], per_second: float, batch: float,
        cpu_ms: float | None = None) -> dict:
    p50, p99 = np.percentile(np.array(latencies) * 1000, [50, 99])
    return {"name": name, "clients": clients, "rate": per_second, "p50": p50, "p99": p99,
            "batch": batch, "n": len(latencies), "cpu": cpu_ms}


def http_rows(workspace: Path, name: str, settings: dict, requests: int, seconds: float) -> list[dict]:
    """One server with `settings`, loaded by 1 then 32 clients."""
    rows = []
    with server(workspace, settings) as (base, pid):
        for clients in (1, 32):
            inputs, passes = batch_counts(base)
            cpu = cpu_seconds(pid)
            got = load_in_child(base, clients, requests, seconds)
            cpu = cpu_seconds(pid) - cpu  # the warm-up requests are in, a few of 100s
            inputs_after, passes_after = batch_counts(base)
            n = len(got["latencies"])
            rows.append(row(name, clients, got["latencies"], n / got["elapsed"],
                            (inputs_after - inputs) / max(1.0, passes_after - passes),
                            1000 * cpu / (n + clients)))
    return rows


def in_process_rows(workspace: Path, calls: int) -> list[dict]:
    """`Predictor.predict` in this process at batch 1 and 32 (the model without HTTP)."""
    import torch

    from dlforge.registry import Predictor, Store, load_bundle

    with Store.open(workspace) as store:
        version = store.get_version(MODEL, "production")
    predictor = Predictor(load_bundle(version.bundle_path), version=version)
    rows = []
    for batch in (1, 32):
        images = np.random.default_rng(1).integers(0, 256, (batch, SIDE, SIDE)).astype(np.float32)
        for _ in range(3):
            predictor.predict(images)
        latencies = []
        for _ in range(max(5, calls // batch)):
            start = time.perf_counter()
            predictor.predict(images)
            latencies.append(time.perf_counter() - start)
        name = f"in-process Predictor.predict, batch {batch}, {torch.get_num_threads()} threads"
        rows.append(row(name, 1, latencies, batch * len(latencies) / sum(latencies), batch))
    return rows


def report(rows: list[dict]) -> None:
    print("| setting | clients | requests/s | p50 ms | p99 ms | mean batch | server CPU ms/request | requests |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        cpu = "" if r["cpu"] is None else f"{r['cpu']:.2f}"
        print(f"| {r['name']} | {r['clients']} | {r['rate']:.0f} | {r['p50']:.1f} | "
              f"{r['p99']:.1f} | {r['batch']:.1f} | {cpu} | {r['n']} |")
    by = {(r["name"], r["clients"]): r for r in rows}
    ratio = by[("micro-batching", 32)]["rate"] / by[("batch-1", 32)]["rate"]
    p99 = by[("micro-batching", 1)]["p99"]
    print(f"target: micro-batching >= 3x batch-1 requests/s at 32 clients: {ratio:.2f}x, "
          f"{'met' if ratio >= 3 else 'not met'}")
    print(f"target: p99 at 1 client < 10 ms (micro-batching server): {p99:.1f} ms, "
          f"{'met' if p99 < 10 else 'not met'}")
    print("(in-process rows: requests/s = samples/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Fewer requests (a smoke run).")
    parser.add_argument("--load", help=argparse.SUPPRESS)  # the load generator's child process
    args = parser.parse_args()
    if args.load:
        job = json.loads(args.load)
        print(json.dumps(_load(job["base"], job["clients"], job["requests"], job["seconds"],
                               job.get("encoding", "json"))))
        return
    requests, seconds = (200, 5.0) if args.quick else (3000, 15.0)
    print(machine_line(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.pop("DLFORGE_SERVE_TOKEN", None)
        workspace = register(Path(tmp))
        rows = [r for name, settings in SERVERS
                for r in http_rows(workspace, name, settings, requests, seconds)]
        rows += in_process_rows(workspace, requests // 10)
    report(rows)
    print(machine_line())


if __name__ == "__main__":
    main()
