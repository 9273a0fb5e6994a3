"""What a bundle's files must satisfy before anything is built from them.

A bundle is data, possibly from elsewhere: its JSON is read within a size and a nesting depth
(`read_json`), and the architecture in model.json is compared with the tensors in the
safetensors header before a parameter is allocated (`check_weights_fit`), so that a model.json
asking for ``hidden: [200000, 200000]`` (160 GB) is refused rather than built.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from torch import nn

from dlforge.errors import DataError, NotFoundError, first_line

# Far above what dlforge writes (a text model's vocabulary is a few MB; nesting under 10).
MAX_JSON_BYTES = 64 * 1024 * 1024
MAX_JSON_DEPTH = 64


def read_json(file: Path) -> Any:
    """The JSON document in `file`, a bundle file.

    Raises:
        NotFoundError: the file is missing.
        DataError: not JSON, over MAX_JSON_BYTES or nested deeper than MAX_JSON_DEPTH.
    """
    if not file.is_file():
        raise NotFoundError(f"bundle: {file} is missing; the bundle is incomplete, re-register the model")
    with file.open("rb") as f:
        data = f.read(MAX_JSON_BYTES + 1)
    if len(data) > MAX_JSON_BYTES:
        raise DataError(f"bundle: {file} is over {MAX_JSON_BYTES} bytes, the most a bundle JSON "
                        "file may hold; re-register the model")
    too_deep = DataError(f"bundle: {file} nests deeper than {MAX_JSON_DEPTH} levels, the most a "
                         "bundle JSON file may; re-register the model")
    try:
        doc = json.loads(data.decode("utf-8"))
    except RecursionError:
        raise too_deep from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"bundle: {file} is not valid JSON ({exc}); re-register the model") from None
    if _deeper_than(doc, MAX_JSON_DEPTH):
        raise too_deep
    return doc


def read_object(file: Path) -> dict[str, Any]:
    """The JSON object in `file`, a bundle file that must hold one (model.json, meta.json ...).

    Raises:
        NotFoundError: the file is missing.
        DataError: what `read_json` refuses, or a document that is not an object (``[]``,
            a number, a string, ``null``), naming the file.

    Example:
        >>> read_object(Path("bundle/meta.json"))["format"]  # doctest: +SKIP
        1
    """
    doc = read_json(file)
    if not isinstance(doc, dict):
        raise DataError(f"bundle: {file} holds {json_kind(doc)}, not a JSON object; the file is "
                        "damaged, re-register the model")
    return doc


def json_kind(doc: Any) -> str:
    """What a parsed JSON value is, for messages: "an array", "a string", "null" ...

    Example:
        >>> json_kind([]), json_kind(None), json_kind(True), json_kind(1.5)
        ('an array', 'null', 'a boolean', 'a number')
    """
    kinds = {list: "an array", dict: "an object", str: "a string", bool: "a boolean",
             type(None): "null"}
    return kinds.get(type(doc), "a number")


def check_weights_fit(build: Callable[[], nn.Module], file: Path) -> None:
    """Compare the tensors `build()` would make with those in the safetensors header of `file`.

    The model is built on the meta device (shapes, no memory); the file's header is read,
    not its tensors.

    Raises:
        NotFoundError: `file` is missing.
        DataError: `file` is not safetensors, or the first tensor whose name or shape differs.
        ConfigError: `build` cannot build the architecture.
    """
    found = _header_shapes(file)
    with torch.device("meta"):
        expected = {name: tuple(t.shape) for name, t in build().state_dict().items()}
    for name, shape in expected.items():
        if found.get(name) != shape:
            have = "missing from the file" if name not in found else f"{found[name]} in the file"
            _mismatch(file, f"tensor {name!r}: {have}, {shape} in the architecture")
    for name in sorted(found.keys() - expected.keys()):
        _mismatch(file, f"tensor {name!r}: {found[name]} in the file, not in the architecture")


def _header_shapes(file: Path) -> dict[str, tuple[int, ...]]:
    if not file.is_file():
        raise NotFoundError(f"bundle: {file} is missing; the bundle is incomplete, re-register the model")
    try:
        with safe_open(str(file), framework="pt") as f:
            return {name: tuple(f.get_slice(name).get_shape()) for name in sorted(f.keys())}
    except (SafetensorError, OSError) as exc:
        raise DataError(f"bundle: {file} is not a readable safetensors file ({first_line(exc)}); "
                        "re-register the model") from None


def _mismatch(file: Path, what: str) -> None:
    raise DataError(f"bundle: {file} does not match the architecture in model.json ({what}); "
                    "re-register the model")


def _deeper_than(doc: Any, limit: int) -> bool:
    """Whether `doc` nests more than `limit` arrays/objects, without recursion."""
    stack = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return False


