"""JSON inputs for a Predictor: the strict parser and the checks of images, table rows and texts.

Shared by the server's request body (`serve/inputs.py`) and `dlforge predict`'s .json and
.jsonl files (`cli/predict_json.py`), so both read the same JSON and refuse the same things:
NaN, Infinity and numbers beyond the float range; a row that is neither an object nor an array
of the training columns; a cell that is not a number, string, boolean or null. (A boolean
where the model learned numbers is the table preprocessing's to refuse, for both.)
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson

from dlforge.errors import DataError, clipped
from dlforge.registry.bundle_checks import json_kind
from dlforge.registry.predictor import PIXEL_RANGES, is_top_k

_SCALARS = (str, int, float, bool, type(None))
# A JSON number without a run of 200 digits and with an exponent of at most 2 digits is below
# 1e200 * 1e99, inside the float range; anything else takes the checked (slow) parse. (A regex
# for the digit run costs more than the parse itself; translate + `in` run at C speed.)
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 200
# orjson reads integers in -2**63..2**64-1 exactly and others as floats: a run of 19 digits or
# more (e.g. -9999999999999999999, below -2**63) takes `json`
_INT64_RUN = b"0" * 19
_EXPONENT = re.compile(rb"[eE][+-]?[0-9]{3}")


def parse_json(body: bytes) -> Any:
    """The JSON document in `body`, refusing NaN, Infinity and numbers beyond the float range.

    orjson parses a 28x28 image list in 16 us where `json` takes 87 us, and refuses those
    numbers itself; it reads integers of up to 18 digits exactly (some of 19 and 20 digits as
    floats), so a body with a run of 19 digits or more takes `json`, which keeps them as Python integers. A body
    orjson refuses is parsed again by `json` for its message (and its UTF-16/32 detection).
    Checking every number in Python costs more than the rest of a small model's request
    (0.5 ms for one 28x28 image), so `json` checks numbers one by one only when the body
    holds a long digit run or a 3-digit exponent, the only ways to write an out-of-range number.

    Raises:
        ValueError: not JSON, NaN/Infinity, or a number beyond the float range (the caller
            words it for its input: `first_line(exc)`).

    Example:
        >>> parse_json(b'{"age": 41, "smoker": false}')
        {'age': 41, 'smoker': False}
    """
    digits = body.translate(_DIGITS_AS_ZERO)
    if _INT64_RUN not in digits:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    if _LONG_RUN not in digits and not ((b"e" in body or b"E" in body)
                                        and _EXPONENT.search(body) is not None):
        return json.loads(body, parse_constant=_no_constants)
    return json.loads(body, parse_constant=_no_constants, parse_int=_int, parse_float=_float)


def table_rows(items: list[Any], columns: list[str] | None, *, field: str = "inputs",
               first: int = 0) -> list[dict[str, Any]]:
    """Table rows as dicts; arrays are taken in the training column order.

    Args:
        items: the rows as parsed from JSON.
        columns: the training columns (the bundle's ``input_spec["columns"]``), for arrays.
        field: how a message names the rows: ``{field}[{index}]``.
        first: the index of ``items[0]`` in those messages.

    Raises:
        DataError: a row that is neither an object nor an array of the training columns, or a
            cell that is not a number, string, boolean or null, naming the row.

    Example:
        >>> table_rows([[5.1, "red"]], ["length", "color"])
        [{'length': 5.1, 'color': 'red'}]
    """
    rows = []
    for i, item in enumerate(items, start=first):
        if isinstance(item, list):
            if not columns or len(item) != len(columns):
                order = f"{len(columns)} values in the order {', '.join(columns)}" if columns else "objects"
                raise DataError(f"{field}[{i}]: a row array needs {order}; got {len(item)} values")
            item = dict(zip(columns, item, strict=True))
        if not isinstance(item, dict):
            raise DataError(f"{field}[{i}]: table models take rows as objects (column -> value) "
                            f"or arrays; got {json_kind(item)}")
        bad = [k for k, v in item.items() if not isinstance(v, _SCALARS)]
        if bad:
            raise DataError(f"{field}[{i}].{bad[0]}: a cell must be a number, string, boolean or "
                            f"null; got {json_kind(item[bad[0]])}")
        rows.append(item)
    return rows


def expect_items(items: list[Any], kind: type, wanted: str, *, field: str = "inputs",
                 first: int = 0) -> None:
    """Refuse the first item that is not a `kind`, naming it ``{field}[{index}]``.

    Raises:
        DataError: ``{field}[i]: this model takes {wanted}; got <JSON kind>``.

    Example:
        >>> expect_items(["a text", 3], str, "strings (the texts)")
        Traceback (most recent call last):
        ...
        dlforge.errors.DataError: inputs[1]: this model takes strings (the texts); got a number
    """
    for i, item in enumerate(items, start=first):
        if not isinstance(item, kind):
            raise DataError(f"{field}[{i}]: this model takes {wanted}; got {json_kind(item)}")


def checked_top_k(value: Any, *, otherwise: str) -> int | None:
    """A JSON request body's ``top_k``: None when absent (null), else a JSON integer of at
    least 1. Not a string such as "2", a boolean (true is not 1) or a number with a fraction
    part (2.5, or 2.0: a count is written without one), as pydantic's lax mode would take them.

    Args:
        value: ``top_k`` as parsed from JSON.
        otherwise: what applies when ``top_k`` is left out, for the message.

    Returns:
        The value, or None.

    Raises:
        ValueError: one line without the field name (the caller names it, server and
            `dlforge predict` alike): ``must be a JSON integer of at least 1 (got "2"); ...``.

    Example:
        >>> checked_top_k(3, otherwise="--top-k"), checked_top_k(None, otherwise="--top-k")
        (3, None)
        >>> checked_top_k(True, otherwise="--top-k")
        Traceback (most recent call last):
        ...
        ValueError: must be a JSON integer of at least 1 (got true); give a whole number such as 3, or leave it out for --top-k
    """
    if is_top_k(value):  # JSON gives no other integral type than int
        return value
    shown = json.dumps(value) if isinstance(value, _SCALARS) else json_kind(value)
    shown = clipped(shown, 40)
    raise ValueError(f"must be a JSON integer of at least 1 (got {shown}); give a whole number "
                     f"such as 3, or leave it out for {otherwise}")


def image_items(items: list[Any], pixels: str, *, field: str = "inputs", first: int = 0,
                alternative: str = "") -> np.ndarray:
    """JSON pixel arrays as one float32 array `(N, C, H, W)` or `(N, H, W)`, every pixel within
    the range the model was trained on.

    Args:
        items: the images as parsed from JSON, each `(C, H, W)` or `(H, W)` nested lists.
        pixels: the model's pixel kind (`Predictor.pixels`, a key of `PIXEL_RANGES`).
        field: how a message names the images: ``{field}[{index}]``.
        first: the index of ``items[0]`` in those messages.
        alternative: the other way to send images, after the wanted kind in the message.

    Returns:
        The array (its shape is the Predictor's to check).

    Raises:
        DataError: an item that is not an array, the first pixel that is not a JSON number
            (a string such as "12", a boolean, null, an object), arrays of several shapes
            (naming `field`, or ``field[first]`` for one item), or the first pixel out of
            range, shown as sent.

    Example:
        >>> image_items([[[0, 255], [3, 7]]], "uint8").shape
        (1, 2, 2)
        >>> image_items([[[0, 256]]], "uint8", field="row", first=4)
        Traceback (most recent call last):
        ...
        dlforge.errors.DataError: row[4][0][1]: pixel value 256 is outside 0..255, the range of the uint8 pixels this model was trained on
        >>> image_items([[[0, "12"]]], "uint8")
        Traceback (most recent call last):
        ...
        dlforge.errors.DataError: inputs[0][0][1]: a pixel must be a JSON number; got a string
    """
    expect_items(items, list, f"pixel arrays of shape (C, H, W) or (H, W){alternative}",
                 field=field, first=first)
    x = _numbers(items, field=field, first=first)
    with np.errstate(over="ignore"):  # too large for float32 becomes inf: refused below
        x = x.astype(np.float32)
    check_pixel_range(x, pixels, lambda at: _item(items, at), field=field, first=first)
    return x


def _numbers(items: list[Any], *, field: str, first: int) -> np.ndarray:
    """`items` as an array of numbers (int64, float64, or objects for integers beyond int64).

    numpy reads "12" and true as numbers when asked for float32; read without a dtype, a
    string or null anywhere, or booleans only, give an array of another kind, and only then
    are the pixels walked to name the first one. A boolean among numbers is promoted to a
    number by numpy without a trace (`true` was read as 1): `_may_hold_booleans` finds one in
    about 5 us for a 28x28 image (orjson writes the items again; walking every pixel's type in
    Python takes 50 us), and only then are the pixels walked.

    Raises:
        DataError: the first pixel that is not a number, or arrays of several shapes.
    """
    try:
        x = np.asarray(items)
    except ValueError:  # arrays of several shapes
        x = None
    if x is not None and x.dtype.kind in "iuf" and not _may_hold_booleans(items):
        return x
    bad = _first_non_number(items)
    if bad is not None:
        at, value = bad
        where = f"{field}[{at[0] + first}]" + "".join(f"[{i}]" for i in at[1:])
        got = f"{json.dumps(value)} (booleans are not numbers)" if isinstance(value, bool) \
            else json_kind(value)
        raise DataError(f"{where}: a pixel must be a JSON number; got {got}")
    if x is None:
        where = field if len(items) > 1 else f"{field}[{first}]"
        raise DataError(f"{where}: images must be arrays of numbers, all of one shape "
                        "(C, H, W) or (H, W)")
    return x  # objects: every pixel a number, some integers beyond int64


def _may_hold_booleans(items: list[Any]) -> bool:
    """True unless `items` (nested lists of numbers, as numpy read them) surely hold no JSON
    boolean: written again as JSON, they hold no `true` or `false` (numbers never do). Integers
    beyond 64 bits, which orjson does not write, count as maybe."""
    try:
        text = orjson.dumps(items)
    except TypeError:
        return True
    return b"true" in text or b"false" in text


def _first_non_number(items: list[Any]) -> tuple[tuple[int, ...], Any] | None:
    """The index and value of the first leaf of nested lists that is not a number (a bool is
    not), depth first without recursion (JSON may nest deeper than Python recurses); None if
    every leaf is a number."""
    stack = [((), iter(enumerate(items)))]
    while stack:
        at, rest = stack[-1]
        for i, item in rest:
            if isinstance(item, list):
                stack.append(((*at, i), iter(enumerate(item))))
                break
            if type(item) not in (int, float):
                return (*at, i), item
        else:
            stack.pop()
    return None


def check_pixel_range(x: np.ndarray, pixels: str, sent: Callable[[tuple[int, ...]], Any], *,
                      field: str = "inputs", first: int = 0) -> None:
    """Refuse a pixel outside the range the model was trained on, naming it with the value
    the client sent (`sent(index)`): two reductions, no Python loop over the pixels.

    Raises:
        DataError: the first pixel out of range (NaN included), as ``{field}[i][c][h][w]``.
    """
    if pixels not in PIXEL_RANGES:
        pixels = "other"  # a bundle written by hand: only float32's own bounds are known
    low, high = PIXEL_RANGES[pixels]
    if x.dtype == np.uint8 and low <= 0 and high >= 255:
        return  # every uint8 is in range
    if x.size and not (x.min() >= low and x.max() <= high):
        flat = int(np.argmax(~((x >= low) & (x <= high))))
        at = tuple(int(i) for i in np.unravel_index(flat, x.shape))
        where = f"{field}[{at[0] + first}]" + "".join(f"[{i}]" for i in at[1:])
        raise DataError(_out_of_range(where, sent(at), pixels))


def _item(items: list[Any], at: tuple[int, ...]) -> Any:
    value = items
    for i in at:
        value = value[i]
    return value


def _out_of_range(where: str, value: Any, pixels: str) -> str:
    """The message for the pixel at `where`, showing `value` as the client sent it."""
    low, high = PIXEL_RANGES[pixels]
    shown = str(value) if len(str(value)) <= 24 else f"{float(value):.6g}"  # 150-digit ints
    if pixels == "other":
        return f"{where}: pixel value {shown} is outside the float32 range"
    return (f"{where}: pixel value {shown} is outside {low:g}..{high:g}, the range of the "
            f"{pixels} pixels this model was trained on")


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _int(text: str) -> int:
    value = int(text)  # over 4300 digits raises ValueError already
    if abs(value) > sys.float_info.max:  # no array or table could hold it as a number
        raise ValueError(f"the number {text[:12]}... is too large")
    return value


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses as inf
        raise ValueError(f"the number {text[:24]} is too large")
    return value
