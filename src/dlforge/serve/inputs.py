"""The request body of predict, read and checked into what the Predictor takes.

JSON ``{"inputs": [...]}`` (image pixel arrays, texts or table rows), multipart image files
under ``files``, or images as raw bytes (`serve/arrays.py`: base64 in JSON, or a .npy body).
Only the checks that the Predictor cannot make are here: the kind of each
item for the model's modality and pixel values within the range the model was trained on
(`registry/json_inputs.py`, which `dlforge predict`'s .json/.jsonl files share), the
item limit, and the size of image files read from their headers before anything is decoded
(each within the model's `SizeLimit`, all together within the request's pixel budget).
Shapes and columns are the Predictor's to check (its DataError messages reach the client
unchanged).
Strings are never taken as file paths: a client must not make the server read its own files.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from dlforge.data.images import SizeLimit, open_image
from dlforge.errors import DataError, first_line
from dlforge.registry.json_inputs import (
    check_pixel_range,
    expect_items,
    image_items,
    parse_json,
    table_rows,
)
from dlforge.serve.arrays import NPY_TYPE, ArrayBody, b64_array, npy_array
from dlforge.serve.errors import TooLarge, validation_message
from dlforge.serve.schemas import EncodedPredictRequest, PredictRequest

if TYPE_CHECKING:
    from fastapi import Request

    from dlforge.registry import Predictor

@dataclass(frozen=True)
class Batch:
    """A request's inputs: `items` for the Predictor, `kind` for the batcher, and top-k."""

    items: Any
    kind: str
    size: int
    top_k: int | None


Body = PredictRequest | ArrayBody | list[tuple[str, bytes]]


async def read_body(request: Request, max_items: int) -> Body:
    """The parsed JSON request, the images sent as raw bytes, or the uploaded files as (name
    for messages, bytes).

    Raises:
        DataError: empty or malformed body, no files, too many items.
    """
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        return await _read_files(request, max_items)
    return parse_body(content_type, await request.body(), max_items)


def parse_body(content_type: str, body: bytes, max_items: int) -> PredictRequest | ArrayBody:
    """A JSON or .npy predict body (`content_type` says which), already read.

    Raises:
        DataError: empty or malformed body, too many items.

    Example:
        >>> parse_body("application/json", b'{"inputs": ["a text"]}', 8).inputs
        ['a text']
    """
    if not body.strip():
        raise DataError('body: empty; send JSON {"inputs": [...]} or image files as multipart "files"')
    if content_type.startswith(NPY_TYPE):
        return ArrayBody(npy_array(body, max_items), None)
    try:
        raw = parse_json(body)
        if isinstance(raw, dict) and isinstance(raw.get("inputs"), dict):
            encoded = EncodedPredictRequest.model_validate(raw)
            return ArrayBody(b64_array(encoded.inputs, max_items), encoded.top_k)
        parsed = PredictRequest.model_validate(raw)
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, DataError):
            raise
        if isinstance(exc, ValidationError):
            raise DataError(validation_message(exc.errors())) from None
        raise DataError(f"body: not valid JSON ({first_line(exc)})") from None
    _check_count(len(parsed.inputs), max_items, "inputs")
    return parsed


def to_batch(body: Body, predictor: Predictor, top_k: int | None, max_pixels: int) -> Batch:
    """The inputs as the Predictor takes them, checked for the model's modality.

    Args:
        max_pixels: most pixels (width x height) of all image files of the request together.

    Raises:
        DataError: an item of the wrong kind for this model or a pixel value out of range,
            naming its index; an image file over the model's size limit, naming the file.
        TooLarge: the image files hold more than `max_pixels` pixels together.
    """
    modality = predictor.modality
    if isinstance(body, list):
        if modality != "image":
            raise DataError(f"files: this model takes {modality} inputs, not image files; "
                            'send JSON {"inputs": [...]}')
        _check_files(body, predictor.image_limit, max_pixels)
        return Batch([data for _, data in body], "list", len(body), top_k)
    top_k = body.top_k or top_k
    if isinstance(body, ArrayBody):
        if modality != "image":
            raise DataError(f"inputs: this model takes {modality} inputs, not an image array; "
                            'send JSON {"inputs": [...]}')
        check_pixel_range(body.x, predictor.pixels, lambda at: body.x[at])
        return Batch(body.x, "array", len(body.x), top_k)
    items = body.inputs
    if modality == "image":
        x = image_items(items, predictor.pixels, alternative=" (or image files as multipart)")
        return Batch(x, "array", len(items), top_k)
    if modality == "text":
        expect_items(items, str, "strings (the texts)")
        return Batch(list(items), "list", len(items), top_k)
    return Batch(table_rows(items, predictor.bundle.input_spec.get("columns")), "list", len(items), top_k)


