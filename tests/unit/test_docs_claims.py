"""What the docs and examples name exists: every config key a code span wholly is (`key`,
`key=...`, `key: ...`) or a `--set` names, and every command and option of each `dlforge`
invocation they show (a line may chain several with `&&`, `|` or `;`)."""

from __future__ import annotations

import dataclasses
import importlib
import re
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from dlforge.config.schema import RunConfig

ROOT = Path(__file__).resolve().parents[2]
# docs/config.md is generated from the schema (test_docs.py keeps it in step)
DOCS = sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "config.md") + [ROOT / "README.md"]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
FENCE = re.compile(r"```.*?```", re.S)
SPAN = re.compile(r"`([^`\n]+)`")
KEY = re.compile(r"\s*([a-z_]+(?:\.[a-z_0-9]+)+)(?:\s*=\s*\S.*|:(?:\s+\S.*)?)?\s*")  # a whole span
SET = re.compile(r"--set\s+([a-z_]+(?:\.[a-z_0-9]+)+)=")
FILE_SUFFIXES = {"json", "pt", "onnx", "csv", "npz", "npy", "png", "yaml", "txt", "db", "py", "md",
                 "html", "gz", "safetensors", "tmp"}
GLOBAL_OPTIONS = {"-w": True, "--workspace": True, "--store-url": True, "--debug": False}
SEPARATOR = re.compile(r"&&|\|\||;|(?<=\s)\|(?=\s)")  # between commands of one shell line
# `dlforge` where a command starts: after a prompt, variables, a path, `python -m`, or a colon
INVOCATION = re.compile(r"(?:^|:\s+)(?:[#$]\s*)?(?:[A-Z_]+=\S*\s+)*(?:\S*/|python3? -m\s+)?"
                        r"dlforge\s+(\S.*)")


