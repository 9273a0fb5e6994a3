"""Export registered models (ONNX, TorchScript, int8) and profile them on each CPU backend.

onnx, onnxscript and onnxruntime come with the ``export`` extra (``pip install
'dlforge[export]'``); they are imported only when a function here needs them.
"""

from __future__ import annotations

from dlforge.export.exporter import FORMATS, QUANTIZATIONS, ExportResult, export_model
from dlforge.export.profile import BackendProfile, Profile, profile_model

__all__ = ["FORMATS", "QUANTIZATIONS", "BackendProfile", "ExportResult", "Profile",
           "export_model", "profile_model"]
