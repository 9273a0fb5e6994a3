"""How `--help` names parameters, for every command at once.

Left to itself, typer 0.29 shows a flag as ``--json <bool>`` (as if it took a value), a
value's type in its own notation (``<list[str]>``, ``<Path>``, ``<int range>``) and a required
argument as ``{model}`` in the usage line (braces usually mean "one of"). `HelpGroup`, the
application's group class, gives every parameter of the command tree a plain metavar when the
tree is built: nothing for a flag, the value's kind in capitals for an option (TEXT, PATH,
INTEGER, FLOAT; choices as ``[a|b]``; ``KEY=VALUE`` for ``--set``, ``CONDITION`` for
``--require``) and the argument's name in capitals for an argument
(``MODEL``; ``[CONFIG]`` when optional, ``INPUT...`` when repeatable). An explicit
``typer.Option(metavar=...)`` is kept. A group lists each command by the first paragraph of
its help on one line: rich would keep a docstring's line breaks there.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

from typer.core import TyperArgument, TyperGroup, TyperOption

# The order `dlforge --help` lists the commands in: that of the README's table of commands (from
# a run to its model's later life), not the order the modules happen to register them in.
ORDER = ("run", "train", "tune", "evaluate", "predict", "models", "promote", "rollback", "finetune",
         "update", "runs", "report", "config", "data", "serve", "ui", "inspect", "export", "profile",
         "generate", "drift")
_WORDS = {str: "TEXT", int: "INTEGER", float: "FLOAT", bool: "BOOLEAN", Path: "PATH"}
# Options whose values have a shape of their own, whichever command takes them.
_SHAPED = {"--set": "KEY=VALUE", "--require": "CONDITION"}


class HelpGroup(TyperGroup):
    """The typer group whose commands (sub-groups included) show plain metavars in `--help`,
    listed in `ORDER` (any other after them)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tidy(self)

    def list_commands(self, ctx: Any) -> list[str]:
        rank = {name: i for i, name in enumerate(ORDER)}
        return sorted(super().list_commands(ctx), key=lambda name: rank.get(name, len(ORDER)))


class _Argument(TyperArgument):
    """An argument shown by its metavar alone: ``MODEL``, ``[CONFIG]``, ``INPUT...``."""

    def _usage_display_name(self) -> str:
        return self.display_name_raw if self.required else f"[{self.display_name_raw}]"

    def display_type_rich(self, ctx: Any) -> str | None:
        return kind_word(self)


def tidy(command: Any) -> None:
    """Give every parameter of `command` and of its sub-commands a plain metavar (in place)."""
    for param in command.params:
        if isinstance(param, TyperArgument):
            param.__class__ = _Argument  # same state, its own usage and type column
            if param.metavar is None:
                param.metavar = param.name.upper() + ("..." if param.nargs != 1 else "")
        elif isinstance(param, TyperOption) and param.metavar is None:
            shaped = next((_SHAPED[o] for o in param.opts if o in _SHAPED), None)
            param.metavar = "" if param.is_flag or param.count else shaped or kind_word(param)
    command.get_help_option = _flag_help(command.get_help_option)  # made per context, later
    if command.help and command.short_help is None:
        command.short_help = summary(command.help)
    for sub in getattr(command, "commands", {}).values():
        tidy(sub)


def summary(text: str) -> str:
    r"""The first paragraph of a help text, on one line: what a group lists for the command.

    Example:
        >>> summary("Train one model from CONFIG, then evaluate,\n    register and report it.\n\n    Example: ...")
        'Train one model from CONFIG, then evaluate, register and report it.'
    """
    return " ".join(inspect.cleandoc(text).split("\n\n")[0].split())


def _flag_help(get_help_option: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`get_help_option` whose option (`-h`/`--help`, a flag) shows no metavar."""
    def get(ctx: Any) -> Any:
        option = get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option

    return get


def kind_word(param: TyperArgument | TyperOption) -> str:
    """What a parameter's value is, as click writes it: TEXT, PATH, INTEGER, FLOAT, ``[a|b]``.

    Example:
        >>> import typer
        >>> from typer.main import get_command
        >>> app = typer.Typer(add_completion=False)
        >>> @app.command()
        ... def go(n: int = 1, out: Path | None = None, tags: list[str] = []) -> None: ...
        >>> [kind_word(p) for p in get_command(app).params]
        ['INTEGER', 'PATH', 'TEXT']
    """
    desc = param.type_descriptor
    if desc.is_choice:
        return "[" + "|".join(str(c) for c in desc.choices) + "]"
    if desc.is_path:
        return "PATH"
    annotation = desc.annotation
    if desc.is_list:
        annotation = get_args(annotation)[0]
    return _WORDS.get(annotation, getattr(annotation, "__name__", str(annotation)).upper())
