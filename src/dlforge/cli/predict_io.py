"""Turn command-line inputs into a batch for a Predictor, and predictions into CSV/JSON/tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from dlforge.cli import output
from dlforge.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}


def collect_inputs(predictor, inputs: list[str], texts: list[str]) -> tuple[list[str], Any]:
    """Return (input ids, raw batch) for the predictor's modality.

    Images: files and folders of images. Texts: --text values or a CSV's text column.
    Tables: CSV rows.
    """
    modality = predictor.modality
    if texts:
        if modality != "text":
            raise DataError(f"--text: this model takes {modality} input, not text")
        return [f"text[{i}]" for i in range(len(texts))], list(texts)
    if not inputs:
        raise DataError("predict: give at least one INPUT (image file, folder or CSV) or --text")
    paths = [Path(p) for p in inputs]
    for p in paths:
        if not p.exists():
            raise DataError(f"input: {str(p)!r} does not exist")
    if modality == "image":
        files = _image_files(paths)
        return [str(f) for f in files], files
    frame = pd.concat([_read_csv(p) for p in paths], ignore_index=True)
    ids = [f"row[{i}]" for i in range(len(frame))]
    if modality == "text":
        column = predictor.text_column
        if column not in frame.columns:
            raise DataError(f"input: the CSV has no text column {column!r}; columns are: "
                            f"{', '.join(map(str, frame.columns))}")
        return ids, frame[column].fillna("").astype(str).tolist()  # the Predictor's rule too
    return ids, frame


def _image_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
        elif p.suffix.lower() in IMAGE_SUFFIXES:
            files.append(p)
        else:
            raise DataError(f"input: {str(p)!r} is not an image file ({', '.join(sorted(IMAGE_SUFFIXES))}) "
                            f"or a folder of them")
    if not files:
        raise DataError(f"input: no image files found in {', '.join(map(str, paths))}")
    return files


def _read_csv(path: Path) -> pd.DataFrame:
    if path.suffix.lower() != ".csv":
        raise DataError(f"input: {str(path)!r} is not a CSV file; this model takes table or text rows")
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"input: cannot read {str(path)!r} as CSV: {exc}") from None


def flatten(row: dict[str, Any]) -> dict[str, Any]:
    """One prediction as flat columns: nested score dicts become score_<class> columns."""
    flat: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, dict):
            flat.update({f"{key}_{k}": v for k, v in value.items()})
        elif isinstance(value, list):
            flat[key] = ";".join(map(str, value))
        else:
            flat[key] = value
    return flat


def write_predictions(ids: list[str], rows: list[dict], path: Path | None, fmt: str) -> None:
    """Write predictions to `path` (.csv/.json) or print them as a table, JSON or CSV."""
    records = [{"input": i, **r} for i, r in zip(ids, rows, strict=False)]
    if path is not None:
        from dlforge.atomic import write_json, write_text

        if path.suffix.lower() == ".json":
            write_json(path, records)
        else:
            write_text(path, pd.DataFrame([flatten(r) for r in records]).to_csv(index=False))
        output.err.print(f"wrote {len(records)} predictions to {path}")
        return
    if fmt == "json":
        print(json.dumps(records, indent=2, default=float))
    elif fmt == "csv":
        print(pd.DataFrame([flatten(r) for r in records]).to_csv(index=False), end="")
    else:
        frame = pd.DataFrame([flatten(r) for r in records])
        output.table(None, list(frame.columns), frame.itertuples(index=False))
