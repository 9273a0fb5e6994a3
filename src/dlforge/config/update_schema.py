"""The ``update`` config section: how `dlforge update` continues training a registered model
on fresh data mixed with a replay buffer of what it learned from before.

Every registered model keeps a replay buffer in its bundle (``replay.npz``): a class-balanced
reservoir sample of its preprocessed training split (a plain reservoir for regression and
multilabel tasks), at most `replay_size` samples. An update trains on the fresh training
split plus replayed samples, `replay_ratio` of the mix, at a low learning rate.
"""

from __future__ import annotations

from pydantic import Field

from dlforge.config.base import Section


class WatchConfig(Section):
    """`dlforge update --watch DIR`: how new files are folded in."""

    batch_size: int = Field(200, ge=2, description="Most files folded in by one update (one candidate through the gate).")
    poll_seconds: float = Field(5.0, gt=0, description="How often the directory is looked at for new files.")
    min_files: int = Field(20, ge=1, description="Fewest new files that make a batch (fewer wait for more).")


class UpdateConfig(Section):
    """Online updates of a registered model (`dlforge update NAME@ALIAS --data ...`).

    The default LR is a tenth of the source's: the model starts at a trained optimum, and a
    full-size step on a few fresh samples would move it far from what it knew (forgetting),
    while a tenth still adapts within a few epochs (the usual fine-tuning range, 0.1 to 0.01).
    """

    source: str | None = Field(
        None, description="NAME@VERSION being updated (set by `dlforge update`, pinned to the version).")
    replay_ratio: float = Field(
        0.5, ge=0, lt=1, description="Share of replayed old samples in the update's training mix (0: no replay).")
    replay_size: int = Field(
        1000, ge=0, description="Samples in the replay buffer a registered model keeps in its bundle (0: none).")
    lr: float | None = Field(None, gt=0, description="The update's learning rate; default the source's train.lr * lr_mult.")
    lr_mult: float = Field(0.1, gt=0, le=1, description="Without update.lr: the source's train.lr times this.")
    max_forgetting: float | None = Field(
        0.02, ge=0, le=1, description="Gate: refuse an update whose accuracy (r2 for regression) on "
        "the original model's test split is more than this below its parent's or below the "
        "original model's (both re-scored on the same rows, so a chain of updates cannot drift "
        "away); null: report only.")
    watch: WatchConfig = Field(default_factory=WatchConfig, description="--watch DIR: batches of new files.")
