"""Regenerate docs/config.md from the config schema."""

from pathlib import Path

from dlforge.config.reference import config_reference

target = Path(__file__).resolve().parents[1] / "docs" / "config.md"
target.write_text(config_reference() + "\n")
print(f"wrote {target}")
