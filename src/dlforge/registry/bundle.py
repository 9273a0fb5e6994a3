"""Model bundles: one directory holding everything needed to serve a model, and nothing pickled.

    weights.safetensors   the state_dict (safetensors: tensors only, no code runs on load)
    model.json            architecture config, input shape, outputs, vocabulary, input spec
    preprocess.json       the fitted preprocessor's JSON state (train-split statistics)
    task.json             task kind, class names and decision threshold(s)
    metrics.json          the metrics the model was registered with
    meta.json             dlforge version, creation time, run id, data fingerprint, extras
    reference.json        statistics of the training split for drift checks (optional: bundles
                          registered before dlforge kept them have none, see `read_reference`)
    replay.npz            a sample of the preprocessed training split for updates (optional,
                          `lifecycle.replay`)

A bundle is written whole or not at all (`dlforge.atomic.atomic_dir`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, TypeAdapter, ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from dlforge.atomic import atomic_dir
from dlforge.config.schema import ModelConfig
from dlforge.data.dataset import TaskSpec
from dlforge.data.preprocess import Preprocessor, preprocessor_from_dict
from dlforge.errors import ConfigError, DataError, NotFoundError, first_line
from dlforge.registry.bundle_checks import check_weights_fit, read_json, read_object
from dlforge.registry.records import json_safe, now

FORMAT_VERSION = 1
WEIGHTS = "weights.safetensors"
JSON_FILES = ("model.json", "preprocess.json", "task.json", "metrics.json", "meta.json")
REFERENCE = "reference.json"
# Keys of `extra` with a fixed home; any other key is kept in meta.json as given.
_INPUT_KEY = "input"


@dataclass
class Bundle:
    """A loaded bundle: the model (in eval mode) and everything around it.

    Attributes:
        input_spec: what raw inputs look like: ``modality`` and, for images, ``color`` and
            ``size``; for tables ``columns``; for texts ``text_column``.
        threshold: binary: one number; multilabel: one per label (or one for all); else None.
    """

    model: nn.Module
    preprocessor: Preprocessor
    task: TaskSpec
    threshold: float | list[float] | None
    metrics: dict[str, Any]
    model_config: Any
    meta: dict[str, Any]
    input_shape: tuple[int, ...] = ()
    input_spec: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def save_bundle(
    dest: str | Path, *, model: nn.Module, model_config: Any, input_shape: tuple[int, ...],
    num_outputs: int, vocab_size: int | None, preprocessor: Preprocessor, task: TaskSpec,
    threshold: float | list[float] | None, metrics: dict[str, Any],
    extra: dict[str, Any] | None = None, reference: dict[str, Any] | None = None,
    arrays: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """Write a model bundle directory at `dest`, all files or none.

    Args:
        dest: the bundle directory to create; it must not exist.
        model: the trained model; its state_dict is saved (on CPU).
        model_config: the model config section (pydantic model or its dict).
        input_shape: one preprocessed sample's shape, as given to `build_model`.
        preprocessor: the fitted preprocessor.
        threshold: the decision threshold(s) chosen on validation, or None.
        extra: ``input`` (the raw input spec, see `Bundle.input_spec`), ``run_id``,
            ``data_fingerprint`` and any other JSON values, kept in meta.json.
        reference: the training split's drift reference (`lifecycle.reference`), kept in
            reference.json; None writes no such file.
        arrays: ``{file name: {array name: numpy array}}`` saved as .npz files (numeric arrays only),
            e.g. the replay buffer.

    Returns:
        `dest`.

    Raises:
        DataError: `dest` already exists.

    Example:
        >>> save_bundle(tmp / "b", model=net, model_config=cfg.model, input_shape=(1, 8, 8),
        ...             num_outputs=10, vocab_size=None, preprocessor=pre, task=task,
        ...             threshold=None, metrics={"accuracy": 0.97})  # doctest: +SKIP
    """
    dest = Path(dest)
    if dest.exists():
        raise DataError(f"bundle: {dest} already exists; save the bundle to a new directory")
    from dlforge.models.target_scale import TargetScale

    extra = dict(extra or {})
    config = model_config.model_dump(mode="json") if isinstance(model_config, BaseModel) else dict(model_config)
    documents = {
        "model.json": {
            "config": config, "input_shape": [int(s) for s in input_shape],
            "num_outputs": int(num_outputs), "vocab_size": vocab_size,
            "scale_outputs": isinstance(model, TargetScale),
            "input_dtype": "int64" if preprocessor.kind == "text" else "float32",
            "input": input_spec(preprocessor.kind, input_shape, extra.pop(_INPUT_KEY, None)),
        },
        "preprocess.json": preprocessor.to_dict(),
        "task.json": {**task.to_dict(), "threshold": threshold},
        "metrics.json": metrics,
        "meta.json": {"format": FORMAT_VERSION, "dlforge_version": _version(),
                      "created_at": now().isoformat(), "run_id": extra.pop("run_id", None),
                      "data_fingerprint": extra.pop("data_fingerprint", None), **extra},
    }
    if reference is not None:
        documents[REFERENCE] = reference
    with atomic_dir(dest) as tmp:
        save_file(_cpu_state_dict(model), str(tmp / WEIGHTS), metadata={"format": "pt"})
        for name, doc in documents.items():
            (tmp / name).write_text(json.dumps(json_safe(doc), indent=2, sort_keys=True) + "\n",
                                    encoding="utf-8")
        for name, named in (arrays or {}).items():
            with (tmp / name).open("wb") as fh:
                np.savez(fh, **named)
    return dest


@dataclass(frozen=True)
class _Parts:
    """A bundle's documents, read and checked; no weight allocated yet."""

    docs: dict[str, dict[str, Any]]
    model_config: Any
    task: TaskSpec
    input_shape: tuple[int, ...]
    num_outputs: int
    vocab_size: int | None
    preprocessor: Preprocessor


