"""State changes from the dashboard: the server's bearer token plus an explicit confirmation.

The token is the one `dlforge serve` asks of its write endpoints (``serve.token`` or
``$DLFORGE_SERVE_TOKEN``). A browser form cannot set an Authorization header, so a form may
send it as the field ``token`` instead; scripts send ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import hmac

from fastapi import Request

TOKEN_ENV = "DLFORGE_SERVE_TOKEN"  # the same variable as serve/deps.py (a test holds them equal)


class Refused(Exception):
    """A state change without the token or the confirmation; `status` is 401, 403 or 422."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def require_change(request: Request, form_token: str | None, confirmed: bool) -> None:
    """Allow a state change only with the right token and a confirmation.

    Raises:
        Refused: 403 when the dashboard has no token, 401 for a missing or wrong token,
            422 when the confirmation box was not ticked.
    """
    token: str | None = request.app.state.token
    if token is None:
        raise Refused(403, f"this dashboard has no token, so it refuses changes; set "
                           f"serve.token or ${TOKEN_ENV} and restart it")
    given = form_token or _bearer(request.headers.get("authorization", ""))
    if not given:
        raise Refused(401, "token: missing; type the server's token (serve.token or "
                           f"${TOKEN_ENV}) or send 'Authorization: Bearer <token>'")
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise Refused(401, "token: wrong token")
    if not confirmed:
        raise Refused(422, "confirm: tick the box to confirm the change")


def _bearer(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None
