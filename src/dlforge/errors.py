"""Error types. Library code raises these; only `cli.py` and `serve/` turn them into messages.

Each subclasses a built-in as well, so callers can catch `ValueError` or `KeyError` without
knowing dlforge (Ludwig's `ConfigValidationError(LudwigError, ValueError)`).
"""

from __future__ import annotations


class DlforgeError(Exception):
    """Base class of every error dlforge raises on purpose."""


class ConfigError(DlforgeError, ValueError):
    """A config key has a bad value, is unknown, or contradicts another key.

    The message has one line per problem: ``<key>: <what is wrong> (got <value>)``.
    """


class DataError(DlforgeError, ValueError):
    """The data cannot be used as configured: missing file, missing column, no samples, ..."""


class NotFoundError(DlforgeError, KeyError):
    """A named thing (model, version, alias, run, file) does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class StoreError(DlforgeError, RuntimeError):
    """The registry store is unreachable or corrupt."""


class CompletedRunError(DlforgeError, RuntimeError):
    """An error after a run was recorded completed (its version registered; the promotion gate,
    say): its message says so, that nothing is to be trained again; the error is its cause."""


class QuietExit(SystemExit):
    """End the command with this exit code and print nothing: a rank other than 0 stopped by
    Ctrl-C or SIGTERM (rank 0's line and the launcher's speak for it)."""


def first_line(exc: BaseException | object) -> str:
    """The first line of an exception's message, its type's name when the message is empty.

    Example:
        >>> first_line(ValueError("bad value\\nmore detail")), first_line(KeyError())
        ('bad value', 'KeyError')
    """
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def clipped(text: str, limit: int = 60) -> str:
    """`text` cut to `limit` characters, the cut marked with "...", for a value shown in a message.

    Example:
        >>> clipped("abc"), clipped("x" * 70, 10)
        ('abc', 'xxxxxxx...')
    """
    return text if len(text) <= limit else text[:limit - 3] + "..."
