"""Download a file into the cache: stream to a temp file, verify its sha256, rename atomically.

A reader never sees a partial or unverified download: the bytes land in a temporary file
beside `dest` and are renamed onto it only after the checksum matched.
"""

from __future__ import annotations

import hashlib
import sys
import urllib.error
import urllib.request
from pathlib import Path

from dlforge.atomic import atomic_path
from dlforge.errors import DataError

CHUNK = 1 << 20
TIMEOUT_S = 60


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(url: str, dest: str | Path, sha256: str | None = None, *, progress: bool = True) -> Path:
    """Download `url` to `dest` unless a verified copy is already there.

    Args:
        url: http(s) URL.
        dest: final path (usually under the cache dir); its directory is created.
        sha256: expected hex digest of the downloaded bytes; None skips verification.
        progress: show a progress bar on a terminal, one line otherwise.

    Returns:
        `dest`.

    Raises:
        DataError: the download failed (names the url and the fix), or the checksum did not
            match (names the url, expected and actual sha256; nothing is left at `dest`).

    Example:
        >>> fetch("https://example.org/a.gz", cache / "a.gz", sha256="ab12...")  # doctest: +SKIP
    """
    dest = Path(dest)
    if dest.is_file() and (sha256 is None or sha256_file(dest) == sha256):
        return dest
    with atomic_path(dest) as tmp:
        actual = _stream(url, tmp, progress)
        if sha256 is not None and actual != sha256:
            raise DataError(
                f"{url}: checksum mismatch: expected sha256 {sha256}, got {actual}; "
                f"the download was discarded (retry, or set data.path to a verified local copy)"
            )
    return dest


def _stream(url: str, tmp: Path, progress: bool) -> str:
    """Write the body of `url` to `tmp`; return its sha256."""
    digest = hashlib.sha256()
    request = urllib.request.Request(url, headers={"User-Agent": "dlforge"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as resp, open(tmp, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with _Progress(url, total, progress) as bar:
                for chunk in iter(lambda: resp.read(CHUNK), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.advance(len(chunk))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DataError(
            f"{url}: download failed ({reason}); check the network, or set data.path to a "
            f"local copy"
        ) from None
    return digest.hexdigest()


class _Progress:
    """A rich progress bar on a terminal, a single stderr line otherwise."""

    def __init__(self, url: str, total: int | None, enabled: bool) -> None:
        self.url, self.total, self.enabled = url, total, enabled
        self._bar = None
        self._task = None

    def __enter__(self) -> _Progress:
        if not self.enabled:
            return self
        if sys.stderr.isatty():
            from rich.markup import escape
            from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

            self._bar = Progress(*Progress.get_default_columns(), DownloadColumn(),
                                 TransferSpeedColumn(), transient=True)
            self._bar.start()
            name = escape(self.url.rsplit('/', 1)[-1])  # the description column reads markup
            self._task = self._bar.add_task(f"download {name}", total=self.total)
        else:
            print(f"downloading {self.url}", file=sys.stderr)
        return self

    def advance(self, n: int) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, n)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
