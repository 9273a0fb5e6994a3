"""Usage errors of every command are one line on stderr, naming the help to read, exit 2."""

from __future__ import annotations

from typing import Annotated

import pytest
from typer.testing import CliRunner

from dlforge.cli import main
from dlforge.cli.app import app


@pytest.mark.parametrize(("args", "line"), [
    (["run", "--bogus"], "error: No such option: --bogus (see 'dlforge run -h')"),
    (["--bogus"], "error: No such option: --bogus (see 'dlforge -h')"),
    (["config", "check", "--bogus"], "error: No such option: --bogus (see 'dlforge config check -h')"),
    (["run", "--quite"],
     "error: No such option: --quite (Possible options: --quiet) (see 'dlforge run -h')"),
    (["predict"], "error: Missing argument 'MODEL' (see 'dlforge predict -h')"),
    (["predict", "m"], "error: give at least one INPUT (image files or folders, CSV files, or "
                       ".json/.jsonl files) or --text (see 'dlforge predict -h')"),
    (["models", "alias", "m"], "error: Missing argument 'ALIAS' (see 'dlforge models alias -h')"),
    (["bogus"], "error: No such command 'bogus' (see 'dlforge -h')"),
    (["models", "bogus"], "error: No such command 'bogus' (see 'dlforge models -h')"),
    (["run", "--nproc", "x"],  # pydantic's "Input should be a valid integer" named no value
     "error: Invalid value for '--nproc': must be an integer of at least 1 (got 'x') "
     "(see 'dlforge run -h')"),
    (["serve", "--port", "1.5"], "error: Invalid value for '--port': must be an integer from 1 to "
                                 "65535 (got '1.5') (see 'dlforge serve -h')"),
    (["export", "m", "--atol", "x"], "error: Invalid value for '--atol': must be a number of at "
                                     "least 0 (got 'x') (see 'dlforge export -h')"),
    (["models", "alias", "m", "prod", "v2"], "error: Invalid value for 'VERSION': must be an "
                                             "integer (got 'v2') (see 'dlforge models alias -h')"),
    (["predict", "m", "--batch-size", "0"], "error: Invalid value for '--batch-size' / '-b': must "
                                            "be at least 1 (got 0) (see 'dlforge predict -h')"),
    (["serve", "--port", "70000"],  # the value received and both ends (pydantic said one)
     "error: Invalid value for '--port': must be from 1 to 65535 (got 70000) (see 'dlforge serve -h')"),
    (["export", "m", "--atol", "-1.5"],
     "error: Invalid value for '--atol': must be at least 0 (got -1.5) (see 'dlforge export -h')"),
    (["export", "m", "--format", "tflite"],  # a command's own typer.BadParameter
     "error: Invalid value for '--format': must be onnx or torchscript (got 'tflite') "
     "(see 'dlforge export -h')"),
    (["run", "--resume", "abc", "cfg.yaml"],
     "error: Invalid value for '--resume': takes no CONFIG or --set: a resumed run keeps its own "
     "config (see 'dlforge run -h')"),
])
def test_a_usage_error_is_one_line_and_exit_2(tmp_path, capsys, args, line):
    ws = tmp_path / "ws"
    assert main(["-w", str(ws), *args]) == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", line + "\n")
    assert not ws.exists()


def test_the_test_runner_sees_the_same_line():
    result = CliRunner().invoke(app, ["serve", "--port", "x"])
    assert result.exit_code == 2
    assert result.stderr == ("error: Invalid value for '--port': must be an integer from 1 to 65535 "
                             "(got 'x') (see 'dlforge serve -h')\n")


def test_a_range_names_integer_bounds_as_integers():
    from types import SimpleNamespace

    from pydantic import Field, TypeAdapter, ValidationError
    from typer import BadParameter

    from dlforge.cli.usage import value_message

    with pytest.raises(ValidationError) as caught:  # a bound :g printed as 6.71089e+07
        TypeAdapter(Annotated[int, Field(ge=1, le=67108864)]).validate_python("67108865")
    exc = BadParameter("Input should be less than or equal to 67108864")
    exc.__cause__, exc.param = caught.value, SimpleNamespace(min=1, max=67108864)
    assert value_message(exc) == "must be from 1 to 67108864 (got 67108865)"
    exc.param = SimpleNamespace(min=0.0, max=None)
    assert value_message(exc) == "must be at least 0 (got 67108865)"


def test_help_and_a_bare_group_still_print_the_help(capsys):
    assert main(["run", "-h"]) == 0
    out = capsys.readouterr().out
    assert "Usage: dlforge run [OPTIONS] [CONFIG]" in out and "--quiet" in out
    assert main(["models"]) == 2  # no command given: the group's help, as click does
    captured = capsys.readouterr()
    assert "Usage: dlforge models [OPTIONS] COMMAND [ARGS]..." in captured.out
    assert "error:" not in captured.out + captured.err


def test_version_prints_before_any_command_is_needed(capsys):
    from dlforge import __version__

    assert main(["--version"]) == 0  # was "Missing command": the option ran only with a command
    assert capsys.readouterr() == (f"dlforge {__version__}\n", "")


def _range_options(command, path=()):
    """(command path, option) for every option or argument with `min=` or `max=`."""
    for name, sub in getattr(command, "commands", {}).items():
        yield from _range_options(sub, (*path, name))
    for param in command.params:
        if getattr(param, "min", None) is not None or getattr(param, "max", None) is not None:
            yield path, param


def _out_of_range(param) -> tuple[str, str]:
    """A value outside `param`'s range, as typed, and the allowed range in words."""
    low, high = param.min, param.max
    value = low - 1 if low is not None else high + 1
    allowed = (f"from {low} to {high}" if low is not None and high is not None
               else f"at least {low}" if low is not None else f"at most {high}")
    return f"{value}", allowed.replace(".0 ", " ").removesuffix(".0")  # 0.0 is typed 0


def test_every_range_error_names_the_option_the_value_and_the_range(tmp_path, capsys):
    # pydantic's "Input should be greater than or equal to 1" named neither the value received
    # nor, with a max too, the other end
    import typer

    found = list(_range_options(typer.main.get_command(app)))
    assert len(found) == 23  # every command's min=/max= options, walked from the app
    for path, param in found:
        value, allowed = _out_of_range(param)
        hint = " / ".join(f"'{opt}'" for opt in param.opts)
        assert main(["-w", str(tmp_path / "ws"), *path, param.opts[0], value]) == 2, (path, param.name)
        assert capsys.readouterr().err == (
            f"error: Invalid value for {hint}: must be {allowed} (got {value}) "
            f"(see 'dlforge {' '.join(path)} -h')\n"), (path, param.name)
