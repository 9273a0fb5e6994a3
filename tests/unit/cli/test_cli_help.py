"""Every command's `--help` reads cleanly: plain metavars, no typer type notation, help text
for every parameter."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from dlforge.cli.app import app

# typer's notation of a type: <bool>, <str>, <list[str]>, <Path>, <int range> (help texts may
# hold placeholders such as <workspace>: those are words, not types)
ARTEFACT = re.compile(r"<(?:bool|str|int|float|path|file|dir|directory|datetime|list\[\w+\]|\w+ range)>",
                      re.IGNORECASE)


def commands(command, path=()):
    """(path, click command) of every command and group under `command`, the root included."""
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from commands(sub, (*path, name))


ALL = list(commands(get_command(app)))


def test_the_tree_is_the_whole_cli():
    names = {" ".join(path) for path, _ in ALL}
    assert {"", "run", "evaluate", "update", "predict", "serve", "models", "models show",
            "data review", "config check"} <= names
    assert len(ALL) >= 34


@pytest.mark.parametrize(("path", "command"), ALL, ids=[" ".join(p) or "dlforge" for p, _ in ALL])
def test_help_has_plain_metavars_and_help_for_every_parameter(path, command):
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert ARTEFACT.findall(result.output) == []
    usage = next(line.strip() for line in result.output.splitlines() if line.strip())
    assert usage.startswith(f"Usage: dlforge {' '.join((*path, ''))}") and "{" not in usage
    unexplained = [p.name for p in command.params if not (p.help or "").strip()]
    assert unexplained == []


def row(output: str, name: str) -> list[str]:
    """The cells of the help table row of `name` (an option or an argument)."""
    line = next(line for line in output.splitlines() if line.startswith("│") and f" {name} " in line)
    return re.split(r"\s{2,}", line.strip("│ *"))


def test_flags_take_no_metavar_and_values_name_their_kind():
    result = CliRunner().invoke(app, ["evaluate", "--help"], env={"COLUMNS": "200"})
    lines = [line.strip() for line in result.output.splitlines() if line.strip()]
    assert lines[0] == "Usage: dlforge evaluate [OPTIONS] MODEL"
    assert row(result.output, "MODEL") == [
        "MODEL", "TEXT", "Registered model: NAME, NAME@VERSION or NAME@ALIAS. [required]"]
    assert row(result.output, "--json") == ["--json", "Print the full metrics as JSON."]
    assert row(result.output, "--split") == [
        "--split", "TEXT", "Which split of that data: test or all. [default: test]"]
    assert row(result.output, "--data")[:3] == ["--data", "-d", "PATH"]
    assert row(result.output, "--set")[:3] == ["--set", "-s", "KEY=VALUE"]
    run = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"}).output
    assert next(line.strip() for line in run.splitlines() if line.strip()) == (
        "Usage: dlforge run [OPTIONS] [CONFIG]")
    predict = CliRunner().invoke(app, ["predict", "--help"], env={"COLUMNS": "200"}).output
    assert next(line.strip() for line in predict.splitlines() if line.strip()) == (
        "Usage: dlforge predict [OPTIONS] MODEL [INPUT...]")  # was INPUTS..., unlike the README
    for path in (["report"], ["runs", "show"]):  # the README's `dlforge report RUN` (was RUN_ID)
        usage = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"}).output
        assert next(line.strip() for line in usage.splitlines() if line.strip()) == (
            f"Usage: dlforge {' '.join(path)} [OPTIONS] RUN")


GROUPS = [(path, command) for path, command in ALL if getattr(command, "commands", None)]


@pytest.mark.parametrize(("path", "group"), GROUPS, ids=[" ".join(p) or "dlforge" for p, _ in GROUPS])
def test_a_group_lists_each_command_by_its_first_paragraph_on_one_line(path, group):
    # a docstring wrapped in the source showed its line breaks in `dlforge --help`'s list
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "400"})
    listed = [line.strip("│ ") for line in result.output.split("Commands")[1].splitlines()
              if line.startswith("│")]
    first_paragraphs = [" ".join(sub.help.split("\n\n")[0].split()) for sub in group.commands.values()]
    assert len(listed) == len(group.commands) >= 2
    assert sorted(re.sub(r"^\S+\s+", "", line) for line in listed) == sorted(first_paragraphs)


def test_the_root_list_shows_train_on_one_line():
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert ("│ train     Train one model from CONFIG (no search: a tune section is ignored), then "
            "evaluate, register and report it.") in result.output


def test_the_root_lists_commands_in_the_readme_tables_order():
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
    table = readme.split("| command | what it does |")[1].split("\n\n")[0]
    in_readme = list(dict.fromkeys(re.findall(r"^\| `dlforge ([a-z]+)", table, re.MULTILINE)))
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    listed = [line.strip("│ ").split()[0] for line in result.output.split("Commands")[1].splitlines()
              if line.startswith("│ ") and not line.startswith("│  ")]
    assert listed == in_readme
    assert sorted(listed) == sorted(get_command(app).commands)


def test_every_flag_has_one_form_and_every_command_an_example_or_none_needed():
    # `dlforge update` alone showed `--retry-failed --no-retry-failed`; README writes the flag alone
    two_forms = [(" ".join(path), p.opts[0]) for path, command in ALL for p in command.params
                 if getattr(p, "secondary_opts", None)]
    assert two_forms == []
    no_example = sorted(" ".join(path) for path, command in ALL
                        if not getattr(command, "commands", None) and "Example:" not in (command.help or ""))
    assert no_example == ["config check", "config schema", "data inspect", "models alias",
                          "models history", "models list", "models show", "models unalias",
                          "report", "runs list", "runs show"]


def test_evaluate_set_names_a_key_evaluate_reads():
    result = CliRunner().invoke(app, ["evaluate", "--help"], env={"COLUMNS": "200"})
    assert row(result.output, "--set") == [
        "--set", "-s", "KEY=VALUE", "Override a key of that config: --set data.limit=500 (repeatable)."]