NO_BOUNDARY = ("body: multipart/form-data without a boundary; let the HTTP client build the "
               'multipart body (curl -F "files=@image.png") instead of setting the Content-Type '
               "header by hand")


async def _read_files(request: Request, max_items: int) -> list[tuple[str, bytes]]:
    # missing, or empty (`boundary=`, which Starlette calls "Invalid multipart data.")
    if not _boundary(request.headers.get("content-type", "")):
        raise DataError(NO_BOUNDARY)
    try:
        form = await request.form(max_files=max_items + 1, max_fields=max_items + 1)
    except HTTPException as exc:  # Starlette's multipart parser: a 400 with its own wording
        raise DataError(_multipart_problem(str(exc.detail), max_items)) from None
    files = form.getlist("files")
    if not files:
        raise DataError('files: no image files in the multipart body; send them under the field "files"')
    _check_count(len(files), max_items, "files")
    if not all(isinstance(f, UploadFile) for f in files):
        raise DataError('files: every "files" field must be a file upload, not a text field')
    return [(f"files[{i}] ({f.filename})", await f.read()) for i, f in enumerate(files)]


def _boundary(content_type: str) -> str:
    """The multipart boundary of a Content-Type header; "" when missing or empty."""
    header = Message()
    header["content-type"] = content_type
    return str(header.get_param("boundary") or "")


def _multipart_problem(reason: str, max_items: int) -> str:
    """The line for a multipart body Starlette could not parse (`reason` its message)."""
    if reason.startswith("Too many files"):
        return (f"files: more than {max_items} items; at most {max_items} per request "
                "(dlforge serve --max-items); split the request")
    if reason.startswith("Too many fields"):  # text fields, not files
        return (f"body: more than {max_items} text fields in the multipart body; send only image "
                "files under 'files'")
    return (f"body: not a valid multipart body ({reason.rstrip('.')}); send image files as "
            'multipart "files"')


def _check_files(files: list[tuple[str, bytes]], limit: SizeLimit, max_pixels: int) -> None:
    """Every file an image within `limit`, all within `max_pixels`: from headers, undecoded."""
    total = sum(_check_image(data, name, limit) for name, data in files)
    if total > max_pixels:
        raise TooLarge(f"files: {len(files)} images of {total} pixels in all; at most "
                       f"{max_pixels} pixels per request (dlforge serve --max-pixels); "
                       "send fewer or smaller images per request")


def _check_image(data: bytes, name: str, limit: SizeLimit) -> int:
    """The pixel count of an upload; names the upload that is not an image or too large (the
    Predictor only sees anonymous bytes)."""
    try:
        with open_image(data, name=name, limit=limit) as image:
            width, height = image.size
            image.verify()
    except DataError:
        raise
    except (OSError, SyntaxError, ValueError):  # what PIL raises for non-images
        # PIL's own message names a memory address, not the file: leave it out.
        raise DataError(f"{name}: not a readable image file; send PNG, JPEG or BMP files") from None
    return width * height


def _check_count(count: int, max_items: int, field: str) -> None:
    if count == 0:
        raise DataError(f"{field}: empty; send at least one input")
    if count > max_items:
        raise DataError(f"{field}: {count} items; at most {max_items} per request "
                        "(dlforge serve --max-items); split the request")
