"""Shared fixtures: every test gets its own workspace and cache, never the user's."""

from __future__ import annotations

import functools
import os
import struct
import zlib

import pytest

# set by the launcher (cli/launch.py start_ranks, run_processes) for its worker processes
LAUNCH_ENV = ("DLFORGE_DIST_TIMEOUT", "DLFORGE_NUM_THREADS", "OMP_NUM_THREADS",
              "TORCH_CPP_LOG_LEVEL")


@pytest.fixture
def launch_env() -> tuple[str, ...]:
    """The environment variables the launcher sets, which `_isolated_workspace` restores."""
    return LAUNCH_ENV


@pytest.fixture(autouse=True)
def _isolated_workspace(tmp_path_factory, monkeypatch):
    root = tmp_path_factory.mktemp("dlforge-env")
    monkeypatch.setenv("DLFORGE_WORKSPACE", str(root / "workspace"))
    monkeypatch.setenv("DLFORGE_CACHE", str(root / "cache"))
    monkeypatch.setenv("DLFORGE_NO_SYSTEM_DATA", "1")  # never read /usr/share/datasets in unit tests
    for name in LAUNCH_ENV:  # a test that runs the launcher must not set them for later tests
        value = os.environ.get(name)
        monkeypatch.setenv(name, value or "")  # recorded, so monkeypatch restores it (or its absence)
        if value is None:
            monkeypatch.delenv(name)
    yield


@pytest.fixture
def served(monkeypatch) -> list[dict]:
    """uvicorn servers that `dlforge serve` / `dlforge ui` ran, not run: each one's uvicorn
    config, the addresses of the sockets handed to it and the error another listener of the
    first address got while it ran (EADDRINUSE: the sockets were bound once, before)."""
    import errno
    import socket

    import uvicorn

    runs: list[dict] = []

    def run(self, sockets=None):
        addresses = [s.getsockname() for s in sockets]
        refused = None
        if sockets:
            with socket.socket(sockets[0].family) as other:
                other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    other.bind(addresses[0])
                    other.listen()
                except OSError as exc:
                    refused = errno.errorcode[exc.errno]
        runs.append({"config": self.config, "addresses": addresses, "other_listener": refused})
        self.started = True

    monkeypatch.setattr(uvicorn.Server, "run", run)
    return runs


@functools.cache
def _blank_png(width: int, height: int) -> bytes:
    """A 1-bit grayscale PNG of zeros, compressed row by row: its pixels never exist in memory."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = bytes(1 + (width + 7) // 8) * 64  # 64 rows, each a filter byte and packed bits
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(rows) for _ in range(height // 64))
    idat += packer.compress(rows[: (height % 64) * (len(rows) // 64)]) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture(scope="session")
def blank_png():
    """`blank_png(width, height)` -> PNG bytes; 20000x20000 is 48 KB and costs no pixel memory."""
    return _blank_png