def _models(annotation: object) -> list[type[BaseModel]] | None:
    """The pydantic models an annotation may hold, or None when it holds a dict or Any (keys
    below it cannot be checked)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        found: list[type[BaseModel]] = []
        for arg in typing.get_args(annotation):
            inner = _models(arg)
            if inner is None:
                return None
            found += inner
        return found
    if origin is dict or annotation is dict or annotation is typing.Any:
        return None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def key_exists(key: str) -> bool:
    """True when the dotted `key` is a field of RunConfig (any model type or schedule type)."""
    models: list[type[BaseModel]] | None = [RunConfig]
    for part in key.split("."):
        if models is None:
            return True
        fields = [m.model_fields[part] for m in models if part in m.model_fields]
        if not fields:
            return False
        below: list[type[BaseModel]] = []
        for field in fields:
            inner = _models(field.annotation)
            if inner is None:
                models = None
                break
            below += inner
        else:
            models = below
    return True


def _is_code_path(key: str) -> bool:
    """A module, file or API name that looks like a key: `data.streamed`, `review.json`,
    `registry.load` (an attribute of the package), `data.splits.train` (of `PreparedData`)."""
    from dlforge.data.prepare import PreparedData

    parts = key.split(".")
    if parts[-1] in FILE_SUFFIXES:
        return True
    api = {f.name for f in dataclasses.fields(PreparedData)} | set(dir(PreparedData))
    if parts[0] == "data" and parts[1] in api:
        return True
    base = ROOT / "src" / "dlforge" / parts[0] / parts[1]
    if base.with_suffix(".py").exists() or base.is_dir():
        return True
    package = importlib.import_module(f"dlforge.{parts[0]}") if base.parent.is_dir() else None
    return hasattr(package, parts[1])


def named_keys(path: Path) -> Iterator[str]:
    """The dotted names a doc uses as config keys: in a code span that is wholly one, or in
    any `--set KEY=`."""
    text = path.read_text()
    if path.suffix == ".md":
        for span in SPAN.findall(FENCE.sub("", text)):
            if (whole := KEY.fullmatch(span)) is not None:
                yield whole.group(1)
    yield from SET.findall(text)


@pytest.mark.parametrize("path", DOCS + EXAMPLES, ids=lambda p: p.name)
def test_every_config_key_a_doc_names_exists(path):
    sections = set(RunConfig.model_fields)
    keys = {k for k in named_keys(path) if k.split(".")[0] in sections and not _is_code_path(k)}
    assert sorted(k for k in keys if not key_exists(k)) == []


def _command_lines(path: Path) -> Iterator[str]:
    """The text after each `dlforge ` in code spans, code blocks and example comments."""
    text = path.read_text()
    pieces = SPAN.findall(FENCE.sub("", text)) if path.suffix == ".md" else []
    pieces += [line for block in FENCE.findall(text) for line in block.splitlines()]
    if path.suffix != ".md":
        pieces += [line for line in text.splitlines() if line.lstrip().startswith("#")]
    else:
        pieces += [line for line in text.splitlines() if line.startswith("    ")]
    for piece in pieces:
        yield from invocations(piece)


def invocations(line: str) -> Iterator[str]:
    """The words after each `dlforge` command a line (or a code span) runs: the line is cut at
    a comment, `&&`, `||`, `|` and `;` first, so an option is checked against its own command."""
    for part in SEPARATOR.split(line.split(" # ")[0].replace("\\|", "|")):
        match = INVOCATION.search(part.strip())
        if match is not None:
            yield match.group(1)


def _resolve(root: Any, words: list[str]) -> tuple[list[Any], list[str]] | None:
    """The command(s) a line names (`train|run` names two) and the words after them (typer's
    click commands; a group has `commands`)."""
    words = _without_globals(words)
    group, commands = root, []
    while words:
        names = words[0].split("|")
        found = [group.commands[n] for n in names if n in group.commands]
        if not found:
            break
        commands, words = found, words[1:]
        if len(found) == 1 and hasattr(found[0], "commands"):
            group = found[0]
            continue
        break
    return (commands, words) if commands else None


def test_every_option_a_doc_shows_exists():
    from typer.main import get_command

    from dlforge.cli.app import app

    root = get_command(app)
    unknown = [f"{path.name}: {problem}" for path in DOCS + EXAMPLES
               for line in _command_lines(path) for problem in unknown_names(root, line)]
    assert sorted(set(unknown)) == []


def unknown_names(root: Any, line: str) -> list[str]:
    """What one invocation names that the CLI lacks: its command (a lowercase word that is
    none; a placeholder such as `COMMAND` is skipped), or options of the command."""
    resolved = _resolve(root, line.split())
    if resolved is None:
        first = _without_globals(line.split())[:1]
        return [f"dlforge {first[0]}: no such command"] if first and COMMAND.fullmatch(first[0]) else []
    commands, words = resolved
    return [f"dlforge {cmd.name} {option}"
            for option in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", " ".join(words))
            for cmd in commands
            if option not in {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}]


COMMAND = re.compile(r"[a-z][a-z0-9-]*(?:\|[a-z][a-z0-9-]*)*")


def _without_globals(words: list[str]) -> list[str]:
    """`words` after the global options (`-w WS`, `--debug`, ...)."""
    while words and words[0] in GLOBAL_OPTIONS:
        words = words[1 + GLOBAL_OPTIONS[words[0]]:]
    return words


PY_PATH = re.compile(r"(?<![\w/.-])((?:[a-z_0-9]+/)+[a-z_0-9]+\.py)\b")


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_every_source_file_a_doc_names_exists(path):
    named = set(PY_PATH.findall(path.read_text()))
    assert sorted(f for f in named if not (ROOT / f).exists() and not (ROOT / "src" / "dlforge" / f).exists()) == []


def test_the_checks_catch_what_they_look_for():
    assert key_exists("train.checkpoint.every_steps") and key_exists("model.parallel.stages")
    assert key_exists("train.schedule.warmup_steps") and key_exists("tune.space.train.lr")
    assert not key_exists("train.checkpoint.every_step") and not key_exists("model.stages")
    assert _is_code_path("data.streamed") and _is_code_path("review.json")
    assert _is_code_path("registry.load") and _is_code_path("data.splits.train")
    assert not _is_code_path("train.epochs") and not _is_code_path("augment.hflip")
    assert PY_PATH.findall("see data/loader.py, https://x.org/a/b.py and tests/e2e/t.py") == [
        "data/loader.py", "tests/e2e/t.py"]


def test_a_command_line_resolves_to_its_command():
    from typer.main import get_command

    from dlforge.cli.app import app

    root = get_command(app)
    commands, words = _resolve(root, "-w ws data shard C --out D".split())
    assert [c.name for c in commands] == ["shard"] and words == ["C", "--out", "D"]
    assert [c.name for c in _resolve(root, "train|run C --nproc 2".split())[0]] == ["train", "run"]
    assert _resolve(root, "is a platform".split()) is None


@pytest.mark.parametrize(("span", "key"), [
    ("train.epochs", "train.epochs"), ("train.epochs=3", "train.epochs"),
    ("train.lr = 0.1", "train.lr"), ("model.type: dcgan", "model.type"), ("train.muon:", "train.muon"),
    ("data.streamed.STREAM_ABOVE_BYTES, model.chain() and train.muon.*", None),
    ("see data.splits.train", None), ("train.lr * lr_scale", None), ("model.chain()", None)])
def test_only_a_span_that_is_wholly_a_key_names_one(span, key):
    whole = KEY.fullmatch(span)
    assert (whole.group(1) if whole else None) == key


@pytest.mark.parametrize(("line", "found"), [
    ("dlforge train C --nproc 2 && dlforge evaluate m --data C", ["train C --nproc 2", "evaluate m --data C"]),
    ("dlforge evaluate m --data C --json | jq --raw-output .name", ["evaluate m --data C --json"]),
    ("dlforge runs list; dlforge models list || true", ["runs list", "models list"]),
    ("dlforge train\\|run C --nproc 2", ["train|run C --nproc 2"]),
    (".venv/bin/dlforge run   # the default: digits", ["run"]),
    ("#   dlforge finetune F.yaml --from a@staging", ["finetune F.yaml --from a@staging"]),
    ('# "Pipeline model parallelism"):  dlforge train P.yaml --nproc 2', ["train P.yaml --nproc 2"]),
    ("DLFORGE_WORKSPACE=ws python -m dlforge runs list", ["runs list"]),
    ("# the literature's figures, not a dlforge measurement.", []),
    ("export DLFORGE_STORE_URL=postgresql+psycopg://u:p@db/dlforge   # or per shell", [])])
def test_each_dlforge_invocation_of_a_line_is_found_on_its_own(line, found):
    assert list(invocations(line)) == found


@pytest.mark.parametrize(("line", "problems"), [
    ("dlforge train C --nproc 2 && dlforge evaluate m --data C", []),
    ("dlforge evaluate m --data C --json | jq --raw-output .name", []),
    ("dlforge train C --nproc 2 --data C", ["dlforge train --data"]),
    ("dlforge train|run C --sweep", ["dlforge train --sweep", "dlforge run --sweep"]),
    ("dlforge modles list", ["dlforge modles: no such command"]),
    ("dlforge -w ws modles list", ["dlforge modles: no such command"]),
    ("dlforge COMMAND --help", [])])
def test_an_unknown_command_or_option_is_a_problem(line, problems):
    from typer.main import get_command

    from dlforge.cli.app import app

    root = get_command(app)
    assert [p for words in invocations(line) for p in unknown_names(root, words)] == problems
