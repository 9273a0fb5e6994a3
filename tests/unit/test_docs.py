"""Docs that are generated or promised stay in step with the code."""

from __future__ import annotations

from pathlib import Path

from dlforge.config.reference import config_reference

ROOT = Path(__file__).resolve().parents[2]


def test_config_reference_is_up_to_date():
    assert (ROOT / "docs" / "config.md").read_text() == config_reference() + "\n", (
        "docs/config.md is stale: run `python scripts/gen_config_docs.py`")


def test_readme_starts_with_the_two_commands():
    head = (ROOT / "README.md").read_text().split("## ")[0]
    assert "make demo" in head and "make test" in head


def test_every_cli_command_is_in_the_readme():
    from typer.main import get_command

    from dlforge.cli.app import app

    readme = (ROOT / "README.md").read_text()
    root = get_command(app)
    names = []
    for name, cmd in root.commands.items():
        subs = getattr(cmd, "commands", None)
        names += [f"dlforge {name} {sub}" for sub in subs] if subs else [f"dlforge {name}"]
    missing = [n for n in names if f"`{n}" not in readme]
    assert missing == []


def test_a_union_of_sections_is_typed_once():
    lines = config_reference().splitlines()
    assert any(line.startswith("| `model` | section | (section) |") for line in lines)
    assert not [line for line in lines if "section or section" in line]
