"""What every config section shares: unknown keys fail, and a loaded config is frozen."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

# A model name is also a directory name under artifacts/models/; registry/refs.py uses these too.
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
ALIAS_PATTERN = r"^[a-z][a-z0-9_-]*$"


class Section(BaseModel):
    """Base of every config section: unknown keys fail; frozen, so a config that loaded (and
    passed every cross-field rule) stays the config that runs. Derive a changed copy with
    `load_config(cfg, overrides)` or `tune.space.apply_params`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
