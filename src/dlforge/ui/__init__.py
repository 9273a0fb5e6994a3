"""The web dashboard: `create_ui_app(store)` (FastAPI, server-rendered pages), run by `dlforge ui`.

An entry point beside `serve/`: it reads the store (runs, searches, models) and moves aliases
behind the server's bearer token. Nothing below `cli/` imports it.
"""

from __future__ import annotations

from dlforge.ui.app import create_ui_app

__all__ = ["create_ui_app"]
