"""Config section `train.ema`: an exponential moving average of the weights (train/ema.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dlforge.config.base import Section


class EmaConfig(Section):
    """Validation, test and the registered model use the average, not the last step's weights.

    Checkpoints keep both: the training weights under `model` (what training resumes from) and
    the average under `ema`; a checkpoint's rank (`train.checkpoint.monitor`) is the average's
    validation score, so load `ema` to get the weights that earned it.
    """

    decay: float = Field(
        0.99, gt=0, lt=1, description="Weight of the old average at each update: average = "
        "decay * average + (1 - decay) * weights; early updates use min(decay, (1 + n) / "
        "(10 + n)) after n updates, so the start is not biased to the initial weights.")
    every: int = Field(1, ge=1, description="Update the average every this many optimizer steps.")
    mode: Literal["ema", "lookahead"] = Field(
        "ema", description="ema: the average follows the weights; lookahead (airbench): at each "
        "update the decay is decay * (step / total steps) ** 3 and the weights are reset to the "
        "average, so training continues from it.")
