"""The `dlforge` command: parse arguments, call the library, turn errors into messages.

Exit codes: 0 success, 2 usage or config errors, 1 any other error, 130 interrupted.
"""

from __future__ import annotations

import errno
import os
import sys

from dlforge.cli.app import app


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `dlforge` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    from dlforge.errors import ConfigError, DlforgeError, QuietExit

    try:
        app(args=argv, prog_name="dlforge", standalone_mode=True)
    except SystemExit as exc:  # click's own exit (usage errors are 2; typer turns Ctrl-C into 130)
        code = int(exc.code or 0) if not isinstance(exc.code, str) else 1
        if code == 130 and not isinstance(exc, QuietExit):
            _print_error(_interrupted(exc))
        return code
    except DlforgeError as exc:
        if debug:
            raise
        _print_error(str(exc))
        return 2 if isinstance(exc, ConfigError) else 1
    except KeyboardInterrupt as exc:
        _print_error(_interrupted(exc))
        return 130
    except OSError as exc:  # one naming no path (disk full, broken pipe) is not the user's path
        if debug:
            raise
        _print_error(_os_error(exc))
        return 1
    except Exception as exc:  # a bug, not bad input: say so in one line
        if debug:
            raise
        _print_error(_internal_error(exc))
        return 1
    return 0


# Commands that say nothing of their own (review, export, predict, ...) keep no state to
# resume: their files are published whole (`atomic`) and store changes commit whole.
RERUN = ("interrupted: stopped before the command finished; nothing was left half-written "
         "(files appear whole or not at all, the store commits whole changes): run it again")


def _interrupted(exc: BaseException | None) -> str:
    """'interrupted: ...', with what the interrupted work said (the run to resume), found in
    the chain of exceptions typer's exit(130) hides, else RERUN."""
    for _ in range(8):  # the chain is short: SystemExit <- Exit <- KeyboardInterrupt
        if exc is None:
            break
        if isinstance(exc, KeyboardInterrupt) and str(exc):
            return f"interrupted: {exc}"
        exc = exc.__cause__ or exc.__context__
    return RERUN


# Errors of the system the user can act on, with what to do (a broken pipe never gets here:
# click ends the command silently, exit 1, as `dlforge models list | head -1` expects).
_ACTIONABLE = {errno.ENOSPC: "free space and run it again",
               errno.EDQUOT: "free space or raise the disk quota and run it again"}


def _os_error(exc: OSError) -> str:
    """The line for an OSError no check caught: a full disk or quota said plainly, with the
    fix; a path the system refused named (`_path_error`); anything else an internal error.

    Example:
        >>> _os_error(OSError(28, "No space left on device", "/srv/ws/runs/abc/model.pt"))
        'no space left on device (errno 28): free space and run it again'
    """
    if exc.errno in _ACTIONABLE:
        return f"{os.strerror(exc.errno).lower()} (errno {exc.errno}): {_ACTIONABLE[exc.errno]}"
    return _path_error(exc) if exc.filename is not None else _internal_error(exc)


def _internal_error(exc: BaseException) -> str:
    return f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)"


def _path_error(exc: OSError) -> str:
    """A path the system refused (a name too long, no permission, a file where a folder must
    be) that no option's own check caught: name it and the system's reason. It may be a file
    dlforge keeps, not one the user named, so the line points to --debug as well.

    Example:
        >>> _path_error(OSError(36, "File name too long", "a" * 99))
        "cannot use the path 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...': File name too long; check the path and its permissions (rerun with --debug for the traceback)"
    """
    from dlforge.errors import clipped

    return (f"cannot use the path {clipped(str(exc.filename), 60)!r}: "
            f"{exc.strerror or type(exc).__name__}; check the path and its permissions (rerun with "
            f"--debug for the traceback)")


def _print_error(message: str) -> None:
    lines = message.splitlines() or [""]
    print(f"error: {lines[0]}", file=sys.stderr)
    for line in lines[1:]:
        print(f"error: {line}", file=sys.stderr)


__all__ = ["app", "main"]
