"""The files of a data review: CSV per signal, JSON, an image grid, and an exclude list."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlforge.atomic import staged_dir, write_json, write_text
from dlforge.errors import ConfigError
from dlforge.report.plots import image_grid_png
from dlforge.review.findings import Findings

SIGNAL_NAMES = {"cl": "confident_learning", "aum": "aum"}


def exclusions(findings: Findings, by: str, drop_top: int) -> list[str]:
    """The ids of the `drop_top` most suspicious samples of signal `by` (`cl` or `aum`).

    Raises:
        ConfigError: `by` names no signal of the review.
    """
    signal = SIGNAL_NAMES.get(by)
    if signal not in findings.signals:
        raise ConfigError(f"--by: one of {', '.join(k for k, v in SIGNAL_NAMES.items() if v in findings.signals)} "
                          f"(got {by!r})")
    return [row["id"] for row in findings.rows(signal, drop_top)]


def write_review(dest: Path, findings: Findings, *, top: int, images: np.ndarray | None = None,
                 exclude: list[str] = (), numbered: bool = False, keep: bool = False) -> list[Path]:
    """Write the review into the directory `dest`, all at once (atomically), and list its files.

    With `numbered`, an existing `dest` (another review finished first) makes it `dest-2`, ...:
    the files listed say which. Else an existing `dest` raises FileExistsError, unless `keep`:
    for a caller that found `dest` absent before the review trained (`dlforge data review -o`),
    a `dest` there now appeared meanwhile, and `atomic.TargetTaken` names the `dest-2`, ...
    that holds the review.

    Files: `<signal>.csv` (every training sample, most suspicious first: id, given, suggested,
    score, flagged, issue), `review.json` (the `top` rows of each signal, thresholds, notes,
    precision/recall against flipped labels when known), `<signal>.png` (the `top` images,
    image data only) and `exclude.txt` (the ids in `exclude`, for `data.exclude_file`).

    Raises:
        FileExistsError: `dest` exists (not `numbered`; with `keep`, `atomic.TargetTaken`).

    Example:
        >>> write_review(Path("review"), findings, top=16)  # doctest: +SKIP
        [PosixPath('review/confident_learning.csv'), ...]
    """
    with staged_dir(dest, numbered=numbered, keep=keep) as staged:
        tmp = staged.tmp
        for signal in findings.signals:
            write_text(tmp / f"{signal}.csv", findings.to_csv(signal))
            if images is not None:
                rows = findings.rows(signal, top)
                pick = findings.order(signal)[:top]
                titles = [f"{r['id']}\n{r['given']}->{r['suggested']}" for r in rows]
                (tmp / f"{signal}.png").write_bytes(image_grid_png(images[pick], titles))
        write_json(tmp / "review.json", findings.to_dict(top))
        if exclude:
            write_text(tmp / "exclude.txt", "".join(f"{i}\n" for i in exclude))
        names = sorted(p.name for p in tmp.iterdir())
    return [staged.path / name for name in names]
