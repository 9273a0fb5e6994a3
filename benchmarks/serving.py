"""Serving latency and throughput of the Basic CNN over HTTP: micro-batching vs batch-1, and
the request path before and after (JSON pixel lists on asyncio + h11 vs base64 / .npy bodies on
uvloop + httptools), against the same model in-process.

Trains a default Basic CNN (28x28x1, 10 classes) for one short epoch on random images with
`dlforge.run` in a temporary workspace (speed does not depend on accuracy), then starts the
real `dlforge serve --model bench@production` on a free loopback port once per server in
`SERVERS`: micro-batching (`serve.max_batch` 32, `max_wait_ms` 5) on uvicorn's pure-Python
stack (`--loop asyncio --http h11`, the stack before uvloop and httptools were dependencies)
and on the default one, batch-1 (`serve.max_batch` 1), and micro-batching with
`serve.threads=2` and `serve.threads=1` (fixed counts; the default chooses per batch). The
load generator (benchmarks/serving_load.py, its own process: one uvloop event loop, a
keep-alive raw stream per client, the request encoded once) sends single-image predicts in
each encoding of the row (JSON pixel list, base64 uint8, .npy uint8) from 1 or 32 concurrent
clients, each row bounded by a request count and a time cap; one row
repeats a load with the thread-per-client `http.client` generator used before, to show what a
client costs. The server's CPU time per request comes from /proc (it does not depend on what
else the machine runs), split into the event-loop thread (HTTP, routing, parsing, responses)
and the other threads (the inference thread: preprocessing, forward pass, prediction dicts);
the client's CPU time per request is its process's. Beside them, the same model in this
process: `Predictor.predict` at batch 1 and 32.

    .venv/bin/python benchmarks/serving.py            # ~4 min on a quiet 2-core machine
    .venv/bin/python benchmarks/serving.py --quick    # a smoke run

Targets: micro-batching gives >= 3x the requests/s of batch-1 serving at 32 clients; HTTP
requests/s at 32 clients >= 60 % of the in-process batch-32 samples/s; p99 latency at 1
client under 10 ms (28x28 inputs).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_line, machine_line  # noqa: E402
from serving_load import MODEL, SIDE  # noqa: E402

BATCHED = {"max_batch": 32, "max_wait_ms": 5.0}  # serve.max_wait_ms at its default
UNBATCHED = {"max_batch": 1, "max_wait_ms": 0.0}
PYTHON_STACK = ("--loop", "asyncio", "--http", "h11")
# (name, serve settings, dlforge serve options, [(encoding, clients, load generator)]).
# serve.threads left at its default (by batch size: all physical cores for 8 or more samples,
# cores - 1 below) but in the last two servers (fixed counts, the old default 1 on 2 cores);
# the "threads" load generator (the one before) once, to show what a client costs.
SERVERS = (
    ("micro-batching, asyncio + h11", BATCHED, PYTHON_STACK,
     [("json", 1, "asyncio"), ("json", 32, "asyncio")]),
    ("micro-batching", BATCHED, (),
     [("json", 1, "asyncio"), ("b64", 1, "asyncio"), ("json", 32, "asyncio"),
      ("b64", 32, "asyncio"), ("npy", 32, "asyncio"), ("b64", 32, "threads")]),
    ("batch-1", UNBATCHED, (), [("json", 32, "asyncio"), ("b64", 32, "asyncio")]),
    ("micro-batching, serve.threads=2", {**BATCHED, "threads": 2}, (), [("b64", 32, "asyncio")]),
    ("micro-batching, serve.threads=1", {**BATCHED, "threads": 1}, (),
     [("b64", 1, "asyncio"), ("b64", 32, "asyncio")]),
)
IN_PROCESS_32 = "in-process Predictor.predict, batch 32"


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
def server(workspace: Path, settings: dict[str, float], options: tuple[str, ...] = (),
           env: dict[str, str] | None = None) -> Iterator[tuple[str, int]]:
    """A `dlforge serve` process with `settings`, command-line `options` and environment
    `env` (default this process's); yields its base URL and process id once it is ready."""
    port = free_port()
    sets = [arg for key, value in settings.items() for arg in ("--set", f"serve.{key}={value}")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "dlforge", "-w", str(workspace), "serve", "--model",
         f"{MODEL}@production", "--port", str(port), "--log-level", "error", *options, *sets],
        stderr=subprocess.DEVNULL, env=env)
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


