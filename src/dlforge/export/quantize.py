"""Dynamic int8 quantization: weights stored as int8, activations quantized on the fly.

Dynamic quantization needs no calibration data and covers the fully connected layers
(PyTorch ``nn.Linear``; ONNX ``MatMul``/``Gemm``). Convolutions and embeddings stay float:
PyTorch's dynamic mode has no int8 convolution, and ONNX Runtime's dynamic ``ConvInteger`` is
usually slower than its float convolution on CPUs, so both paths leave them alone and say so.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from dlforge.errors import ConfigError, DataError, first_line

ONNX_QUANTIZED_OPS = ("MatMul", "Gemm")
_ONNX_FLOAT_OPS = {"Conv": "conv", "ConvTranspose": "conv", "Gather": "embedding"}
_TORCH_FLOAT_LAYERS = ((nn.Conv1d, "conv"), (nn.Conv2d, "conv"), (nn.ConvTranspose2d, "conv"),
                       (nn.Embedding, "embedding"))


@dataclass(frozen=True)
class Quantized:
    """What a quantization did.

    Attributes:
        method: ``torch.ao dynamic`` or ``onnxruntime dynamic``.
        layers: fully connected layers now in int8.
        kept_float: layers left in float, by kind (``conv``, ``embedding``).
    """

    method: str
    layers: int
    kept_float: dict[str, int]

    def describe(self) -> str:
        """One line for the user, e.g. "onnxruntime dynamic int8: 2 linear layers in int8;
        4 conv layers stay float"."""
        text = f"{self.method} int8: {_layers(self.layers, 'linear')} in int8"
        kept = [_layers(n, kind) for kind, n in sorted(self.kept_float.items()) if n]
        verb = "stays" if sum(self.kept_float.values()) == 1 else "stay"
        return text + (f"; {' and '.join(kept)} {verb} float" if kept else "")

    def to_dict(self) -> dict:
        return {"method": self.method, "int8_layers": self.layers, "float_layers": self.kept_float}


def quantize_torch(model: nn.Module) -> tuple[nn.Module, Quantized]:
    """A dynamically quantized copy of `model` (``nn.Linear`` in int8); `model` is untouched.

    Raises:
        ConfigError: this torch build has no quantized CPU engine, or no dynamic quantization.
    """
    check_torch_quantization()
    with warnings.catch_warnings():
        # torch deprecates eager-mode quantization in favour of torchao (not a dependency
        # here); it works in this torch, and the manifest records the torch version used.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor", category=UserWarning)
        quantized = torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(model).eval(), {nn.Linear}, dtype=torch.qint8)
    return quantized, Quantized("torch.ao dynamic", _count(model, (nn.Linear,)), _float_layers(model))


def check_torch_quantization() -> None:
    """Raise ConfigError unless this torch build can quantize ``nn.Linear`` dynamically."""
    engines = [e for e in torch.backends.quantized.supported_engines if e != "none"]
    ao_quantization = getattr(getattr(torch, "ao", None), "quantization", None)
    if not engines or not hasattr(ao_quantization, "quantize_dynamic"):
        raise ConfigError("--quantize: int8 is not supported for TorchScript by this torch build "
                          "(no dynamic quantization engine); use --format onnx --quantize int8")


def quantize_onnx(src: Path, dest: Path, model_type: str, *, command: str = "export") -> Quantized:
    """Write an int8 copy of the ONNX file `src` to `dest` (ONNX Runtime dynamic quantization).

    Args:
        model_type: the config's ``model.type``, for the error message.
        command: ``export`` or ``profile``, the error message's prefix.

    Raises:
        DataError: ONNX Runtime cannot quantize the model (one line naming the model type).
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    try:
        with _no_preprocessing_advice():
            quantize_dynamic(str(src), str(dest), op_types_to_quantize=list(ONNX_QUANTIZED_OPS),
                             weight_type=QuantType.QInt8)
    except Exception as exc:  # noqa: BLE001 - any quantizer failure is one line for the user
        hint = "; export without --quantize int8" if command == "export" else ""
        raise DataError(f"{command}: ONNX Runtime cannot quantize model type {model_type} to int8 "
                        f"({type(exc).__name__}: {first_line(exc)[:300]}){hint}") from None
    graph = onnx.load(str(src)).graph
    weights = {init.name for init in graph.initializer}
    # A layer is a node reading a weight; a Gather on a shape is not an embedding.
    layers = [node.op_type for node in graph.node if any(i in weights for i in node.input)]
    kept: dict[str, int] = {}
    for op in layers:
        if op in _ONNX_FLOAT_OPS:
            kept[_ONNX_FLOAT_OPS[op]] = kept.get(_ONNX_FLOAT_OPS[op], 0) + 1
    return Quantized("onnxruntime dynamic", sum(op in ONNX_QUANTIZED_OPS for op in layers), kept)


def _layers(n: int, kind: str) -> str:
    return f"{n} {kind} layer{'' if n == 1 else 's'}"


def _count(model: nn.Module, kinds: tuple[type, ...]) -> int:
    return sum(isinstance(m, kinds) for m in model.modules())


def _float_layers(model: nn.Module) -> dict[str, int]:
    kept: dict[str, int] = {}
    for layer, kind in _TORCH_FLOAT_LAYERS:
        kept[kind] = kept.get(kind, 0) + _count(model, (layer,))
    return {kind: n for kind, n in kept.items() if n}


class _DropAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


@contextlib.contextmanager
def _no_preprocessing_advice() -> Iterator[None]:
    """ONNX Runtime advises a shape-inference pre-pass on the root logger; the dynamo exporter
    already writes shapes and an optimized graph, and the pre-pass costs seconds, so drop it."""
    root = logging.getLogger()
    drop = _DropAdvice()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)
