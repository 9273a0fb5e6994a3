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


def test_the_reference_says_which_model_types_take_model_parallel():
    """docs/config.md lists `parallel` under every model type; under each type the rule
    refuses it for, the row says so, and that type's config with it is refused."""
    import re

    import pytest

    from dlforge.config import load_config
    from dlforge.config.parallel_schema import SPLITTABLE
    from dlforge.errors import ConfigError

    text = config_reference()
    rows = dict(re.findall(r"## `model \(type: (\w+)\)`.*?\n\| `parallel` \| [^|]+\| [^|]+\| ([^|]+) \|",
                           text, re.S))
    refused = sorted(kind for kind, about in rows.items() if about.startswith("Not for model type"))
    assert sorted(rows) == sorted([*refused, *SPLITTABLE]) and len(refused) == 8
    assert rows["mlp"].strip().endswith("only model types mlp, basic_cnn take it.")
    for kind in refused:
        with pytest.raises(ConfigError, match=rf"model\.parallel: splits a chain of layers \(mlp, "
                                              rf"basic_cnn\); model\.type '{kind}' is not one"):
            load_config({"model": {"type": kind, "parallel": {"stages": 2}}})


def test_the_in_python_snippets_images_are_the_builtin_loaders():
    # `(images * 255 / 16).astype("uint8")` rounded down; the builtin loader rounds (np.rint)
    import numpy as np

    from dlforge.config import load_config
    from dlforge.data.sources import builtin

    readme = (ROOT / "README.md").read_text().split("\nIn Python:\n", 1)[1]
    line = next(line for line in readme.splitlines() if line.startswith("images = "))
    scope: dict = {}
    exec("import numpy as np\nfrom sklearn.datasets import load_digits\n" + line.split("#")[0], scope)
    digits = builtin.load(load_config({"data": {"source": "builtin", "name": "digits"}}).data)
    assert scope["images"].dtype == np.uint8
    assert np.array_equal(scope["images"], digits.x[:4, 0])
