"""`export_model`: a registered version as an ONNX or TorchScript file plus everything around it.

    <workspace>/exports/<name>-v<version>/     (TorchScript: <name>-v<version>-torchscript/)
        model.onnx | model.pt             the model, batch dimension free
        model.int8.onnx | model.int8.pt   with --quantize int8
        preprocessing.json                the fitted preprocessor (apply it before the model)
        task.json                         task kind, class names, decision threshold(s)
        input.json                        input name, dtype, shape; output meaning and link
        manifest.json                     format, opset, source, sha256, parity, metrics

Every file is checked before the directory appears: the exported model is loaded back and
compared with PyTorch on the run's test split; the directory is written whole or not at all.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlforge.atomic import atomic_dir, write_json
from dlforge.errors import ConfigError, DataError
from dlforge.export.compare import max_abs_diff, metric_drop, split_metrics
from dlforge.export.onnx_export import OnnxModule, export_onnx, onnx_session, require_onnx
from dlforge.export.quantize import check_torch_quantization, quantize_onnx, quantize_torch
from dlforge.export.source import ExportSource, load_test_split, open_source
from dlforge.export.torchscript import export_torchscript, load_torchscript
from dlforge.runtime import physical_cores

FORMATS = ("onnx", "torchscript")
QUANTIZATIONS = ("int8",)
DEFAULT_ATOL = 1e-4
FILES = {"onnx": ("model.onnx", "model.int8.onnx"), "torchscript": ("model.pt", "model.int8.pt")}
_LINKS = {"multiclass": "softmax", "binary": "sigmoid", "multilabel": "sigmoid",
          "regression": "identity"}

Progress = Callable[[str], None]


@dataclass
class ExportResult:
    """Where the export went, its manifest, and the warnings to show (one line each)."""

    path: Path
    manifest: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def export_model(ref: str, *, fmt: str = "onnx", quantize: str | None = None,
                 output: str | Path | None = None, force: bool = False,
                 workspace: str | Path | None = None, url: str | None = None,
                 atol: float = DEFAULT_ATOL, progress: Progress | None = None) -> ExportResult:
    """Export a registered model with its preprocessing, checked against PyTorch.

    Args:
        ref: ``NAME``, ``NAME@VERSION`` or ``NAME@ALIAS``.
        fmt: ``onnx`` (ONNX Runtime) or ``torchscript`` (``torch.jit.load``).
        quantize: ``int8`` adds a dynamically quantized copy and its test metrics.
        output: the directory to create; default ``<workspace>/exports/<name>-v<version>``
            (``...-torchscript`` for TorchScript, so both formats of a version can be kept).
        force: replace an earlier export (a directory with the manifest.json of an export);
            any other existing path is refused, never deleted.
        atol: largest allowed absolute difference between exported and PyTorch outputs.
        progress: called with a short note before each slow step.

    Returns:
        The export's directory, manifest and warnings (e.g. the accuracy check was skipped).

    Raises:
        ConfigError: unknown `fmt` or `quantize`, or int8 not supported for TorchScript here.
        NotFoundError: unknown model, or onnx/onnxruntime not installed.
        DataError: the directory exists without `force` (or with it, but is not an export), the
            model cannot be exported or quantized, or the exported outputs differ from PyTorch
            by more than `atol` or are NaN.

    Example:
        >>> export_model("digits@production", quantize="int8").path    # doctest: +SKIP
        PosixPath('dlforge-workspace/exports/digits-v3')
    """
    check_choices(fmt, quantize)
    if fmt == "onnx":
        require_onnx()
    elif quantize:
        check_torch_quantization()
    say = progress or (lambda _note: None)
    source = open_source(ref, workspace, url, load_test=False)
    dest = (Path(output) if output is not None else default_dir(source, fmt)).resolve()
    check_destination(dest, force)
    say(f"loading the test split of {source.version.ref}")
    source = load_test_split(source, url)
    with _publish(dest) as tmp:
        manifest = _write_export(tmp, source, ref, fmt, quantize, atol, say)
    return ExportResult(dest, manifest, _warnings(source))


def check_choices(fmt: str, quantize: str | None) -> None:
    """Raise ConfigError for a format or quantization that does not exist."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format: must be one of {', '.join(FORMATS)} (got {fmt!r})")
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ConfigError(f"--quantize: must be one of {', '.join(QUANTIZATIONS)} (got {quantize!r})")