def load_in_child(base: str, clients: int, requests: int, seconds: float, encoding: str,
                  client: str) -> dict[str, object]:
    """Run the load generator (benchmarks/serving_load.py) in its own process, return its
    measurements (latencies, elapsed seconds, its own CPU ms per request)."""
    job = json.dumps({"base": base, "clients": clients, "requests": requests, "seconds": seconds,
                      "encoding": encoding, "client": client})
    script = Path(__file__).resolve().parent / "serving_load.py"
    out = subprocess.run([sys.executable, str(script), job], check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout)


def batch_counts(base: str) -> tuple[float, float]:
    """(inputs, forward passes) so far, from the server's batch-size histogram."""
    text = httpx.get(f"{base}/metrics").text
    values = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    return values["dlforge_batch_size_sum"], values["dlforge_batch_size_count"]


def cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU time (user + system) a process has used so far (Linux /proc): its main thread (the
    event loop) and its other threads (inference, torch's), in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    main = rest = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # a thread that ended meanwhile
            continue
        used = (int(fields[11]) + int(fields[12])) / tick
        if task.name == str(pid):
            main += used
        else:
            rest += used
    return main, rest


def row(name: str, clients: int, latencies: list[float], per_second: float, batch: float,
        cpu_ms: tuple[float, float] | None = None, client_ms: float | None = None) -> dict:
    p50, p99 = np.percentile(np.array(latencies) * 1000, [50, 99])
    return {"name": name, "clients": clients, "rate": per_second, "p50": p50, "p99": p99,
            "batch": batch, "n": len(latencies), "cpu": cpu_ms, "client": client_ms}


def http_rows(workspace: Path, server_row: tuple, requests: int, seconds: float,
              env: dict[str, str] | None = None) -> list[dict]:
    """One server, loaded in turn by each (encoding, clients, client) of its row in `SERVERS`."""
    name, settings, options, loads = server_row
    with server(workspace, settings, options, env) as (base, pid):
        return [load_row(base, pid, f"{name}, {encoding}" + ("" if client == "asyncio" else
                                                             f", {client} client"),
                         (encoding, clients, client), requests, seconds)
                for encoding, clients, client in loads]


def load_row(base: str, pid: int, name: str, load: tuple[str, int, str], requests: int,
             seconds: float) -> dict:
    """One load (encoding, clients, load generator) on the server at `base` (process `pid`)."""
    encoding, clients, client = load
    inputs, passes = batch_counts(base)
    before = cpu_seconds(pid)
    got = load_in_child(base, clients, requests, seconds, encoding, client)
    after = cpu_seconds(pid)  # the warm-up requests are in, a few of 100s
    inputs_after, passes_after = batch_counts(base)
    n = len(got["latencies"])
    cpu = tuple(1000 * (a - b) / (n + clients) for a, b in zip(after, before, strict=True))
    return row(name, clients, got["latencies"], n / got["elapsed"],
               (inputs_after - inputs) / max(1.0, passes_after - passes), cpu,
               got["client_cpu_ms"])


def in_process_rows(workspace: Path, calls: int) -> list[dict]:
    """`Predictor.predict` in this process at batch 1 and 32 on torch's default threads (the
    targets' reference), and at batch 32 on one thread (the server's inference thread on a
    2-core machine): the model without HTTP, about `calls` samples per row."""
    import torch

    from dlforge.registry import Predictor, Store, load_bundle

    with Store.open(workspace) as store:
        version = store.get_version(MODEL, "production")
    predictor = Predictor(load_bundle(version.bundle_path), version=version)
    default_threads = torch.get_num_threads()
    rows = []
    for batch, threads in ((1, default_threads), (32, default_threads), (32, 1)):
        torch.set_num_threads(threads)
        images = np.random.default_rng(1).integers(0, 256, (batch, SIDE, SIDE)).astype(np.float32)
        for _ in range(3):
            predictor.predict(images)
        latencies = []
        for _ in range(max(20, calls // batch)):
            start = time.perf_counter()
            predictor.predict(images)
            latencies.append(time.perf_counter() - start)
        name = IN_PROCESS_32 if batch == 32 else f"in-process Predictor.predict, batch {batch}"
        rows.append(row(f"{name}, {threads} thread{'s' if threads > 1 else ''}", 1, latencies,
                        batch * len(latencies) / sum(latencies), batch))
    torch.set_num_threads(default_threads)
    return rows


def report(rows: list[dict]) -> None:
    print("| setting, encoding | clients | requests/s | p50 ms | p99 ms | mean batch | server CPU "
          "ms/request: event loop + other threads | client CPU ms/request | requests |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        cpu = "" if r["cpu"] is None else f"{sum(r['cpu']):.2f} = {r['cpu'][0]:.2f} + {r['cpu'][1]:.2f}"
        client = "" if r["client"] is None else f"{r['client']:.3f}"
        print(f"| {r['name']} | {r['clients']} | {r['rate']:.0f} | {r['p50']:.1f} | "
              f"{r['p99']:.1f} | {r['batch']:.1f} | {cpu} | {client} | {r['n']} |")
    print("(in-process rows: requests/s = samples/s)")
    for line in target_lines(rows):
        print(line)


def target_lines(rows: list[dict]) -> list[str]:
    """The issue's three targets, each with its ratio and verdict, and the load generator's cost."""
    rate = {(r["name"], r["clients"]): r["rate"] for r in rows}
    in_process = next(r["rate"] for r in rows if r["name"].startswith(IN_PROCESS_32))
    lines = []
    for encoding in ("json", "b64"):
        ratio = rate[(f"micro-batching, {encoding}", 32)] / rate[(f"batch-1, {encoding}", 32)]
        lines.append(f"target: micro-batching >= 3x batch-1 requests/s at 32 clients "
                     f"({encoding}): {ratio:.2f}x, {_met(ratio >= 3)}")
    for name, clients in rate:
        if clients == 32 and name.startswith("micro-batching"):
            share = rate[(name, 32)] / in_process
            lines.append(f"target: HTTP >= 60 % of in-process batch 32 ({in_process:.0f} "
                         f"samples/s): {name}: {share:.0%}, {_met(share >= 0.6)}")
    p99 = next(r["p99"] for r in rows if r["name"] == "micro-batching, json" and r["clients"] == 1)
    lines.append(f"target: p99 at 1 client < 10 ms (micro-batching server, json): {p99:.1f} ms, "
                 f"{_met(p99 < 10)}")
    client = {r["name"]: r["client"] for r in rows if r["clients"] == 32}
    if "micro-batching, b64, threads client" in client:
        lines.append(f"load generator CPU per request (micro-batching, b64, 32 clients): "
                     f"asyncio {client['micro-batching, b64']:.3f} ms, threads (before) "
                     f"{client['micro-batching, b64, threads client']:.3f} ms")
    return lines


def _met(ok: bool) -> str:
    return "met" if ok else "not met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Fewer requests (a smoke run).")
    args = parser.parse_args()
    requests, seconds = (200, 5.0) if args.quick else (3000, 15.0)
    print(machine_line(), flush=True)
    print(cpu_line(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.pop("DLFORGE_SERVE_TOKEN", None)
        workspace = register(Path(tmp))
        rows = [r for server_row in SERVERS for r in http_rows(workspace, server_row, requests, seconds)]
        rows += in_process_rows(workspace, requests)
    report(rows)
    print(machine_line())


if __name__ == "__main__":
    main()
