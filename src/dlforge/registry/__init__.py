"""The registry: runs, model versions, aliases and audit history, and the model bundles they point at.

`Store` needs only SQLAlchemy; the bundle and predictor parts (which import torch) are loaded
on first use, so that `from dlforge.registry import Store` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dlforge.registry.records import Event, ModelSummary, ModelVersion, Run, current_code_version
from dlforge.registry.store import Store

if TYPE_CHECKING:
    from dlforge.registry.bundle import Bundle, load_bundle, save_bundle
    from dlforge.registry.predictor import Predictor, load

_LAZY = {
    "Bundle": "dlforge.registry.bundle",
    "load_bundle": "dlforge.registry.bundle",
    "save_bundle": "dlforge.registry.bundle",
    "Predictor": "dlforge.registry.predictor",
    "load": "dlforge.registry.predictor",
}

__all__ = ["Bundle", "Event", "ModelSummary", "ModelVersion", "Predictor", "Run", "Store",
           "current_code_version", "load", "load_bundle", "save_bundle"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dlforge.registry' has no attribute {name!r}")
