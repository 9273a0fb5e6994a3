"""Decode one image file (or its bytes) into the (C, H, W) uint8 array every image source uses.

Shared by the image_folder source and the predictor, so that training and serving decode
images identically (same colour conversion, same resize filter).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from dlforge.errors import DataError

Color = Literal["grayscale", "rgb"]
_MODES = {"grayscale": "L", "rgb": "RGB"}


def decode_image(
    path_or_bytes: str | Path | bytes,
    *,
    color: Color,
    size: tuple[int, int] | None,
) -> np.ndarray:
    """Read an image, convert its colour, resize it, and return it channels-first.

    Args:
        path_or_bytes: a file path, or the encoded bytes (PNG, JPEG, BMP, ...).
        color: "grayscale" (1 channel) or "rgb" (3 channels).
        size: (height, width) to resize to with bilinear filtering, or None to keep the size.

    Returns:
        uint8 array (C, H, W).

    Raises:
        DataError: the file is missing, truncated or not an image.

    Example:
        >>> decode_image("cat.png", color="rgb", size=(32, 32)).shape  # doctest: +SKIP
        (3, 32, 32)
    """
    name = "<bytes>" if isinstance(path_or_bytes, bytes) else str(path_or_bytes)
    try:
        if isinstance(path_or_bytes, bytes):
            data = path_or_bytes
        else:
            data = Path(path_or_bytes).read_bytes()
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            # Phones store rotation in EXIF; apply it so pixels match what a viewer shows.
            img = ImageOps.exif_transpose(img)
            img = img.convert(_MODES[color])
            if size is not None and img.size != (size[1], size[0]):
                img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"{name}: cannot read image ({_reason(exc)})") from None
    if arr.ndim == 2:
        return arr[None, :, :].copy()
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text.replace("<_io.BytesIO object at ", "<bytes at ")
