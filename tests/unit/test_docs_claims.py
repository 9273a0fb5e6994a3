"""What the docs and examples name exists: every config key in a code span or a `--set`, and
every option of a `dlforge` command line they show."""

from __future__ import annotations

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
KEY = re.compile(r"(?<![\w./-])([a-z_]+(?:\.[a-z_0-9]+)+)(?![\w(]|\.\w)")
SET = re.compile(r"--set\s+([a-z_]+(?:\.[a-z_0-9]+)+)=")
FILE_SUFFIXES = {"json", "pt", "onnx", "csv", "npz", "npy", "png", "yaml", "txt", "db", "py", "md",
                 "html", "gz", "safetensors", "tmp"}
GLOBAL_OPTIONS = {"-w": True, "--workspace": True, "--store-url": True, "--debug": False}


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
    """A module or file name that looks like a key: `data.streamed`, `review.json`."""
    parts = key.split(".")
    if parts[-1] in FILE_SUFFIXES:
        return True
    base = ROOT / "src" / "dlforge" / parts[0] / parts[1]
    return base.with_suffix(".py").exists() or base.is_dir()


def named_keys(path: Path) -> Iterator[str]:
    text = path.read_text()
    if path.suffix == ".md":
        for span in SPAN.findall(FENCE.sub("", text)):
            yield from KEY.findall(span)
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
        for match in re.finditer(r"(?:^|[\s/])dlforge (.*)", piece.split(" # ")[0]):
            yield match.group(1).replace("\\|", "|")


def _resolve(root: Any, words: list[str]) -> tuple[list[Any], list[str]] | None:
    """The command(s) a line names (`train|run` names two) and the words after them (typer's
    click commands; a group has `commands`)."""
    while words and words[0] in GLOBAL_OPTIONS:
        words = words[1 + GLOBAL_OPTIONS[words[0]]:]
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
    unknown = []
    for path in DOCS + EXAMPLES:
        for line in _command_lines(path):
            resolved = _resolve(root, line.split())
            if resolved is None:
                continue
            commands, words = resolved
            for option in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", " ".join(words)):
                for cmd in commands:
                    names = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
                    if option not in names | {"--help"}:
                        unknown.append(f"{path.name}: dlforge {cmd.name} {option}")
    assert sorted(set(unknown)) == []


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
    assert KEY.findall("data.streamed.STREAM_ABOVE_BYTES, model.chain() and train.muon.*") == [
        "train.muon"]
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
