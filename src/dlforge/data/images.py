"""Decode one image file (or its bytes) into the (C, H, W) uint8 array every image source uses.

Shared by the image_folder source and the predictor, so that training and serving decode
images identically (same colour conversion, same resize filter).

Decoding allocates width x height x channels bytes however small the file is (a 400 KB PNG
can hold 20000x20000 pixels), so the size is read from the header first and an image over
its `SizeLimit` is refused before a pixel is decoded.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from dlforge.errors import DataError

Color = Literal["grayscale", "rgb"]
_MODES = {"grayscale": "L", "rgb": "RGB"}
# Pillow's default Image.MAX_IMAGE_PIXELS (a 9459x9459 image, 256 MB as RGB): Pillow only
# warns above it and refuses at twice as many; dlforge refuses above it.
MAX_IMAGE_PIXELS = 89_478_485
# A model's images may have sides up to SIDE_MULTIPLE times its input side (resized down on
# decoding), never over MAX_SIDE: a larger file costs memory no input size can justify.
SIDE_MULTIPLE = 64
MAX_SIDE = 8192
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


@dataclass(frozen=True)
class SizeLimit:
    """The largest image `decode_image` decodes.

    Attributes:
        max_side: most pixels on the longer side, or None for no limit but `max_pixels`.
        why: where `max_side` comes from, for the message (e.g. "64x the model's 8x8 input").
        max_pixels: most pixels in all (width x height).
    """

    max_side: int | None = None
    why: str = ""
    max_pixels: int = MAX_IMAGE_PIXELS

    @classmethod
    def for_input(cls, height: int, width: int) -> SizeLimit:
        """The limit for a model taking (height, width) images: SIDE_MULTIPLE x its longer side,
        at most MAX_SIDE.

        Example:
            >>> SizeLimit.for_input(28, 28).max_side, SizeLimit.for_input(224, 224).max_side
            (1792, 8192)
        """
        side = SIDE_MULTIPLE * max(height, width)
        if side >= MAX_SIDE:
            return cls(MAX_SIDE, f"the cap for any model; this one takes {width}x{height}")
        return cls(side, f"{SIDE_MULTIPLE}x the model's {width}x{height} input")

    def check(self, name: str, width: int, height: int) -> None:
        """Raise DataError naming `name`, its size and the limit when the image is over it."""
        if width * height > self.max_pixels:
            raise DataError(f"{name}: image is {width}x{height} pixels ({width * height}); the "
                            f"limit is {self.max_pixels} pixels; resize it first")
        if self.max_side is not None and max(width, height) > self.max_side:
            why = f" ({self.why})" if self.why else ""
            raise DataError(f"{name}: image is {width}x{height} pixels; the limit is "
                            f"{self.max_side} pixels a side{why}; resize it first")


def decode_image(
    path_or_bytes: str | Path | bytes,
    *,
    color: Color,
    size: tuple[int, int] | None,
    limit: SizeLimit = SizeLimit(),
) -> np.ndarray:
    """Read an image, convert its colour, resize it, and return it channels-first.

    Args:
        path_or_bytes: a file path, or the encoded bytes (PNG, JPEG, BMP, ...).
        color: "grayscale" (1 channel) or "rgb" (3 channels).
        size: (height, width) to resize to with bilinear filtering, or None to keep the size.
        limit: the largest image decoded, checked on the header before decoding.

    Returns:
        uint8 array (C, H, W).

    Raises:
        DataError: the file is missing, truncated or not an image, or over `limit`.

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
        if not data:
            raise DataError(f"{name}: cannot read image (the file is empty: 0 bytes)")
        with open_image(data, name=name, limit=limit) as img:
            img.load()
            # Phones store rotation in EXIF; apply it so pixels match what a viewer shows.
            img = ImageOps.exif_transpose(img)
            img = _to_8_bits(img, name).convert(_MODES[color])
            if size is not None and img.size != (size[1], size[0]):
                img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except DataError:
        raise
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise DataError(f"{name}: cannot read image ({_reason(exc)})") from None
    if arr.ndim == 2:
        return arr[None, :, :].copy()
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


# A 16-bit image whose brightest pixel is below this is 8-bit data saved as 16 bits: scaled by
# the 16-bit range it would turn black, so it is refused. Anything brighter is scaled as 16-bit
# data (a dark scene, a dim fluorescence channel, a depth map): 12-bit data stored unscaled
# keeps 16 grey levels.
LOW_RANGE = 256


def _to_8_bits(img: Image.Image, name: str) -> Image.Image:
    """A 16-bit grayscale image (PNG, TIFF, PGM: Pillow's modes I;16* and I) as 8 bits, its
    high byte: values are scaled by the 16-bit range, 0-65535 (a PGM by the maximum its header
    declares, as Pillow reads it). Pillow's own conversion to L or RGB clips at 255, so every
    pixel above 255 of 65535, nearly the whole image, would turn white.

    Raises:
        DataError: the image's brightest pixel is 1..255 (8-bit data that would turn black),
            or it holds 32-bit floats (mode F, which would turn black), naming the file and
            the fix.
    """
    if img.mode == "F":  # floats, often 0..1: Pillow's conversion to L truncates them to 0 and 1
        raise DataError(f"{name}: a 32-bit float image; dlforge reads 8- and 16-bit integer "
                        f"pixels only. Save it as 8 or 16-bit integers (scale 0..1 values to "
                        f"0-255 or 0-65535)")
    if not (img.mode.startswith("I;16") or img.mode == "I"):
        return img
    pixels = np.asarray(img)
    pixels = pixels if pixels.flags.writeable else pixels.copy()
    if img.mode == "I":  # int32: clip what 16 bits cannot hold, in place
        np.clip(pixels, 0, 65535, out=pixels)
    brightest = int(pixels.max(initial=0))
    if 0 < brightest < LOW_RANGE:
        raise DataError(
            f"{name}: a 16-bit image whose values reach only {brightest} of 65535; scaled by "
            f"the 16-bit range it would turn black. Save it as 8 bits, or scale its values "
            f"to 0-65535")
    np.right_shift(pixels, 8, out=pixels)
    return Image.fromarray(pixels.astype(np.uint8))


@contextmanager
def open_image(data: bytes, *, name: str, limit: SizeLimit = SizeLimit()) -> Iterator[Image.Image]:
    """The image with only its header read, once its size is within `limit`.

    Raises:
        DataError: over `limit` (nothing decoded); Pillow's own errors for unreadable data.
    """
    try:
        img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:  # over twice MAX_IMAGE_PIXELS: no size given
        found = _BOMB_PIXELS.search(str(exc))
        pixels = f"{found.group(1)} pixels" if found else "too many pixels"
        raise DataError(f"{name}: image is {pixels}; the limit is {limit.max_pixels} pixels; "
                        "resize it first") from None
    with img:
        limit.check(name, *img.size)
        yield img


def _reason(exc: BaseException) -> str:
    if isinstance(exc, UnidentifiedImageError):  # its text names a BytesIO object, not a format
        return "not an image: its first bytes match no format Pillow reads, such as PNG or JPEG"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text.replace("<_io.BytesIO object at ", "<bytes at ")
