"""Images sent as raw bytes: base64 in JSON, or a ``.npy`` body.

A JSON list of pixels costs the server a parse of every number; these encodings carry the
array's bytes with their dtype and shape, so the server checks three things without touching
a pixel in Python: the dtype (uint8 or float32), the shape (``(N, H, W)`` or ``(N, C, H, W)``,
at most the item limit), and that the byte count is exactly what the shape needs. The pixel
range is then two reductions over the array (none for uint8 on a model trained on 0..255).

    {"inputs": {"b64": "<base64 of the bytes, C order>", "dtype": "uint8", "shape": [N, H, W]}}
    Content-Type: application/x-npy, the body written by ``numpy.save``

A client builds these bodies with `encode_b64` and `encode_npy` (numpy only).

Example:
    >>> x = np.arange(8, dtype=np.uint8).reshape(2, 2, 2)
    >>> body = encode_b64(x)
    >>> body
    {'inputs': {'b64': 'AAECAwQFBgc=', 'dtype': 'uint8', 'shape': [2, 2, 2]}}
    >>> b64_array(EncodedArray(**body["inputs"]), max_items=10).tolist()
    [[[0, 1], [2, 3]], [[4, 5], [6, 7]]]
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import tokenize
from dataclasses import dataclass

import numpy as np

from dlforge.errors import DataError
from dlforge.serve.schemas import ARRAY_DTYPES, EncodedArray

NPY_TYPE = "application/x-npy"
_DTYPES = {name: np.dtype(name).newbyteorder("<") for name in ARRAY_DTYPES}


@dataclass(frozen=True)
class ArrayBody:
    """A request's images as one array `(N, H, W)` or `(N, C, H, W)`, and its top-k."""

    x: np.ndarray
    top_k: int | None


def encode_b64(images: np.ndarray, top_k: int | None = None) -> dict:
    """The JSON predict body holding `images` as base64 bytes.

    Args:
        images: `(N, H, W)` or `(N, C, H, W)` pixels; uint8 stays uint8 (a quarter of the
            bytes), anything else is sent as float32.
        top_k: classes per input (multiclass models), or None for the server's default.

    Returns:
        ``{"inputs": {"b64", "dtype", "shape"}}`` (and ``top_k``), for ``json=`` of an HTTP
        client.

    Example:
        >>> encode_b64(np.zeros((1, 2, 2), dtype=np.float32), top_k=1)["inputs"]["dtype"]
        'float32'
    """
    x = _wire(images)
    body: dict = {"inputs": {"b64": base64.b64encode(x.tobytes()).decode("ascii"),
                             "dtype": x.dtype.name, "shape": list(x.shape)}}
    if top_k is not None:
        body["top_k"] = top_k
    return body


def encode_npy(images: np.ndarray) -> bytes:
    """`images` as a .npy predict body (send it with ``Content-Type: application/x-npy``).

    Example:
        >>> encode_npy(np.zeros((1, 2, 2), dtype=np.uint8))[:6]
        b'\\x93NUMPY'
    """
    stream = io.BytesIO()
    np.save(stream, _wire(images), allow_pickle=False)
    return stream.getvalue()


def _wire(images: np.ndarray) -> np.ndarray:
    x = np.asarray(images)
    dtype = np.uint8 if x.dtype == np.uint8 else np.dtype("<f4")
    return np.ascontiguousarray(x, dtype=dtype)


def b64_array(encoded: EncodedArray, max_items: int) -> np.ndarray:
    """The array a JSON ``{"b64", "dtype", "shape"}`` object holds.

    Raises:
        DataError: a bad shape, too many items, invalid base64 or a byte count that does not
            match the shape, naming the field.
    """
    _check_shape(encoded.shape, max_items, "inputs.shape")
    try:
        data = base64.b64decode(encoded.b64, validate=True)
    except (binascii.Error, ValueError):
        raise DataError("inputs.b64: not valid base64; encode the array's bytes with the "
                        "standard alphabet and padding (base64.b64encode(x.tobytes()))") from None
    return _from_bytes(data, 0, _DTYPES[encoded.dtype], encoded.shape, "inputs.b64")


def npy_array(body: bytes, max_items: int) -> np.ndarray:
    """The array of a ``.npy`` body, read from its header; never unpickles.

    Raises:
        DataError: not a .npy file, an unsupported dtype or layout, a bad shape, too many
            items, or a body shorter or longer than its header says.
    """
    stream = io.BytesIO(body)
    try:
        major, minor = np.lib.format.read_magic(stream)
        read_header = (np.lib.format.read_array_header_1_0 if major == 1
                       else np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = read_header(stream)
    except (ValueError, OSError, SyntaxError, tokenize.TokenError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise DataError(f"body: not a .npy array ({first[:200]}); write it with numpy.save") from None
    allowed = {dt: name for name, dt in _DTYPES.items()}
    if dtype not in allowed or fortran:
        got = f"dtype {dtype.str}" + (", Fortran order" if fortran else "")
        raise DataError(f"body: a .npy array of {got}; send uint8 or float32 (little-endian) in "
                        "C order: numpy.save(f, np.ascontiguousarray(x, dtype=np.float32))")
    _check_shape(list(shape), max_items, "body: shape")
    return _from_bytes(body, stream.tell(), dtype, list(shape), "body")


def _check_shape(shape: list[int], max_items: int, where: str) -> None:
    if len(shape) not in (3, 4):
        raise DataError(f"{where}: {shape} has {len(shape)} dimensions; images take (N, H, W) "
                        "or (N, C, H, W)")
    if min(shape) < 0:
        raise DataError(f"{where}: {shape} has a negative dimension")
    if shape[0] == 0:
        raise DataError(f"{where}: {shape} holds no image; send at least one input")
    if shape[0] > max_items:
        raise DataError(f"{where}: {shape[0]} items; at most {max_items} per request "
                        "(dlforge serve --max-items); split the request")


def _from_bytes(data: bytes, offset: int, dtype: np.dtype, shape: list[int],
                where: str) -> np.ndarray:
    expected = math.prod(shape) * dtype.itemsize
    if len(data) - offset != expected:
        raise DataError(f"{where}: {len(data) - offset} bytes; shape {shape} of "
                        f"{dtype.name} needs {expected}")
    # A copy: the preprocessing may scale in place, and a view of the body is read-only.
    return np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=offset
                         ).reshape(shape).astype(dtype.newbyteorder("="))
