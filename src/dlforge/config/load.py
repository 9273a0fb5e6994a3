"""Read a run config from YAML or a dict, validate it once, and report every problem at once."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from dlforge.config.messages import format_validation_error, yaml_spelling
from dlforge.config.schema import RunConfig
from dlforge.errors import ConfigError, clipped

log = logging.getLogger(__name__)


def load_config(
    source: str | Path | dict[str, Any] | RunConfig | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> RunConfig:
    """Return the validated config for a YAML file, a dict, or the defaults.

    Args:
        source: path of a YAML file, a dict of the same shape, a RunConfig, or None for defaults.
        overrides: ``key.path=value`` strings applied on top (values parsed as YAML), as given
            to ``dlforge run --set train.epochs=2``.

    Returns:
        The resolved config, defaults filled in.

    Raises:
        ConfigError: one line per problem, ``<key>: <message> (got <value>)``; or the file
            cannot be read as a config (see `read_yaml`).

    Example:
        >>> load_config({"train": {"epochs": 2}}).train.epochs
        2
    """
    if isinstance(source, RunConfig):
        if not overrides:
            return source
        source = given_values(source)
    if isinstance(source, (str, Path)):
        raw = _paths_relative_to(read_yaml(source), Path(source).resolve().parent)
    else:
        raw = copy.deepcopy(source or {})
    _migrate(raw)
    for item in overrides:
        apply_override(raw, item)
    # what --set or a dict gave relative is relative to where dlforge runs: stored absolute,
    # so a resume, `dlforge evaluate` or a search worker started elsewhere reads the same file
    _paths_relative_to(raw, None)
    try:
        cfg = RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None
    if isinstance(source, (str, Path)) and Path(source).resolve() == default_config_path():
        cfg._from_defaults = frozenset(key for key in FITTED_DEFAULTS
                                       if not any(_sets(item, key) for item in overrides))
    return cfg


# the shipped default's values a run may fit to its data when the user did not set them
FITTED_DEFAULTS = ("train.schedule.warmup_steps",)


def from_defaults(cfg: RunConfig, key: str) -> bool:
    """True when `cfg`'s `key` is the shipped default config's (`dlforge run` without a
    config), not set by the user with --set; False for any config rebuilt from another.

    Example:
        >>> key = "train.schedule.warmup_steps"
        >>> from_defaults(load_config(default_config_path()), key)
        True
        >>> from_defaults(load_config(default_config_path(), [f"{key}=20"]), key)
        False
    """
    return key in cfg._from_defaults


def _sets(override: str, key: str) -> bool:
    """True when the ``a.b=value`` `override` sets `key` or a section holding it."""
    path = override.partition("=")[0].strip()
    return key == path or key.startswith(path + ".")


def given_values(section: BaseModel) -> dict[str, Any]:
    """`section` as JSON values of the fields it was given (``model_fields_set``), section by
    section, and each section's ``type`` (it chooses the section's class): a config rebuilt
    from it fills the rest with the defaults of its context again, as the first load did (a
    GAN's defaults once ``model.type=dcgan`` is set over a classifier's config).

    Example:
        >>> given_values(load_config({"model": {"type": "mlp"}, "train": {"epochs": 2}}))
        {'model': {'type': 'mlp'}, 'train': {'epochs': 2}}
    """
    return _given(section, section.model_dump(mode="json"))


def _given(value: Any, dumped: Any) -> Any:
    if not isinstance(value, BaseModel):
        return dumped
    names = value.model_fields_set | ({"type"} & set(type(value).model_fields))
    return {name: _given(getattr(value, name), dumped[name]) for name in type(value).model_fields
            if name in names and name in dumped}


def _migrate(raw: dict[str, Any]) -> None:
    """Rewrite keys of earlier dlforge versions in place, so stored run configs and old YAML
    files keep loading: `train.mixed_precision` (0.1.0; autocast on CUDA only) became
    `train.precision`: false -> fp32 (what such runs computed in), true -> auto."""
    train = raw.get("train")
    if isinstance(train, dict) and "mixed_precision" in train:
        mixed = train.pop("mixed_precision")
        train.setdefault("precision", "auto" if mixed else "fp32")


def default_config_path() -> Path:
    """The config `dlforge run` uses when given none: digits with a small CNN."""
    return Path(__file__).resolve().parents[1] / "configs" / "default.yaml"


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Set ``a.b.c=value`` in the nested dict `raw`; the value is parsed as YAML (``2``, ``[1, 2]``).

    Setting a section's ``type`` to another value (``model.type=mlp``) starts that section
    afresh, since the keys of the old type mean nothing to the new one.
    """
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set: expected KEY=VALUE such as train.epochs=2 (got {item!r})")
    *parents, leaf = key.strip().split(".")
    node = raw
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {key}: {part!r} is not a section (got {yaml_spelling(child)})")
        node = child
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        parsed = value
    check_expanded_size(parsed, f"--set {key.strip()}")
    if leaf == "type" and node.get("type", parsed) != parsed:
        node.clear()  # another model or schedule type: the old type's keys would be unknown keys
    node[leaf] = parsed


# A config is a few hundred values; aliases may repeat a section, never billions of values.
MAX_VALUES = 100_000

