"""The load generator of benchmarks/serving.py: concurrent keep-alive clients sending one
pre-encoded predict request over and over, and what the clients themselves cost.

On a 2-core machine the load generator shares the cores with the server it measures, so every
millisecond of client CPU is one the server does not get. Two clients:

- ``asyncio`` (the default): one process, one uvloop event loop, a raw stream per connection;
  the whole request (request line, headers, body) is encoded once and written as one bytes
  object, and a response is read as a header block plus Content-Length bytes, without an HTTP
  library. About 0.05 ms of CPU per request.
- ``threads`` (the client before): one thread and one ``http.client`` connection per client,
  which builds and parses every message in Python and switches threads under the GIL.

Each run reports the client's own CPU time per request (user + system of its process over the
measured window), so a reader can see what the measurement took from the server.

Run by benchmarks/serving.py in a child process (its own GIL):

    python benchmarks/serving_load.py '{"base": "http://127.0.0.1:8000", "clients": 32,
        "requests": 3000, "seconds": 15, "encoding": "b64", "client": "asyncio"}'
"""

from __future__ import annotations

import asyncio
import http.client
import itertools
import json
import sys
import threading
import time
from typing import Any

import numpy as np

MODEL = "bench"
SIDE = 28
CLIENTS = ("asyncio", "threads")
PATH = f"/v1/models/{MODEL}/predict"


def request_body(encoding: str) -> tuple[bytes, str]:
    """One 28x28 image as a predict body in `encoding` (json, b64, npy), and its content type."""
    from dlforge.serve.arrays import NPY_TYPE, encode_b64, encode_npy

    image = np.random.default_rng(1).integers(0, 256, (1, SIDE, SIDE), dtype=np.uint8)
    if encoding == "json":
        return json.dumps({"inputs": image.tolist()}).encode(), "application/json"
    if encoding == "b64":
        return json.dumps(encode_b64(image)).encode(), "application/json"
    return encode_npy(image), NPY_TYPE


def run(base: str, clients: int, requests: int, seconds: float, encoding: str,
        client: str = "asyncio") -> dict[str, Any]:
    """Latencies of up to `requests` predicts from `clients` concurrent connections, stopping
    after `seconds`; also the elapsed time and the client's CPU ms per request."""
    host, port = base.removeprefix("http://").split(":")
    body, content_type = request_body(encoding)
    load = _asyncio_load if client == "asyncio" else _threads_load
    latencies, elapsed, cpu = load(host, int(port), body, content_type, clients, requests, seconds)
    return {"latencies": latencies, "elapsed": elapsed,
            "client_cpu_ms": 1000 * cpu / max(1, len(latencies))}


# ------------------------------------------------------------------------- asyncio + uvloop


def _asyncio_load(host: str, port: int, body: bytes, content_type: str, clients: int,
                  requests: int, seconds: float) -> tuple[list[float], float, float]:
    import uvloop

    message = (f"POST {PATH} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_drive(host, port, message, clients, requests, seconds))


async def _drive(host: str, port: int, message: bytes, clients: int, requests: int,
                 seconds: float) -> tuple[list[float], float, float]:
    streams = [await asyncio.open_connection(host, port) for _ in range(clients)]
    # warm up every connection and the server
    await asyncio.gather(*(_exchange(r, w, message) for r, w in streams))
    latencies: list[float] = []
    left = [requests]
    stop_at = time.perf_counter() + seconds

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while left[0] > 0 and time.perf_counter() < stop_at:
            left[0] -= 1
            begin = time.perf_counter()
            await _exchange(reader, writer, message)
            latencies.append(time.perf_counter() - begin)

    begin, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(client(r, w) for r, w in streams))
    elapsed, cpu = time.perf_counter() - begin, time.process_time() - cpu
    for _, writer in streams:
        writer.close()
    return latencies, elapsed, cpu


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    message: bytes) -> None:
    writer.write(message)
    head = await reader.readuntil(b"\r\n\r\n")
    if head[9:12] != b"200":
        raise RuntimeError(f"predict answered {head[9:12].decode()}")
    at = head.lower().index(b"content-length:") + 15
    await reader.readexactly(int(head[at:head.index(b"\r\n", at)]))


# --------------------------------------------------------------------------- threads (before)


def _threads_load(host: str, port: int, body: bytes, content_type: str, clients: int,
                  requests: int, seconds: float) -> tuple[list[float], float, float]:
    latencies: list[float] = []
    counter = itertools.count()  # shared: the clients stop after `requests` in total
    start_line = threading.Barrier(clients + 1, timeout=120)
    errors: list[BaseException] = []

    def client() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=60)
        try:
            _post(conn, body, content_type)  # warm up the connection and the server
            start_line.wait()
            stop_at = time.perf_counter() + seconds
            while next(counter) < requests and time.perf_counter() < stop_at:
                begin = time.perf_counter()
                _post(conn, body, content_type)
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
    begin, cpu = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"{len(errors)} client(s) failed; the first: {errors[0]!r}")
    return latencies, time.perf_counter() - begin, time.process_time() - cpu


def _post(conn: http.client.HTTPConnection, body: bytes, content_type: str) -> None:
    conn.request("POST", PATH, body=body, headers={"Content-Type": content_type})
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        raise RuntimeError(f"predict answered {response.status}")


if __name__ == "__main__":
    job = json.loads(sys.argv[1])
    print(json.dumps(run(job["base"], job["clients"], job["requests"], job["seconds"],
                         job["encoding"], job.get("client", "asyncio"))))
