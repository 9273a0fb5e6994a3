"""`dlforge inspect MODEL INPUT`: what a registered model does with one input, as pictures
(feature maps of each conv block, saliency, first-layer weights) and statistics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from dlforge.atomic import check_absent, staged_dir, write_json
from dlforge.errors import DataError
from dlforge.evaluate.inside import inspect_model
from dlforge.registry import load
from dlforge.report.inside import inspection_figures


def inspect_registered(ref: str, input_path: Path, *, dest: Path | None = None, numbered: bool = False,
                       workspace: str | Path | None = None, url: str | None = None) -> dict[str, Any]:
    """Inspect model `ref` on the input in `input_path` and write the pictures to `dest`.

    INPUT by modality: an image file (image models), a CSV file whose first row is used (table
    models), a text file read as one text (text models).

    Args:
        ref: a registered model: NAME, NAME@VERSION or NAME@ALIAS.
        input_path: the input file.
        dest: a directory to create for the PNGs and `inspection.json`; None writes nothing.
        numbered: when `dest` exists by the time the files are written, write `dest-2`, ...
            instead (the files returned say which); else a `dest` that appears meanwhile
            raises `atomic.TargetTaken` naming the `dest-2`, ... that holds the files.

    Returns:
        The prediction, per-layer statistics, block shapes, notes and the files written.

    Raises:
        NotFoundError: unknown model. DataError: missing or unreadable input, wrong size.
        ConfigError: `dest` exists (not `numbered`); the model is a GAN.

    Example:
        >>> inspect_registered("digits@staging", Path("three.png"), dest=Path("out"))  # doctest: +SKIP
        {'prediction': {'label': '3', ...}, 'statistics': [...], 'files': [...]}
    """
    if dest is not None and not numbered:
        check_absent(dest, "--output")
    predictor = load(ref, workspace=workspace, url=url)
    predictor.check_predicts()
    raw = _read_input(input_path, predictor.modality)
    x = predictor.prepare(raw)[:1]
    found = inspect_model(predictor.bundle.model, x[0])
    prediction = predictor.predict(raw, top_k=3)[0]
    result = {"model": ref, "input": str(input_path), "prediction": prediction} | found.to_dict()
    if dest is not None:
        label = f"{input_path.name} (predicted {prediction.get('label', prediction.get('labels', '?'))})"
        columns = predictor.bundle.input_spec.get("columns") or []
        figures = inspection_figures(found, x[0].numpy() if x.ndim == 4 else None, label, columns)
        result["files"] = _write(dest, figures, result, numbered)
    return result


def _read_input(path: Path, modality: str) -> Any:
    if path.is_dir():
        raise DataError(f"INPUT: {str(path)!r} is a folder; inspect takes one file (an image, "
                        f"a CSV row or a text, as the model takes)")
    if not path.is_file():
        raise DataError(f"INPUT: no file {str(path)!r}")
    if modality == "image":
        return [str(path)]
    if modality == "text":
        return [path.read_text(encoding="utf-8", errors="replace")]
    try:
        frame = pd.read_csv(path, nrows=1)
    except (ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"INPUT: {path} is not a CSV table ({exc}); table models take a CSV row") from exc
    if frame.empty:
        raise DataError(f"INPUT: {path} has a header but no row")
    return frame


def _write(dest: Path, figures: list[tuple[str, bytes]], result: dict[str, Any],
           numbered: bool) -> list[str]:
    names = [f"{i:02d}-{_slug(title)}.png" for i, (title, _) in enumerate(figures)]
    with staged_dir(dest, numbered=numbered, keep=True) as staged:
        for name, (_, png) in zip(names, figures, strict=True):
            (staged.tmp / name).write_bytes(png)
        write_json(staged.tmp / "inspection.json",
                   result | {"figures": dict(zip(names, [t for t, _ in figures], strict=True))})
    return [str(staged.path / n) for n in [*names, "inspection.json"]]


def _slug(title: str) -> str:
    kept = "".join(c if c.isalnum() else "-" for c in title.split(": ", 1)[-1].lower())
    return "-".join(part for part in kept.split("-") if part)[:60]