PATH_KEYS = ("path", "cache_dir", "exclude_file")  # the data section's keys naming files


def _paths_relative_to(raw: dict[str, Any], base: Path | None) -> dict[str, Any]:
    """Relative data paths in a file are relative to that file (`base`), wherever dlforge runs
    from; others (`base` None) to the working directory.

    A file's relative `data.exclude_file` was read from the working directory until it became
    relative to the file like `data.path`: where only the working directory has it, that one
    is kept, with a warning.

    Raises:
        ConfigError: a relative path, with `base` None, when the working directory is gone.
    """
    data = raw.get("data")
    if not isinstance(data, dict):
        return raw
    for key in PATH_KEYS:
        value = data.get(key)
        if isinstance(value, str) and value and not _expanded(key, value).is_absolute():
            data[key] = str(_resolved(key, value, base))
    return raw


def _expanded(key: str, value: str) -> Path:
    """`value` with a leading ``~`` or ``~user`` expanded; a user that does not exist is
    the config's error, not the loader's crash."""
    try:
        return Path(value).expanduser()
    except RuntimeError:
        raise ConfigError(f"data.{key}: {value!r} starts with ~user, and no such user's home "
                          f"directory is known; give the path without it") from None


def _resolved(key: str, value: str, base: Path | None) -> Path:
    try:
        cwd = Path.cwd()
    except FileNotFoundError:
        if base is not None:
            return base / value
        raise ConfigError(f"data.{key}: {value!r} is relative to the working directory, which "
                          f"no longer exists; give an absolute path") from None
    if base is None:
        return cwd / value
    if key == "exclude_file" and not (base / value).exists() and (cwd / value).exists():
        log.warning("data.exclude_file: %r is read from the working directory (%s), as before; "
                    "paths in a config file are relative to the file: write %r there to keep "
                    "this file", value, cwd, str(cwd / value))
        return cwd / value
    return base / value


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Parse a YAML mapping, turning I/O and syntax errors into one-line DlforgeErrors.

    Raises:
        ConfigError: the path does not exist, is a directory or cannot be read (no permission,
            a name too long for the file system), the file is not UTF-8, not
            YAML, empty, not a mapping, or repeats a key within one mapping.
    """
    path = Path(path)
    try:
        if path.is_dir():
            raise ConfigError(f"config file {str(path)!r} is a directory; give a YAML file")
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:  # a name too long for the file system, no permission to read
        raise ConfigError(f"config file {clipped(str(path), 120)!r} cannot be read "
                          f"({exc.strerror or type(exc).__name__}); check the path and its "
                          f"permissions") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                          f"{exc.start}); save the file as UTF-8") from None
    try:
        data = yaml.load(text, Loader=UniqueKeyLoader)
    except DuplicateKeyError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    check_expanded_size(data, str(path))
    if data is None:
        raise ConfigError(f"{path}: the file is empty (or only comments); give at least one "
                          f"section, or no config file to use the defaults")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections (got {type(data).__name__})")
    return data


def check_expanded_size(data: Any, where: str) -> None:
    """Refuse YAML whose aliases (``*name``) expand it past MAX_VALUES values, or refer to
    themselves: a dozen lines of aliases of aliases stand for billions of values, which every
    later step (validation, messages) would walk for minutes, and a self-reference for ever.
    Only what the aliases add counts: the values of a mapping or list reached the second time
    or later (through an alias), so a list the file writes out is as long as it likes, and
    one small alias elsewhere does not make the whole file count.

    Raises:
        ConfigError: one line naming `where` (the file, or ``--set KEY``).

    Example:
        >>> check_expanded_size(yaml.safe_load("a: &x [1, 2]\\nb: *x"), "c.yaml")
        >>> check_expanded_size(yaml.safe_load("a: &x [*x]"), "c.yaml")
        Traceback (most recent call last):
        ...
        dlforge.errors.ConfigError: c.yaml: its YAML aliases (*name) add more than 100,000 values once expanded, or an alias lies inside what it names; write the values out
    """
    stack: list[tuple[Any, bool]] = [(data, False)]
    seen: set[int] = set()
    added = 0
    while stack:
        node, again = stack.pop()
        if isinstance(node, dict | list):
            again = again or id(node) in seen
            seen.add(id(node))
        added += again
        if added > MAX_VALUES:
            raise ConfigError(f"{where}: its YAML aliases (*name) add more than {MAX_VALUES:,} "
                              f"values once expanded, or an alias lies inside what it names; "
                              f"write the values out")
        if isinstance(node, dict):
            stack += [(child, again) for child in (*node.keys(), *node.values())]
        elif isinstance(node, list):
            stack += [(child, again) for child in node]


class DuplicateKeyError(yaml.YAMLError):
    """A key given twice in one YAML mapping (PyYAML would silently keep the last)."""


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader, except that a key repeated within one mapping is an error.

    Keys brought in by a merge (``<<: *defaults``) may still be overridden, as YAML intends.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.setdefault(key, line)
            except TypeError:
                continue  # an unhashable key: SafeLoader reports it below
            if first != line:
                raise DuplicateKeyError(f"key {key!r} is given twice in the same mapping (lines "
                                        f"{first} and {line}); keep one")
        return super().construct_mapping(node, deep=deep)
