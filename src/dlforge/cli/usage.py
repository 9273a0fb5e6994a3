"""Usage errors as one line, for every command at once.

Click reports an unknown option or command, a missing argument or a bad option value (and
the `typer.BadParameter` a command raises) as a boxed panel under the usage line. dlforge's
rule for every error is one line on stderr, ``error: <what> (see '<command> -h')``, exit 2.
`RootGroup`, the application's group class, turns click's `UsageError` into that line where
the whole command tree is parsed and invoked: its own `make_context` (the global options) and
`invoke` (the sub-commands' parsing and bodies), so no command handles it itself. ``-h`` /
``--help`` and a group called without a command still print the help.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer

from dlforge.cli.help import HelpGroup

try:  # typer 0.2x carries its own copy of click, whose errors its commands raise
    from typer._click import Context
    from typer._click.exceptions import MissingParameter, UsageError  # noqa: F401 - for commands
except ImportError:  # older typer runs on click itself
    from click import Context
    from click.exceptions import MissingParameter, UsageError  # noqa: F401 - for commands


class RootGroup(HelpGroup):
    """The typer group of `dlforge`: plain help (`HelpGroup`) and one-line usage errors."""

    def make_context(self, info_name: str | None, args: list[str], parent: Context | None = None,
                     **extra: Any) -> Context:
        with one_line_usage_errors():
            return super().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: Context) -> Any:
        with one_line_usage_errors():
            return super().invoke(ctx)


@contextmanager
def one_line_usage_errors() -> Iterator[None]:
    """Print a click `UsageError` raised inside as `usage_line` on stderr and exit 2.

    Raises:
        typer.Exit: code 2 (the usage error's), after printing the line.
    """
    try:
        yield
    except UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # the help is printed already: no error
            raise
        print(usage_line(exc), file=sys.stderr)
        raise typer.Exit(exc.exit_code) from exc


# The help of an output folder the user names (`named_output`); the option's metavar is PATH.
NAMED_OUTPUT_HELP = ("If PATH is created by another process meanwhile, it is left as it is: the "
                     "files go to PATH-2 (or -3, ...) and the command exits 1 saying so.")


@contextmanager
def named_output(option: str = "--output") -> Iterator[None]:
    """The folder given with `option`, found absent before the command's work began, created
    by another process meanwhile (`atomic.TargetTaken`): one line naming `option` and where
    the work was kept, exit 1 (not a usage error: the command line was right).

    Raises:
        DlforgeError: ``--output: PATH was created by another process while ...``.
    """
    from dlforge.atomic import TargetTaken
    from dlforge.errors import DlforgeError

    try:
        yield
    except TargetTaken as exc:
        raise DlforgeError(f"{option}: {exc}") from None


def usage_line(exc: UsageError) -> str:
    """The one line of a usage error: ``error: <click's message> (see '<command> -h')``.

    Args:
        exc: the usage error; its context (when it has one) names the command to ask for help.

    Returns:
        The line, without a newline; the message's own line breaks and final full stop dropped,
        and an option a command named itself (``typer.BadParameter(..., param_hint="--split")``)
        quoted as click quotes the options it checks: ``Invalid value for '--split': ...``.

    Example:
        >>> from typer.core import TyperCommand
        >>> ctx = Context(TyperCommand("run"), info_name="dlforge run")
        >>> usage_line(UsageError("No such option: --bogus", ctx=ctx))
        "error: No such option: --bogus (see 'dlforge run -h')"
        >>> usage_line(UsageError("Missing argument 'MODEL'."))
        "error: Missing argument 'MODEL' (see 'dlforge -h')"
        >>> from typer import BadParameter
        >>> usage_line(BadParameter("must be test or all (got 'val')", param_hint="--split"))
        "error: Invalid value for '--split': must be test or all (got 'val') (see 'dlforge -h')"
    """
    valued = value_message(exc)
    if valued is not None:
        exc.message = valued
    message = " ".join(exc.format_message().split()).rstrip(".")
    message = re.sub(r"^Invalid value for (-[\w-]+):", r"Invalid value for '\1':", message)
    command = exc.ctx.command_path if exc.ctx is not None else "dlforge"
    return f"error: {message} (see '{command} -h')"


BOUND_ERRORS = {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}
NUMBER_ERRORS = {"int_parsing": "an integer", "int_from_float": "an integer", "int_type": "an integer",
                 "float_parsing": "a number", "float_type": "a number", "finite_number": "a number"}


def value_message(exc: UsageError) -> str | None:
    """The message of a number option's (or argument's) bad value, checked by pydantic, whose
    message named neither the value nor the range (`min=`/`max=`): what is expected and the
    value received, as typed; None for any other error.

    Example:
        >>> from types import SimpleNamespace
        >>> from typing import Annotated
        >>> from pydantic import Field, TypeAdapter, ValidationError
        >>> from typer import BadParameter
        >>> def refused(value):
        ...     try:
        ...         TypeAdapter(Annotated[int, Field(ge=1, le=65535)]).validate_python(value)
        ...     except ValidationError as cause:
        ...         exc = BadParameter(str(cause))
        ...         exc.__cause__ = cause
        ...     exc.param = SimpleNamespace(min=1, max=65535)  # typer.Option(min=, max=)
        ...     return value_message(exc)
        >>> refused("70000"), refused("abc")
        ('must be from 1 to 65535 (got 70000)', "must be an integer from 1 to 65535 (got 'abc')")
    """
    from pydantic import ValidationError

    cause = exc.__cause__
    if not isinstance(cause, ValidationError) or not cause.errors():
        return None
    error = cause.errors()[0]
    param = getattr(exc, "param", None)
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    if error["type"] in NUMBER_ERRORS:
        expected = NUMBER_ERRORS[error["type"]]
        if low is not None or high is not None:  # typer's min=/max=: both ends included
            allowed = _allowed(low, high, {})
            expected += (" of " if allowed.startswith("at ") else " ") + allowed
        return f"must be {expected} (got {error['input']!r})"
    if error["type"] not in BOUND_ERRORS:
        return None
    bounds = error.get("ctx", {})
    if low is None and high is None:  # a bound set another way: pydantic's own ends
        low = bounds.get("ge", bounds.get("gt"))
        high = bounds.get("le", bounds.get("lt"))
    return f"must be {_allowed(low, high, bounds)} (got {error['input']})"


def _allowed(low: float | None, high: float | None, bounds: dict) -> str:
    """The range in words: ``from 1 to 65535``, ``at least 0``, ``greater than 0`` (`bounds`:
    pydantic's, saying whether an end is excluded)."""
    if low is not None and high is not None:
        return f"from {_number(low)} to {_number(high)}"
    if low is not None:
        return f"at least {_number(low)}" if "gt" not in bounds else f"greater than {_number(low)}"
    return f"at most {_number(high)}" if "lt" not in bounds else f"less than {_number(high)}"


def _number(value: float) -> str:
    """A bound as a user would type it: 67108864 (not 6.71089e+07), 0 (of 0.0), 0.5.

    Example:
        >>> _number(67108864), _number(0.0), _number(0.5), _number(1e-4)
        ('67108864', '0', '0.5', '0.0001')
    """
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)
