"""Read `dlforge predict` inputs from .json and .jsonl files, as the server reads a request.

A .json file holds an array of inputs, or a request body as sent to the server
(``{"inputs": [...]}``, or for image models the base64 form ``{"inputs": {"b64", "dtype",
"shape"}}`` of `serve/arrays.py`); it is read whole. A .jsonl file holds one input per line and
is read a batch at a time, in bounded memory. An input is what the server takes in ``inputs``:
a row object (column -> value) or an array of the training columns' values for table models, a
string for text models, a ``(C, H, W)`` or ``(H, W)`` pixel array for image models. Parsing
and checks are the server's (`registry/json_inputs.py`), so a file is refused where a request
would be (NaN, a nested cell, a boolean where the model learned numbers, a pixel out of the
model's range), in one line naming the file, the line (.jsonl) and the row. A request body's
``top_k`` applies to its inputs, over --top-k, as the server's body ``top_k`` wins over the
query's; any other field is refused, as the server refuses it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count, groupby, islice
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dlforge.errors import DataError, first_line
from dlforge.registry.bundle_checks import json_kind
from dlforge.registry.json_inputs import (
    check_pixel_range,
    checked_top_k,
    expect_items,
    image_items,
    parse_json,
    table_rows,
)

JSON_SUFFIXES = (".json", ".jsonl")
BODY_FIELDS = ("inputs", "top_k")  # the fields of the server's JSON request (serve/schemas.py)


@dataclass(frozen=True)
class JsonBatch:
    """A batch of JSON inputs with where each came from and its request body's ``top_k``.

    Attributes:
        inputs: a DataFrame of rows (indexed by row number), a list of texts or of images.
        origins: ``(file, " line N" or "")`` per input, for messages (`locate`).
        top_k: the ``top_k`` of the .json request body the inputs came from, else None.
        first: the row number of the first input (its id is ``row[first]``).
    """

    inputs: Any
    origins: list[tuple[Path, str]]
    top_k: int | None = None
    first: int = 0

    def refusal(self, index: int, message: str, *, skip_bad: bool = False) -> str:
        """`message` about input `index` naming its file, line and row: ``input: 'FILE' line
        N: row[k]: message``, or ``FILE line N: row[k]: message`` for the error column of
        --skip-bad (as the unreadable lines' errors there); the Predictor's own ``input: `` is
        dropped. A table row's message names its row already (``(row k; ...)``).

        Example:
            >>> JsonBatch(["a text"], [(Path("a.json"), "")], first=4).refusal(0, "input: too long")
            "input: 'a.json': row[4]: too long"
        """
        message = message.removeprefix("input: ")
        if not isinstance(self.inputs, pd.DataFrame):
            message = f"row[{self.first + index}]: {message}"
        return locate(*self.origins[index], message, skip_bad=skip_bad)


def locate(path: Path, where: str, message: str, *, skip_bad: bool = False) -> str:
    """`message` naming the file and line it is about: ``input: 'FILE' line N: message``
    (``FILE line N: message`` for the error column of --skip-bad).

    Args:
        path: the input file.
        where: ``" line N"`` for a .jsonl line, ``""`` for a whole .json file.
        message: what is wrong.
        skip_bad: the error column's form, without ``input:`` and quotes.

    Returns:
        The line.

    Example:
        >>> locate(Path("rows.jsonl"), " line 4", "not valid JSON", skip_bad=True)
        'rows.jsonl line 4: not valid JSON'
    """
    return f"{path}{where}: {message}" if skip_bad else f"input: {str(path)!r}{where}: {message}"


@dataclass(frozen=True)
class _Bad:
    """An input that could not be read (with --skip-bad): its message."""

    error: str


class JsonRows:
    """The inputs of .json / .jsonl files, `batch_size` at a time; ids ``row[i]`` are numbered
    across the files, as `CsvRows` numbers CSV rows.

    Example:
        >>> rows = JsonRows([Path("rows.jsonl")], predictor)  # doctest: +SKIP
        >>> ids, batch = next(rows.batches(256))               # doctest: +SKIP
        >>> batch.inputs.index[0], ids[0]                      # doctest: +SKIP
        (0, 'row[0]')
    """

    def __init__(self, paths: list[Path], predictor, *, skip_bad: bool = False) -> None:
        self.paths = paths
        self.skip_bad = skip_bad
        self.modality = predictor.modality
        self.pixels = predictor.pixels if self.modality == "image" else None
        self.columns = predictor.bundle.input_spec.get("columns")

    def batches(self, batch_size: int) -> Iterator[tuple[list[str], Any]]:
        """`(ids, JsonBatch)` batches: a DataFrame of rows indexed by row number (so an error's
        "row N" is id row[N]), a list of texts or a list of image arrays; with --skip-bad a run
        of unreadable inputs is a `BadRows` batch in its place."""
        from dlforge.cli.predict_stream import BadRows

        offset, numbers = 0, count()
        for path in self.paths:  # batches end at the end of a file, as CSV batches do
            top_k, found = _inputs(path, self.modality)
            items = self._checked(path, found, numbers)
            while chunk := list(islice(items, batch_size)):
                for bad, run in groupby(chunk, key=lambda item: isinstance(item[1], _Bad)):
                    part = list(run)
                    ids = [f"row[{offset + i}]" for i in range(len(part))]
                    if bad:
                        yield ids, BadRows([item.error for _, item in part])
                    else:
                        inputs = [item for _, item in part]
                        if self.modality == "table":
                            inputs = pd.DataFrame.from_records(inputs).set_axis(
                                pd.RangeIndex(offset, offset + len(part)))
                        yield ids, JsonBatch(inputs, [(path, where) for where, _ in part], top_k,
                                        first=offset)
                    offset += len(part)

    def _checked(self, path: Path, found: Iterator[tuple[str, Any]],
                 numbers: Iterator[int]) -> Iterator[tuple[str, Any]]:
        """`(where, input)` of `path`'s inputs, each checked as the server checks it (`_Bad`
        with --skip-bad); `numbers` counts the inputs across the files."""
        for (where, item), index in zip(found, numbers):  # noqa: B905 - numbers is endless
            try:
                if isinstance(item, _Bad):
                    raise DataError(item.error)
                yield where, self._check(item, index)
            except DataError as exc:
                if not self.skip_bad:
                    raise DataError(locate(path, where, str(exc))) from None
                yield where, _Bad(locate(path, where, str(exc), skip_bad=True))

    def _check(self, item: Any, index: int) -> Any:
        if self.modality == "text":
            expect_items([item], str, "strings (the texts)", field="row", first=index)
            return item
        if self.modality != "image":
            return table_rows([item], self.columns, field="row", first=index)[0]
        if isinstance(item, np.ndarray):  # an image of a base64 body, decoded by `_encoded`
            check_pixel_range(item[None], self.pixels, lambda at: item[at[1:]], field="row",
                              first=index)
            return item
        return image_items([item], self.pixels, field="row", first=index)[0]


def _inputs(path: Path, modality: str) -> tuple[int | None, Iterator[tuple[str, Any]]]:
    """A file's request ``top_k`` (None for .jsonl and arrays) and its `(where, input)` pairs:
    where is " line N" for .jsonl, "" for .json; an input that is not JSON is a `_Bad` (the
    caller decides whether it stops the stream).

    Raises:
        DataError: a .json file that is not JSON, not an array of inputs or a request body,
            or a body with a field or an image array the server refuses.
    """
    if path.suffix.lower() == ".jsonl":
        return None, _lines(path)
    doc = _parse(path.read_bytes())
    if isinstance(doc, _Bad):
        raise DataError(locate(path, "", doc.error))
    items = doc.get("inputs") if isinstance(doc, dict) else doc
    if isinstance(items, dict):  # images as base64 bytes (serve/arrays.py), as the server takes them
        items = _encoded(path, items, modality)
    if not isinstance(items, list):
        got = 'an object without an "inputs" array' if isinstance(doc, dict) else json_kind(doc)
        raise DataError(locate(path, "", f'expected an array of inputs or an object '
                                         f'{{"inputs": [...]}}; got {got}'))
    return _body_top_k(path, doc) if isinstance(doc, dict) else None, (("", i) for i in items)


def _body_top_k(path: Path, body: dict[str, Any]) -> int | None:
    """The ``top_k`` of a request body, refusing the fields and values the server refuses."""
    extra = [key for key in body if key not in BODY_FIELDS]
    if extra:
        raise DataError(locate(path, "", f"{extra[0]}: Extra inputs are not permitted (the "
                                         f'server refuses it too; a request body holds "inputs" '
                                         f'and "top_k"); remove it'))
    try:
        return checked_top_k(body.get("top_k"), otherwise="--top-k")
    except ValueError as exc:
        raise DataError(locate(path, "", f"top_k: {exc}")) from None


def _encoded(path: Path, inputs: dict[str, Any], modality: str) -> list[np.ndarray]:
    """The images of a base64 request body's ``inputs`` ``{"b64", "dtype", "shape"}``, read
    by the server's `serve.arrays.b64_array`, one array per image.

    Raises:
        DataError: a model that does not take images, or an object the server refuses
            (fields, shape, base64, byte count), naming the file.
    """
    from pydantic import ValidationError

    from dlforge.serve.arrays import b64_array
    from dlforge.serve.errors import validation_message
    from dlforge.serve.schemas import EncodedArray

    if modality != "image":
        raise DataError(locate(path, "", f"inputs: this model takes {modality} inputs, not an "
                                         "image array; give an array of inputs"))
    try:
        return list(b64_array(EncodedArray.model_validate(inputs), max_items=sys.maxsize))
    except ValidationError as exc:
        errors = [{**e, "loc": ("inputs", *e["loc"])} for e in exc.errors()]
        message = "; ".join(validation_message(errors).splitlines())
    except DataError as exc:
        message = str(exc)
    raise DataError(locate(path, "", message))


def _lines(path: Path) -> Iterator[tuple[str, Any]]:
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                yield f" line {number}", _parse(line)


def _parse(data: bytes) -> Any:
    try:
        return parse_json(data)
    except (ValueError, RecursionError) as exc:
        return _Bad(f"not valid JSON ({first_line(exc)})")
