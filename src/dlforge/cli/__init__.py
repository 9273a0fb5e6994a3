"""The `dlforge` command: parse arguments, call the library, turn errors into messages.

Exit codes: 0 success, 2 usage or config errors, 1 any other error, 130 interrupted.
"""

from __future__ import annotations

import sys

from dlforge.cli.app import app


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `dlforge` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    from dlforge.errors import ConfigError, DlforgeError

    try:
        app(args=argv, prog_name="dlforge", standalone_mode=True)
    except SystemExit as exc:  # click's own exit (usage errors are 2)
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    except DlforgeError as exc:
        if debug:
            raise
        _print_error(str(exc))
        return 2 if isinstance(exc, ConfigError) else 1
    except KeyboardInterrupt:
        _print_error("interrupted")
        return 130
    except Exception as exc:  # a bug, not bad input: say so in one line
        if debug:
            raise
        _print_error(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)")
        return 1
    return 0


def _print_error(message: str) -> None:
    lines = message.splitlines() or [""]
    print(f"error: {lines[0]}", file=sys.stderr)
    for line in lines[1:]:
        print(f"error: {line}", file=sys.stderr)


__all__ = ["app", "main"]
