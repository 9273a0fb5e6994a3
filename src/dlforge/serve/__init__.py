"""The inference service: `create_app(store, settings)` (FastAPI), run by `dlforge serve`.

Only this package and `dlforge.cli` import FastAPI or uvicorn.
"""

from __future__ import annotations

from dlforge.serve.app import create_app

__all__ = ["create_app"]
