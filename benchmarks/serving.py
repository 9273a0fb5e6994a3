"""Serving throughput and latency over HTTP, with and without micro-batching.

Registers a small image MLP in a temporary workspace, starts `dlforge serve` on a free
loopback port (a separate process, so the load generator does not share its GIL), and sends single-image predict requests from C concurrent
clients. For each (max_batch, concurrency) it prints requests/s, p50/p95 latency and the mean
micro-batch size read from /metrics.

    python benchmarks/serving.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import torch
from prometheus_client.parser import text_string_to_metric_families

from dlforge.config.schema import ImagePreprocess, MLPConfig
from dlforge.data.dataset import TaskSpec
from dlforge.data.preprocess import ImagePreprocessor
from dlforge.models import build_model
from dlforge.registry import Store
from dlforge.registry.bundle import save_bundle

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine_line  # noqa: E402


def register_model(root: Path) -> Store:
    x = np.random.default_rng(0).integers(0, 256, (64, 1, 28, 28), dtype=np.uint8)
    pre = ImagePreprocessor(ImagePreprocess()).fit(x)
    torch.manual_seed(0)
    cfg = MLPConfig(hidden=[256, 128])
    model = build_model(cfg, input_shape=pre.output_shape, num_outputs=10)
    task = TaskSpec("multiclass", tuple(str(i) for i in range(10)))
    bundle = save_bundle(root / "b", model=model, model_config=cfg, input_shape=pre.output_shape,
                         num_outputs=10, vocab_size=None, preprocessor=pre, task=task,
                         threshold=None, metrics={})
    store = Store.open(root / "ws")
    store.register("bench", None, bundle, {})
    return store


async def load(base: str, concurrency: int, requests: int, body: dict) -> tuple[list[float], float]:
    """Latencies of `requests` predicts from `concurrency` clients, and the wall time they took."""
    latencies: list[float] = []
    counter = iter(range(requests))  # shared: the clients stop after `requests` in total

    async def client(http: httpx.AsyncClient) -> None:
        for _ in counter:
            start = time.perf_counter()
            response = await http.post(f"{base}/v1/models/bench/predict", json=body)
            response.raise_for_status()
            latencies.append(time.perf_counter() - start)

    async with httpx.AsyncClient(timeout=60) as http:
        await http.post(f"{base}/v1/models/bench/predict", json=body)  # load the model first
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return latencies, elapsed


def mean_batch(base: str) -> float:
    text = httpx.get(f"{base}/metrics").text
    values = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    return values["dlforge_batch_size_sum"] / max(1.0, values["dlforge_batch_size_count"])


def measure(workspace: Path, max_batch: int, concurrency: int, requests: int) -> str:
    """One row: a fresh `dlforge serve` process (its own GIL and cores), then the load."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "dlforge", "-w", str(workspace), "serve", "--port", str(port),
         "--log-level", "error", "--set", f"serve.max_batch={max_batch}",
         "--set", "serve.max_wait_ms=2"], env={**os.environ, "OMP_NUM_THREADS": "1"},
        stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):  # bounded wait for startup
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        body = {"inputs": np.zeros((1, 28, 28), dtype=np.uint8).tolist()}
        latencies, elapsed = asyncio.run(load(base, concurrency, requests, body))
        batch = mean_batch(base)
    finally:
        server.terminate()
        server.wait(timeout=30)
    p50, p95 = np.percentile(np.array(latencies) * 1000, [50, 95])
    return (f"| {max_batch} | {concurrency} | {len(latencies) / elapsed:.0f} | {p50:.1f} | "
            f"{p95:.1f} | {batch:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Fewer requests (a smoke run).")
    args = parser.parse_args()
    requests = 100 if args.quick else 600
    print(machine_line())
    print("| max_batch | clients | requests/s | p50 ms | p95 ms | mean batch |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        register_model(Path(tmp)).close()
        for max_batch in (1, 32):
            for concurrency in (1, 16):
                print(measure(Path(tmp) / "ws", max_batch, concurrency, requests), flush=True)


if __name__ == "__main__":
    main()