def load_bundle(path: str | Path) -> Bundle:
    """Load a bundle directory: rebuild the model from model.json and load its weights.

    Nothing is unpickled: weights come from safetensors, everything else from JSON.

    Raises:
        NotFoundError: the directory or one of its files is missing.
        DataError: a file is corrupt, too large, too deeply nested or not a JSON object
            (`bundle_checks`), the class names do not match the model's outputs, or the
            weights do not fit the architecture (checked before the model is built).
    """
    path = Path(path)
    parts = _read_parts(path)
    model = _builder(path, parts)()
    _load_weights(model, path / WEIGHTS)
    spec = parts.docs["model.json"]
    return Bundle(
        model=model.eval(), preprocessor=parts.preprocessor, task=parts.task,
        threshold=parts.docs["task.json"].get("threshold"), metrics=parts.docs["metrics.json"],
        model_config=parts.model_config, meta=parts.docs["meta.json"],
        input_shape=parts.input_shape,
        input_spec=spec.get("input") or input_spec(parts.preprocessor.kind, parts.input_shape, None),
        path=path,
    )


def check_bundle(path: str | Path) -> None:
    """What `load_bundle` checks, with the model built on the meta device and only the
    weights file's header read: a quick check of a bundle before a server starts with it.

    Raises:
        NotFoundError / DataError: as `load_bundle`.

    Example:
        >>> check_bundle("ws/artifacts/models/digits/v1")  # doctest: +SKIP
    """
    path = Path(path)
    _builder(path, _read_parts(path))


def _read_parts(path: Path) -> _Parts:
    if not path.is_dir():
        raise NotFoundError(f"bundle: {path} does not exist or is not a directory")
    docs = {name: read_object(path / name) for name in JSON_FILES}
    spec = docs["model.json"]
    try:
        model_config = TypeAdapter(ModelConfig).validate_python(spec["config"])
        task = TaskSpec.from_dict(docs["task.json"])
        input_shape = tuple(int(s) for s in spec["input_shape"])
        num_outputs, vocab_size = int(spec["num_outputs"]), spec.get("vocab_size")
    except (KeyError, TypeError, ValueError, ValidationError) as exc:
        raise DataError(f"bundle: {path / 'model.json'} or task.json is incomplete or corrupt "
                        f"({first_line(exc)}); re-register the model") from None
    _check_labels(path, task, num_outputs)
    try:
        preprocessor = preprocessor_from_dict(docs["preprocess.json"])
    except DataError as exc:  # name the file and the fix a user has
        detail = first_line(exc.__cause__) if exc.__cause__ else str(exc)
        raise DataError(f"bundle: {path / 'preprocess.json'} is incomplete or corrupt ({detail}); "
                        f"re-register the model") from None
    return _Parts(docs, model_config, task, input_shape, num_outputs, vocab_size, preprocessor)


def model_type(path: str | Path) -> str | None:
    """The ``model.type`` a bundle directory's model.json names, read without loading the
    weights (None when the file does not say).

    Raises:
        NotFoundError / DataError: model.json is missing or corrupt (`read_object`).
    """
    config = read_object(Path(path) / "model.json").get("config")
    return config.get("type") if isinstance(config, dict) else None