def check_destination(dest: Path, force: bool) -> None:
    """Raise DataError unless `dest` is free, or is an earlier export and `force` is set.

    `dest` must be resolved (``Path(".")`` has no name to stage beside).
    """
    if not dest.exists():
        return
    if not is_export(dest):  # with or without --force: suggesting --force would not help
        raise DataError(f"export: {dest} exists and is not a dlforge export (no manifest.json "
                        "written by dlforge export), so --force will not replace it; choose a "
                        "new --output")
    if not force:
        raise DataError(f"export: {dest} already exists; pass --force to replace it, or "
                        "--output DIR to export elsewhere")


def is_export(folder: Path) -> bool:
    """True when `folder` is a directory written by `export_model` (its manifest.json says so)."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (isinstance(manifest, dict) and manifest.get("format") in FILES
            and manifest.get("model_file") == FILES[manifest["format"]][0]
            and isinstance(manifest.get("source"), dict))


def default_dir(source: ExportSource, fmt: str = "onnx") -> Path:
    """``<workspace>/exports/<name>-v<version>`` for ONNX, ``...-torchscript`` for TorchScript:
    exporting the other format of a version must not ask to replace the first."""
    suffix = "" if fmt == "onnx" else f"-{fmt}"
    return source.workspace / "exports" / f"{source.version.name}-v{source.version.version}{suffix}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_export(tmp: Path, source: ExportSource, ref: str, fmt: str, quantize: str | None,
                  atol: float, say: Progress) -> dict[str, Any]:
    model = source.bundle.model.eval()
    x, checked_on = source.check_inputs()
    say(f"exporting {source.model_type} to {fmt}")
    exported, opset = _export_file(model, x[:2], tmp / FILES[fmt][0], fmt, source.model_type)
    say(f"comparing with PyTorch on {checked_on}")
    diff = max_abs_diff(model, exported, x)
    _check_parity(diff, atol, fmt, checked_on)
    before = split_metrics(model, source)
    manifest: dict[str, Any] = {
        "format": fmt, "opset": opset, "model_file": FILES[fmt][0],
        "sha256": sha256_file(tmp / FILES[fmt][0]),
        "source": {"ref": ref, "model": source.version.name, "version": source.version.version,
                   "run_id": source.version.run_id},
        "model_type": source.model_type, "outputs": source.outputs,
        "parity": {"max_abs_diff": diff, "atol": atol, "checked_on": checked_on},
        "metrics": {"pytorch": before, "exported": split_metrics(exported, source)},
        "accuracy_check": _skipped(source),
        "int8": None, "versions": _versions(fmt),
    }
    if quantize:
        say("quantizing to int8 and measuring the accuracy drop")
        manifest["int8"] = _int8(tmp, source, fmt, model, x, before)
    _write_documents(tmp, source, manifest)
    return manifest


def _check_parity(diff: float, atol: float, fmt: str, checked_on: str) -> None:
    """Raise DataError when the exported outputs differ by more than `atol` or are NaN."""
    if math.isnan(diff):
        raise DataError(f"export: the {fmt} model's outputs (or PyTorch's) contain NaN on "
                        f"{checked_on}; nothing was written")
    if diff > atol:
        raise DataError(f"export: the {fmt} model's outputs differ from PyTorch by up to {diff:.3g} "
                        f"on {checked_on} (allowed {atol:g}); nothing was written. Raise --atol "
                        "if that is acceptable")


def _export_file(model: nn.Module, sample: torch.Tensor, path: Path, fmt: str,
                 model_type: str) -> tuple[nn.Module, int | None]:
    """Write the model file and load it back the way a user would."""
    if fmt == "onnx":
        opset = export_onnx(model, sample, path, model_type)
        return OnnxModule(onnx_session(path, physical_cores())), opset
    export_torchscript(model, sample, path, model_type)
    return load_torchscript(path), None


def _int8(tmp: Path, source: ExportSource, fmt: str, model: nn.Module, x: torch.Tensor,
          before: dict[str, float] | None) -> dict[str, Any]:
    src, dest = tmp / FILES[fmt][0], tmp / FILES[fmt][1]
    if fmt == "onnx":
        info = quantize_onnx(src, dest, source.model_type)
        module: nn.Module = OnnxModule(onnx_session(dest, physical_cores()))
    else:
        quantized, info = quantize_torch(model)
        export_torchscript(quantized, x[:2], dest, source.model_type)
        module = load_torchscript(dest)
    after = split_metrics(module, source)
    return {"file": dest.name, "sha256": sha256_file(dest), **info.to_dict(),
            "summary": info.describe(), "max_abs_diff": max_abs_diff(model, module, x),
            "metrics": after, "drop": metric_drop(before, after)}


def _write_documents(tmp: Path, source: ExportSource, manifest: dict[str, Any]) -> None:
    bundle = source.bundle
    task = bundle.task
    output_shape = list(bundle.input_shape) if source.outputs == "reconstruction" else [task.num_outputs]
    write_json(tmp / "preprocessing.json", bundle.preprocessor.to_dict())
    write_json(tmp / "task.json", {**task.to_dict(), "threshold": bundle.threshold})
    write_json(tmp / "input.json", {
        "input": {"name": "input", "dtype": "int64" if source.input_dtype == torch.long else "float32",
                  "shape": ["batch", *bundle.input_shape], "raw": bundle.input_spec},
        "output": {"name": "output", "kind": source.outputs, "shape": ["batch", *output_shape],
                   "scores": None if source.outputs != "logits" else _LINKS[task.kind]},
    })
    write_json(tmp / "manifest.json", manifest)


def _skipped(source: ExportSource) -> str | None:
    if source.outputs != "logits":
        return (f"model type {source.model_type} outputs a reconstruction, not predictions: "
                "there is no accuracy to compare")
    return source.skipped


def _warnings(source: ExportSource) -> list[str]:
    reason = _skipped(source)
    return [] if reason is None else [f"accuracy check skipped: {reason}"]


def _versions(fmt: str) -> dict[str, str]:
    from dlforge import __version__

    versions = {"dlforge": __version__, "torch": torch.__version__}
    if fmt == "onnx":
        import onnx
        import onnxruntime

        versions |= {"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}
    return versions


@contextlib.contextmanager
def _publish(dest: Path) -> Iterator[Path]:
    """A temporary directory that becomes `dest` on success, replacing an earlier export.

    `dest` is resolved; only an earlier export is replaced (checked again here, just before).
    """
    check_destination(dest, force=True)
    staged = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}")
    with atomic_dir(staged) as tmp:
        yield tmp
    _swap(staged, dest)


def _swap(staged: Path, dest: Path) -> None:
    """Rename `staged` to `dest`. An existing `dest` (--force) stays whole until the new one is
    in place, and is moved back if that fails."""
    old = dest.with_name(f"{staged.name}.old") if dest.exists() else None
    try:
        if old is not None:
            os.replace(dest, old)
        try:
            os.replace(staged, dest)
        except OSError:
            if old is not None:
                os.replace(old, dest)
            raise
    except OSError as exc:
        shutil.rmtree(staged, ignore_errors=True)
        kept = ""
        if old is not None:
            kept = (f"; the previous export is left at {old}" if old.exists()
                    else "; the previous export is unchanged")
        raise DataError(f"export: cannot move the new export to {dest} "
                        f"({exc.strerror or type(exc).__name__}){kept}") from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
