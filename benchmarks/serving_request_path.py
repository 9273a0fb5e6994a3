"""CPU per predict request of the serving app itself, by input encoding, without sockets.

Registers the Basic CNN as benchmarks/serving.py does, then drives `create_app` through ASGI
calls in this process (no HTTP parser, no sockets, no load generator competing for the CPU):
rounds of 32 concurrent single-image predicts in each encoding (JSON pixel list, base64
uint8, .npy uint8). Prints the event-loop thread's CPU per request (routing, parsing,
validation, batching hand-offs, the response: the request path outside the forward pass) and
the whole process's (adding the inference thread: preprocessing, forward pass at ~32 per
batch, prediction dicts). Thread CPU time counts only what a thread ran, so the figures
change less with the machine's load than requests/s do.

    .venv/bin/python benchmarks/serving_request_path.py            # ~1 min
    .venv/bin/python benchmarks/serving_request_path.py --rounds 10
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_line  # noqa: E402
from serving import cpu_line, register  # noqa: E402
from serving_load import MODEL, request_body  # noqa: E402

CLIENTS = 32
ENCODINGS = ("json", "b64", "npy")


async def _predict(app, body: bytes, content_type: str) -> None:
    """One predict through the ASGI app; raises unless it answers 200."""
    sent = False

    async def receive() -> dict:
        nonlocal sent
        if sent:  # the app asks again only to learn of a disconnect: there is none
            await asyncio.Event().wait()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    statuses: list[int] = []

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": f"/v1/models/{MODEL}/predict",
             "raw_path": b"", "query_string": b"", "root_path": "", "state": {},
             "headers": [(b"content-type", content_type.encode()),
                         (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    await app(scope, receive, send)
    if statuses != [200]:
        raise RuntimeError(f"predict answered {statuses}")


async def measure(workspace: Path, rounds: int) -> list[tuple[str, float, float]]:
    """(encoding, event-loop CPU ms, process CPU ms) per request, each after 3 warm-up rounds."""
    from dlforge.config.schema import ServeConfig
    from dlforge.registry import Store
    from dlforge.serve import create_app

    rows = []
    with Store.open(workspace) as store:
        app = create_app(store, ServeConfig(max_batch=32, max_wait_ms=5),
                         models=[f"{MODEL}@production"])
        async with app.router.lifespan_context(app):
            for encoding in ENCODINGS:
                body, content_type = request_body(encoding)
                for i in range(3 + rounds):
                    if i == 3:
                        loop_cpu, process_cpu = time.thread_time(), time.process_time()
                    await asyncio.gather(*[_predict(app, body, content_type)
                                           for _ in range(CLIENTS)])
                n = rounds * CLIENTS
                rows.append((encoding, 1000 * (time.thread_time() - loop_cpu) / n,
                             1000 * (time.process_time() - process_cpu) / n))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40, help="Rounds of 32 requests timed.")
    args = parser.parse_args()
    print(machine_line(), flush=True)
    print(cpu_line(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        workspace = register(Path(tmp))
        rows = asyncio.run(measure(workspace, args.rounds))
    print("| encoding | event-loop CPU ms/request | process CPU ms/request | requests |")
    print("|---|---|---|---|")
    for encoding, loop_ms, process_ms in rows:
        print(f"| {encoding} | {loop_ms:.3f} | {process_ms:.3f} | {args.rounds * CLIENTS} |")
    print(machine_line())


if __name__ == "__main__":
    main()
