"""A study's name: the config's name and a hash of the values it sets that shape the search.

`dlforge tune --worker` processes given the same config compute the same name and so join one
study, and a search started again after a kill continues it. Only values that differ from
their defaults count, so a release that adds a key with a default keeps every study's name.
`data.path` counts by the data's fingerprint (its files' contents), not by where the data
is, so workers with the project checked out in different folders join one study.

Earlier names (`earlier_study_names`), which `tune.study.open_study` still continues: the
hash of `data.path` itself (until this version), and before that a hash of every key,
defaults included (`legacy_study_name`), which each new key renamed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from dlforge.config.load import PATH_KEYS
from dlforge.config.schema import RunConfig
from dlforge.data.sources.download import sha256_file
from dlforge.tune.legacy_study_fields import LEGACY_FIELDS

# Keys that say where a search runs or how much of it, not what it searches: a bigger budget
# continues the study, and workers with another device, cache or thread count join it.
NOT_SHAPING = {"registry": (), "serve": (), "device": (),
               "tune": ("storage", "n_trials", "timeout_s"), "data": ("cache_dir", "workers"),
               "train": ("num_threads",)}
# What the legacy name left out: the registry, serving, and the budget and storage.
LEGACY_NOT_SHAPING = {"registry": (), "serve": (), "tune": ("storage", "n_trials", "timeout_s")}


def study_name(cfg: RunConfig, data_fingerprint: str | None = None) -> str:
    """`<name>-<hash>` of the values `cfg` sets (those that differ from their defaults), the
    keys of `NOT_SHAPING` aside, so that raising `tune.n_trials` continues the study. Give it
    the config with `auto` resolved (`config.auto.resolve_auto`), as the search does: the
    data's choices then count as set, and every process computes them alike.

    Args:
        cfg: the run config.
        data_fingerprint: the loaded data's `Provenance.fingerprint`; when given, it stands
            for `data.path` (which names a place on one machine) in the hash, and the
            checksum of the ids `data.exclude_file` lists for that file's path.

    Example:
        >>> from dlforge.config import load_config
        >>> space = {"train.lr": {"choice": [0.1, 0.01]}}
        >>> a = load_config({"name": "digits", "tune": {"space": space, "n_trials": 5}})
        >>> b = load_config({"name": "digits", "tune": {"space": space, "n_trials": 9}})
        >>> study_name(a) == study_name(b), study_name(a).startswith("digits-")
        (True, True)
        >>> c = load_config({"data": {"source": "csv", "path": "/here/a.csv"}})
        >>> d = load_config({"data": {"source": "csv", "path": "/there/a.csv"}})
        >>> study_name(c, "f1") == study_name(d, "f1") != study_name(d, "f2")
        True
    """
    shaped = _without(non_default_values(cfg), NOT_SHAPING)
    data = shaped.get("data", {})
    if data_fingerprint is not None and "path" in data:
        data["path"] = f"fingerprint {data_fingerprint}"
        if "exclude_file" in data:
            data["exclude_file"] = _contents(data["exclude_file"])
    return _hashed(cfg.name, shaped)


def _contents(path: str) -> str:
    """`sha256 <hex>` of the file at `path`; `path` itself when it cannot be read (the data
    loader then names the problem)."""
    try:
        return f"sha256 {sha256_file(path)}"
    except OSError:
        return path


def earlier_study_names(cfg: RunConfig, data_fingerprint: str | None) -> list[tuple[str, str]]:
    """The names earlier dlforge versions gave the study of `cfg`, newest first, each with
    how it was made; those equal to `study_name(cfg, data_fingerprint)` left out.

    Example:
        >>> from dlforge.config import load_config
        >>> cfg = load_config({"data": {"source": "csv", "path": "/here/a.csv"}})
        >>> [how for _, how in earlier_study_names(cfg, "f1")]
        ['a hash of data.path, not of the data', 'a hash of every config key']
    """
    current = study_name(cfg, data_fingerprint)
    names = []
    for spelled in (cfg, _as_given_relative(cfg)):  # --set data.path=t.csv was kept as given
        names += [(study_name(spelled), "a hash of data.path, not of the data"),
                  (legacy_study_name(spelled), "a hash of every config key")]
    found: list[tuple[str, str]] = []
    for name, how in names:
        if name is not None and name != current and name not in (n for n, _ in found):
            found.append((name, how))
    return found


def _as_given_relative(cfg: RunConfig) -> RunConfig:
    """`cfg` with its data paths below the working directory relative to it, as dlforge kept
    the paths given with --set or a dict until it stored them absolute."""
    try:
        cwd = Path.cwd()
    except FileNotFoundError:
        return cfg
    update = {}
    for key in PATH_KEYS:
        value = getattr(cfg.data, key)
        if value and Path(value).is_absolute() and Path(value).is_relative_to(cwd):
            update[key] = Path(value).relative_to(cwd).as_posix()
    return cfg.model_copy(update={"data": cfg.data.model_copy(update=update)}) if update else cfg


def legacy_study_name(cfg: RunConfig) -> str | None:
    """The name dlforge gave the study of `cfg` until `study_name` hashed only the values a
    config sets: a hash of every key of that version's schema (`LEGACY_FIELDS`), defaults
    included, registry, serve, budget and storage aside. None when `cfg` sets a key (or
    chooses a variant) that version did not have: no study of it can have such a name.

    Example:
        >>> from dlforge.config import load_config
        >>> legacy_study_name(load_config({"name": "digits"})) != study_name(load_config({"name": "digits"}))
        True
    """
    try:
        shaped = _every_value(cfg)
    except _NewerKey:
        return None
    return _hashed(cfg.name, _without(shaped, LEGACY_NOT_SHAPING))


def non_default_values(section: BaseModel) -> dict[str, Any]:
    """The fields of `section` whose values differ from their defaults, as JSON values;
    sections within it likewise, and always their `type` (which variant a key chose).

    Example:
        >>> from dlforge.config import load_config
        >>> non_default_values(load_config({"model": {"type": "mlp", "dropout": 0.2}}))
        {'model': {'type': 'mlp', 'dropout': 0.2}}
    """
    return {name: _jsonable(getattr(section, name), non_default_values)
            for name, field in type(section).model_fields.items()
            if name == "type" or getattr(section, name) != _default(field)}


class _NewerKey(Exception):
    """A config value the legacy schema could not hold."""


def _every_value(section: BaseModel) -> dict[str, Any]:
    """`section.model_dump(mode="json")` restricted to the fields of `LEGACY_FIELDS`.

    Raises:
        _NewerKey: a section class that version lacked, or a newer field not at its default.
    """
    known = next((LEGACY_FIELDS[c.__name__] for c in type(section).__mro__
                  if c.__name__ in LEGACY_FIELDS), None)
    if known is None:
        raise _NewerKey(type(section).__name__)
    out = {}
    for name, field in type(section).model_fields.items():
        value = getattr(section, name)
        if name in known:
            out[name] = _jsonable(value, _every_value)
        elif value != _default(field):
            raise _NewerKey(name)
    return out


def _jsonable(value: Any, sections: Any) -> Any:
    """`value` as JSON, with `sections` turning each config section in it into a dict."""
    if isinstance(value, BaseModel):
        return sections(value)
    if isinstance(value, dict):
        return {key: _jsonable(item, sections) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item, sections) for item in value]
    return to_jsonable_python(value)


def _default(field: Any) -> Any:
    return field.get_default(call_default_factory=True)


def _without(shaped: dict[str, Any], keys: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """`shaped` without whole sections (empty tuples) or some keys of a section, and without a
    section those keys leave empty."""
    for section, names in keys.items():
        if isinstance(shaped.get(section), dict) and names:
            for name in names:
                shaped[section].pop(name, None)
        if not names or shaped.get(section) == {}:
            shaped.pop(section, None)
    return shaped


def _hashed(name: str, shaped: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(shaped, sort_keys=True).encode()).hexdigest()[:10]
    return f"{name}-{digest}"
