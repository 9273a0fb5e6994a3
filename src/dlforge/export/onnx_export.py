"""ONNX: write a model with a dynamic batch dimension, and run the file with ONNX Runtime.

The export uses torch's dynamo-based exporter (``torch.onnx.export(..., dynamo=True)``, which
needs ``onnxscript``): since torch 2.9 it is the default and the TorchScript-based exporter is
deprecated and slated for removal. It costs a few seconds per model, once.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dlforge.errors import DataError, NotFoundError, first_line

OPSET = 18
INPUT_NAME = "input"
OUTPUT_NAME = "output"
INSTALL_HINT = "pip install 'dlforge[export]'"


def require_onnx() -> Any:
    """Import onnxruntime (and check onnx and onnxscript, which the exporter needs).

    Raises:
        NotFoundError: one of them is not installed, with the command that installs them.
    """
    missing = []
    for name in ("onnx", "onnxscript", "onnxruntime"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise NotFoundError(f"{', '.join(missing)} not installed: ONNX export and profiling need "
                            f"the export extra; install dlforge[export] ({INSTALL_HINT})")
    import onnxruntime

    return onnxruntime


def export_onnx(model: nn.Module, sample: torch.Tensor, path: Path, model_type: str) -> int:
    """Write `model` as ONNX to `path`, its first (batch) dimension dynamic.

    Args:
        model: the model in eval mode.
        sample: a batch of at least 2 inputs (a batch of 1 would be specialised to size 1).
        path: the .onnx file to write.
        model_type: the config's ``model.type``, for the error message.

    Returns:
        The ONNX opset of the file.

    Raises:
        DataError: the exporter cannot handle the model (one line naming the model type).
    """
    require_onnx()
    assert len(sample) >= 2, "a batch of one would fix the batch dimension to 1"
    batch = torch.export.Dim("batch")
    try:
        with quiet_exporter():
            program = torch.onnx.export(
                model.eval(), (sample,), None, input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME], opset_version=OPSET, dynamo=True,
                dynamic_shapes=({0: batch},), verbose=False, optimize=True)
            program.save(str(path))
    except Exception as exc:  # noqa: BLE001 - any exporter failure is one line for the user
        raise DataError(f"export: model type {model_type} cannot be exported to ONNX "
                        f"({type(exc).__name__}: {first_line(exc)[:300]}); try --format torchscript") from None
    return OPSET


def onnx_session(path: Path, threads: int) -> Any:
    """An ONNX Runtime CPU session on `path` using `threads` intra-op threads."""
    ort = require_onnx()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: its optimizer notes are not for users
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


class OnnxModule(nn.Module):
    """An ONNX Runtime session behind the `nn.Module` call, so that the functions written for
    models (`predict_scores`, `latency_ms`) run exported files unchanged."""

    def __init__(self, session: Any) -> None:
        super().__init__()
        self.session = session

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feed = {INPUT_NAME: np.ascontiguousarray(x.detach().cpu().numpy())}
        return torch.from_numpy(self.session.run([OUTPUT_NAME], feed)[0])


@contextlib.contextmanager
def quiet_exporter() -> Iterator[None]:
    """Silence the exporter's progress prints, upstream deprecation notes and skipped-op logs.

    They concern torch's internals (e.g. "torchvision is not installed"), not the user's model;
    real failures still raise.
    """
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        logger.setLevel(level)

