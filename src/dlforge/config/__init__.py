"""Run configuration: schema (the single source of option names) and loading."""

from dlforge.config.load import load_config
from dlforge.config.schema import RunConfig

__all__ = ["RunConfig", "load_config"]
