"""Model references (``name``, ``name@3``, ``name@production``, ``name@latest``) and name rules."""

from __future__ import annotations

import re

from dlforge.config.schema import ALIAS_PATTERN, MODEL_NAME_PATTERN
from dlforge.errors import ConfigError

# Same rules as the config's `name` and `registry.alias`.
MODEL_NAME = re.compile(MODEL_NAME_PATTERN)
ALIAS_NAME = re.compile(ALIAS_PATTERN)
LATEST = "latest"


def check_model_name(name: str) -> str:
    """Return `name` if it is a valid model name.

    Raises:
        ConfigError: the name could not be a directory name safely.
    """
    if not isinstance(name, str) or not MODEL_NAME.match(name):
        raise ConfigError(
            f"model name: must match {MODEL_NAME.pattern} such as 'digits' or 'fashion-cnn' "
            f"(got {name!r})"
        )
    return name


def check_alias(alias: str) -> str:
    """Return `alias` if it can be set: lower-case, not a number, not the reserved 'latest'.

    Raises:
        ConfigError: naming the alias received and the rule.
    """
    if isinstance(alias, str) and alias.isdigit():
        raise ConfigError(
            f"alias: {alias!r} looks like a version number; an alias must match "
            f"{ALIAS_NAME.pattern} such as production or staging"
        )
    if alias == LATEST:
        raise ConfigError(
            "alias: 'latest' is reserved (it always means the newest version); choose another name"
        )
    if not isinstance(alias, str) or not ALIAS_NAME.match(alias):
        raise ConfigError(
            f"alias: must match {ALIAS_NAME.pattern} such as production or staging (got {alias!r})"
        )
    return alias


def parse_selector(selector: int | str) -> int | str:
    """A version number for ``3``/``"3"``, else the alias (or 'latest') as given."""
    if isinstance(selector, bool):
        raise ConfigError(f"version: expected a number or an alias (got {selector!r})")
    if isinstance(selector, int):
        return selector
    text = str(selector).strip()
    if text.isdigit():
        return int(text)
    if not text:
        raise ConfigError("version: expected a number, an alias or 'latest' (got '')")
    return text


def parse_ref(ref: str) -> tuple[str, int | str]:
    """Split a model reference into (name, version number or alias).

    Raises:
        ConfigError: nothing after the '@', more than one '@', or an invalid model name.

    Example:
        >>> parse_ref("digits@3"), parse_ref("digits"), parse_ref("digits@production")
        (('digits', 3), ('digits', 'latest'), ('digits', 'production'))
    """
    name, sep, selector = str(ref).strip().partition("@")
    if "@" in selector:
        raise ConfigError(
            f"model reference: more than one '@' in {ref!r}; use name, name@3, "
            "name@production or name@latest"
        )
    if sep and not selector:
        raise ConfigError(
            f"model reference: nothing after '@' in {ref!r}; use name, name@3, "
            "name@production or name@latest"
        )
    check_model_name(name)
    return name, parse_selector(selector) if sep else LATEST