def _check_labels(path: Path, task: TaskSpec, num_outputs: int) -> None:
    """Refuse class names that do not match the model's outputs (a hand-edited task.json):
    predictions would carry the wrong labels, or none, without an error."""
    names = {"binary": 2, "multiclass": num_outputs, "multilabel": num_outputs}.get(task.kind)
    if names is not None and len(task.class_names) != names:
        raise DataError(f"bundle: {path / 'task.json'} names {len(task.class_names)} classes but "
                        f"a {task.kind} model with {num_outputs} output(s) in model.json needs "
                        f"{names}; re-register the model")


def read_reference(path: str | Path, ref: str) -> dict[str, Any]:
    """The drift reference of the bundle at `path` (model `ref`, for the message).

    Raises:
        NotFoundError: the bundle has no reference.json (registered before bundles kept one).
        DataError: the file is corrupt, too large, or lacks what drift reads (a hand edit).
    """
    file = Path(path) / REFERENCE
    if not file.is_file():
        raise NotFoundError(f"model {ref}: its bundle has no {REFERENCE} (registered before "
                            "bundles kept training statistics); train and register it again "
                            "to check drift")
    doc = read_json(file)
    problem = _reference_problem(doc)
    if problem:
        raise DataError(f"bundle: {file} is incomplete or corrupt ({problem}); train and register "
                        f"the model again to check drift")
    return doc


# What drift reads of a reference (`lifecycle.reference.build_reference` writes it).
_REFERENCE_KEYS = {"features": dict, "sample_shape": list}
_FEATURE_KEYS = {"numeric": ("n", "mean", "std", "quantiles", "edges", "hist"),
                 "categorical": ("n", "counts")}


def _reference_problem(doc: Any) -> str | None:
    """The first thing drift would trip over in a reference document, or None."""
    if not isinstance(doc, dict):
        return f"expected an object, got {type(doc).__name__}"
    for key, kind in _REFERENCE_KEYS.items():
        if not isinstance(doc.get(key), kind):
            return f"{key!r} is missing or not a {kind.__name__}"
    for name, feature in doc["features"].items():
        kind = feature.get("kind") if isinstance(feature, dict) else None
        if kind not in _FEATURE_KEYS:
            return f"feature {name!r} has no kind numeric or categorical"
        missing = [k for k in _FEATURE_KEYS[kind] if k not in feature]
        if missing:
            return f"feature {name!r} lacks {', '.join(missing)}"
    return None


def input_spec(kind: str, input_shape: tuple[int, ...], given: dict[str, Any] | None) -> dict[str, Any]:
    """The raw-input description kept in model.json; `given` (from the pipeline) wins.

    For images the colour and size follow from the (C, H, W) input shape, so a predictor can
    decode image files exactly as training did.
    """
    spec: dict[str, Any] = {"modality": kind}
    if kind == "image" and len(input_shape) == 3:
        spec |= {"color": "rgb" if input_shape[0] == 3 else "grayscale",
                 "size": [int(input_shape[1]), int(input_shape[2])]}
    return {**spec, **(given or {})}


def _builder(path: Path, parts: _Parts) -> Callable[[], nn.Module]:
    """What builds the model of model.json, once the shapes in the weights file's header
    agree with it (checked on the meta device: model.json may ask for GBs)."""
    from dlforge.models import build_model  # the zoo imports every model: only when loading

    def build() -> nn.Module:  # on the meta device in the check, for real in load_bundle
        try:
            return build_model(parts.model_config, input_shape=parts.input_shape,
                               num_outputs=parts.num_outputs, vocab_size=parts.vocab_size,
                               scale_outputs=bool(parts.docs["model.json"].get("scale_outputs")))
        except ConfigError as exc:
            raise DataError(f"bundle: {path / 'model.json'} describes a model that cannot be "
                            f"built ({first_line(exc)}); re-register the model") from None

    check_weights_fit(build, path / WEIGHTS)
    return build


def _cpu_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Contiguous CPU tensors; safetensors refuses two names sharing memory, so copies break ties."""
    tensors: dict[str, torch.Tensor] = {}
    seen: set[tuple[int, int]] = set()
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        key = (t.untyped_storage().data_ptr(), t.storage_offset())
        tensors[name] = t.clone() if key in seen else t
        seen.add(key)
    return tensors


def _load_weights(model: nn.Module, file: Path) -> None:
    try:
        state = load_file(str(file))
    except (SafetensorError, OSError) as exc:
        raise DataError(f"bundle: {file} is not a readable safetensors file ({first_line(exc)}); "
                        "re-register the model") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = " ".join(line.strip() for line in str(exc).splitlines()[1:])[:300]
        raise DataError(f"bundle: {file} does not match the architecture in model.json "
                        f"({detail}); re-register the model") from None


def _version() -> str:
    from dlforge import __version__

    return __version__
