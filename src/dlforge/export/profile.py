"""`profile_model`: size, cost and speed of a registered model on each CPU backend, side by side.

Backends: ``eager`` (PyTorch), ``onnxruntime`` (the float ONNX export) and ``int8`` (ONNX
Runtime on the dynamically quantized export). Latency is measured by the same
`evaluate.inspect.latency_ms` that every run's report uses; ONNX Runtime runs with one
intra-op thread per physical core, as PyTorch does after `runtime.configure_process` (which
`dlforge profile` calls; `profile_model` leaves a library caller's torch threads as they are).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlforge.evaluate.inspect import latency_ms
from dlforge.export.exporter import FILES, Progress, default_dir, sha256_file
from dlforge.export.onnx_export import OnnxModule, export_onnx, onnx_session, require_onnx
from dlforge.export.quantize import quantize_onnx
from dlforge.export.source import ExportSource, open_source
from dlforge.models import describe_model
from dlforge.registry.bundle import WEIGHTS
from dlforge.runtime import physical_cores

THROUGHPUT_BATCH = 64
MB = 1024 * 1024


@dataclass(frozen=True)
class BackendProfile:
    """One backend's row: sizes and speeds measured on this machine."""

    backend: str
    params: int
    flops: int
    size_mb: float
    latency_ms_p50: float
    latency_ms_p95: float
    samples_per_s: float


@dataclass
class Profile:
    """Every backend's row, plus notes (threads, what int8 covers)."""

    ref: str
    model_type: str
    rows: list[BackendProfile]
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "model_type": self.model_type,
                "backends": [asdict(r) for r in self.rows], "notes": self.notes,
                "throughput_batch": THROUGHPUT_BATCH}


def profile_model(ref: str, *, workspace: str | Path | None = None, url: str | None = None,
                  runs: int = 30, progress: Progress | None = None) -> Profile:
    """Measure a registered model in PyTorch eager, ONNX Runtime and ONNX Runtime int8.

    Args:
        ref: ``NAME``, ``NAME@VERSION`` or ``NAME@ALIAS``.
        runs: timed forward passes per measurement (after 3 warm-up passes).
        progress: called with a short note before each slow step.

    Returns:
        One row per backend: parameters, FLOPs per sample, file size (MB), latency p50/p95 at
        batch 1 (ms) and throughput at batch 64 (samples/s).

    Raises:
        NotFoundError: unknown model, or onnx/onnxruntime not installed.
        DataError: the model cannot be exported to ONNX or quantized to int8.

    Example:
        >>> [r.backend for r in profile_model("digits").rows]          # doctest: +SKIP
        ['eager', 'onnxruntime', 'int8']
    """
    require_onnx()
    say = progress or (lambda _note: None)
    # Timing does not depend on the values, so random inputs spare reloading the data.
    source = open_source(ref, workspace, url, load_test=False)
    model = source.bundle.model.eval()
    x, _ = source.check_inputs()
    cost = describe_model(model, source.bundle.input_shape, source.input_dtype)
    weights = source.bundle.path / WEIGHTS if source.bundle.path else None
    say("timing PyTorch eager")
    rows = [_row("eager", model, x[0], cost, weights, runs)]
    with tempfile.TemporaryDirectory(prefix="dlforge-profile-") as tmp:
        onnx_file, int8_file, notes = _onnx_files(source, x[:2], Path(tmp), say)
        say("timing ONNX Runtime")
        rows.append(_row("onnxruntime", _session(onnx_file), x[0], cost, onnx_file, runs))
        say("timing ONNX Runtime int8")
        rows.append(_row("int8", _session(int8_file), x[0], cost, int8_file, runs))
    notes += [f"threads: PyTorch {torch.get_num_threads()}, ONNX Runtime {physical_cores()}",
              f"latency at batch 1 over {runs} runs; throughput at batch {THROUGHPUT_BATCH}"]
    return Profile(source.version.ref, source.model_type, rows, notes)


def _onnx_files(source: ExportSource, sample: torch.Tensor, tmp: Path,
                say: Progress) -> tuple[Path, Path, list[str]]:
    """The float and int8 ONNX files: those of an intact `dlforge export` of this version, else
    new ones in `tmp`; and notes saying which."""
    folder = default_dir(source)
    manifest = _manifest(folder)
    onnx_file, int8 = folder / FILES["onnx"][0], _section(manifest, "int8")
    made_from = _section(manifest, "source")
    mine = (made_from.get("model"), made_from.get("version")) == (source.version.name,
                                                                   source.version.version)
    notes: list[str] = []
    if mine and manifest.get("format") == "onnx" and _intact(onnx_file, manifest.get("sha256")):
        notes.append(f"ONNX file: {onnx_file} (from dlforge export)")
        int8_file = folder / FILES["onnx"][1]
        if _intact(int8_file, int8.get("sha256")):
            return onnx_file, int8_file, [*notes, f"int8: {int8['summary']} ({int8_file.name})"]
    else:
        onnx_file = tmp / FILES["onnx"][0]
        say(f"exporting {source.model_type} to ONNX")
        export_onnx(source.bundle.model, sample, onnx_file, source.model_type)
    say("quantizing to int8")
    int8_file = tmp / FILES["onnx"][1]
    return onnx_file, int8_file, [*notes, f"int8: {_quantize(source, onnx_file, int8_file)}"]


def _quantize(source: ExportSource, onnx_file: Path, int8_file: Path) -> str:
    return quantize_onnx(onnx_file, int8_file, source.model_type, command="profile").describe()


def _manifest(folder: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def _section(manifest: dict[str, Any], key: str) -> dict[str, Any]:
    value = manifest.get(key)
    return value if isinstance(value, dict) else {}


def _intact(file: Path, sha256: str | None) -> bool:
    return sha256 is not None and file.is_file() and sha256_file(file) == sha256


def _session(path: Path) -> nn.Module:
    return OnnxModule(onnx_session(path, physical_cores()))


def _row(backend: str, module: nn.Module, sample: torch.Tensor, cost: dict[str, int],
         file: Path | None, runs: int) -> BackendProfile:
    single = latency_ms(module, sample, runs=runs)
    batched = latency_ms(module, sample, runs=max(3, runs // 3), batch_size=THROUGHPUT_BATCH)
    return BackendProfile(
        backend=backend, params=cost["params"], flops=cost["flops"],
        size_mb=(file.stat().st_size / MB) if file is not None and file.is_file() else 0.0,
        latency_ms_p50=single["latency_ms_p50"], latency_ms_p95=single["latency_ms_p95"],
        samples_per_s=THROUGHPUT_BATCH / (batched["latency_ms_p50"] / 1000),
    )

