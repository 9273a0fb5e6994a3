"""Jinja2 rendering with autoescaping on for every template, so stored strings stay text."""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATES = Path(__file__).parent / "templates"


@cache
def environment() -> Environment:
    """The templates' environment: autoescape on (not only for .html), undefined names fail."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = number
    env.filters["when"] = lambda t: t.strftime("%Y-%m-%d %H:%M:%S") if t else ""
    env.filters["path"] = lambda v: quote(str(v), safe="")
    env.globals["qs"] = query_string
    env.filters["pretty"] = lambda v: json.dumps(v, indent=2, sort_keys=True, default=str)
    return env


def render(request: Request, template: str, *, status: int = 200,
           headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    """The page `template` rendered with `context` (and `request` and `root`, for links)."""
    html = environment().get_template(template).render(request=request, root=root(request),
                                                       **context)
    return HTMLResponse(html, status_code=status, headers=headers)


def root(request: Request) -> str:
    """Where the dashboard is mounted (``/ui`` inside `dlforge serve --ui`), "" on its own:
    every link starts with it."""
    return request.scope.get("root_path", "").rstrip("/")


def number(value: Any, digits: int = 4) -> str:
    """A metric for a table cell: 4 significant digits, blank when missing or not finite."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "" if value is None else str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    return f"{value:.{digits}g}" if isinstance(value, float) else f"{value:,}"


def query_string(args: dict[str, Any], **changes: Any) -> str:
    """``?k=v&...`` of `args` updated with `changes`, empty values left out (for page links)."""
    merged = {**args, **changes}
    return "?" + urlencode({k: v for k, v in merged.items() if v not in ("", None)})
