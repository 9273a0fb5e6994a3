"""TorchScript: trace a model to a self-contained ``.pt`` file and load it back.

Tracing (not scripting) because every model in the zoo has a fixed control flow; the batch
dimension stays free. Upstream torch now marks TorchScript as deprecated in favour of
``torch.export``, so its warnings are silenced here: the user asked for this format explicitly.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from dlforge.errors import DataError, first_line


def export_torchscript(model: nn.Module, sample: torch.Tensor, path: Path, model_type: str) -> None:
    """Trace `model` on `sample` and save it to `path`.

    Raises:
        DataError: tracing fails (one line naming the model type).
    """
    try:
        with _quiet(), torch.no_grad():
            traced = torch.jit.trace(model.eval(), (sample,), check_trace=False)
            traced.save(str(path))
    except Exception as exc:  # noqa: BLE001 - any tracer failure is one line for the user
        raise DataError(f"export: model type {model_type} cannot be traced to TorchScript "
                        f"({type(exc).__name__}: {first_line(exc)[:300]}); try --format onnx") from None


def load_torchscript(path: Path) -> nn.Module:
    """Load a traced model on the CPU, in eval mode."""
    with _quiet():
        return torch.jit.load(str(path), map_location="cpu").eval()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        yield
