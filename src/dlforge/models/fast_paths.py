"""When a layer may take an eager-only inference shortcut (fused or hand-written ops).

`ConvReLUSequential` and `MaxPool2d` compute the same values as torch's layers by other ops
when nothing needs gradients, and `Flatten` returns its gradient in another layout.
Exporters and compilers must see torch's standard ops instead (a traced graph holding
``mkldnn._convolution_pointwise`` runs nowhere else, and ONNX has no such op), so tracing,
scripting, ONNX export and torch.compile take the standard path.
"""

from __future__ import annotations

import torch


def exporting() -> bool:
    """True while a tracer, scripting, ONNX export or torch.compile is running.

    Example:
        >>> exporting()
        False
    """
    return (torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export()
            or torch.compiler.is_compiling())


def eager_inference() -> bool:
    """True when no gradient is being recorded and no tracer, exporter or compiler is running.

    Example:
        >>> with torch.no_grad():
        ...     eager_inference()
        True
        >>> eager_inference()
        False
    """
    return not (torch.is_grad_enabled() or exporting())
