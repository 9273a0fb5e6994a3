"""Read `dlforge predict` inputs from .json and .jsonl files, as the server reads a request.

A .json file holds an array of inputs, or a request body as sent to the server
(``{"inputs": [...]}``); it is read whole. A .jsonl file holds one input per line and is read
a batch at a time, in bounded memory. An input is what the server takes in ``inputs``: a row
object (column -> value) or an array of the training columns' values for table models, a
string for text models. Parsing and checks are the server's (`registry/json_inputs.py`), so a
file is refused where a request would be (NaN, a nested cell, a boolean where the model
learned numbers).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count, groupby, islice
from pathlib import Path
from typing import Any

import pandas as pd

from dlforge.errors import DataError
from dlforge.registry.bundle_checks import json_kind
from dlforge.registry.json_inputs import expect_items, first_line, parse_json, table_rows

JSON_SUFFIXES = (".json", ".jsonl")


@dataclass(frozen=True)
class _Bad:
    """An input that could not be read (with --skip-bad): its message."""

    error: str


class JsonRows:
    """The inputs of .json / .jsonl files, `batch_size` at a time; ids ``row[i]`` are numbered
    across the files, as `CsvRows` numbers CSV rows.

    Example:
        >>> rows = JsonRows([Path("rows.jsonl")], predictor)  # doctest: +SKIP
        >>> ids, frame = next(rows.batches(256))               # doctest: +SKIP
    """

    def __init__(self, paths: list[Path], predictor, *, skip_bad: bool = False) -> None:
        self.paths = paths
        self.skip_bad = skip_bad
        self.text = predictor.modality == "text"
        self.columns = predictor.bundle.input_spec.get("columns")

    def batches(self, batch_size: int) -> Iterator[tuple[list[str], Any]]:
        """`(ids, inputs)` batches: a DataFrame of rows (indexed by row number, so an error's
        "row N" is id row[N]) or a list of texts; with --skip-bad a run of unreadable inputs
        is a `BadRows` batch in its place."""
        from dlforge.cli.predict_stream import BadRows

        offset, numbers = 0, count()
        for path in self.paths:  # batches end at the end of a file, as CSV batches do
            items = self._checked(path, numbers)
            while chunk := list(islice(items, batch_size)):
                for bad, run in groupby(chunk, key=lambda item: isinstance(item, _Bad)):
                    part = list(run)
                    ids = [f"row[{offset + i}]" for i in range(len(part))]
                    if bad:
                        yield ids, BadRows([item.error for item in part])
                    elif self.text:
                        yield ids, part
                    else:
                        yield ids, pd.DataFrame.from_records(part).set_axis(
                            pd.RangeIndex(offset, offset + len(part)))
                    offset += len(part)

    def _checked(self, path: Path, numbers: Iterator[int]) -> Iterator[Any]:
        """The inputs of `path`, each checked as the server checks it (`_Bad` with --skip-bad);
        `numbers` counts the inputs across the files."""
        for (where, item), index in zip(_parsed(path), numbers):  # noqa: B905 - numbers is endless
            try:
                if isinstance(item, _Bad):
                    raise DataError(item.error)
                yield self._check(item, index)
            except DataError as exc:
                if not self.skip_bad:
                    raise DataError(f"input: {str(path)!r}{where}: {exc}") from None
                yield _Bad(f"{path}{where}: {exc}")

    def _check(self, item: Any, index: int) -> Any:
        if self.text:
            expect_items([item], str, "strings (the texts)", field="row", first=index)
            return item
        return table_rows([item], self.columns, field="row", first=index)[0]


def _parsed(path: Path) -> Iterator[tuple[str, Any]]:
    """`(where, input)` pairs of a file: where is " line N" for .jsonl, "" for .json; an input
    that is not JSON is a `_Bad` (the caller decides whether it stops the stream)."""
    if path.suffix.lower() == ".jsonl":
        with path.open("rb") as fh:
            for number, line in enumerate(fh, start=1):
                if line.strip():
                    yield f" line {number}", _parse(line)
        return
    doc = _parse(path.read_bytes())
    if isinstance(doc, _Bad):
        raise DataError(f"input: {str(path)!r}: {doc.error}")
    items = doc.get("inputs") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        got = 'an object without an "inputs" array' if isinstance(doc, dict) else json_kind(doc)
        raise DataError(f"input: {str(path)!r}: expected an array of inputs or an object "
                        f'{{"inputs": [...]}}; got {got}')
    for item in items:
        yield "", item


def _parse(data: bytes) -> Any:
    try:
        return parse_json(data)
    except (ValueError, RecursionError) as exc:
        return _Bad(f"not valid JSON ({first_line(exc)})")
