"""The shipped default config's warm-up, fitted to a run too short for it.

`dlforge run` without a config trains with a 20-step warm-up (configs/default.yaml); a short
run (`--set train.epochs=1`: 19 steps on digits) was refused, its warm-up not below the run's
steps. When that warm-up came from the default config (the user did not set
`train.schedule.warmup_steps`), the run takes a tenth of its steps instead, said in one `auto:`
line; a warm-up the user set is kept, and refused as before (train/schedules.py).
"""

from __future__ import annotations

import sys

from dlforge.config.auto import Choice
from dlforge.config.load import load_config
from dlforge.config.schema import RunConfig

WARMUP = "train.schedule.warmup_steps"
SHARE = 10  # the fitted warm-up: a tenth of the run's steps


def warmup_choice(cfg: RunConfig, steps_per_epoch: int, *, defaulted: bool) -> Choice | None:
    """The warm-up a run of `steps_per_epoch` batches an epoch takes instead of the default's,
    or None: the warm-up is shorter than the run, or the user set it (`defaulted` False).

    Example:
        >>> cfg = load_config({"train": {"epochs": 1, "schedule": {"type": "cosine", "warmup_steps": 20}}})
        >>> warmup_choice(cfg, 19, defaulted=True).line()
        "auto: train.schedule.warmup_steps = 1 (the default config's 20 warm-up steps are not below this run's 19 steps (train.epochs 1 x 19 batches): a tenth of them; --set train.schedule.warmup_steps=N chooses)"
        >>> warmup_choice(cfg, 19, defaulted=False) is None, warmup_choice(cfg, 21, defaulted=True)
        (True, None)
    """
    warmup, total = cfg.train.schedule.warmup_steps, cfg.train.epochs * steps_per_epoch
    if not defaulted or warmup < total:
        return None
    return Choice(WARMUP, total // SHARE,
                  f"the default config's {warmup} warm-up steps are not below this run's {total} "
                  f"steps (train.epochs {cfg.train.epochs} x {steps_per_epoch} batches): a tenth "
                  f"of them; --set {WARMUP}=N chooses")


def fit_warmup(cfg: RunConfig, steps_per_epoch: int, *, defaulted: bool,
               echo: bool = False) -> RunConfig:
    """`cfg` with `warmup_choice`'s warm-up (itself when there is none); `echo` prints its
    `auto:` line to stderr."""
    choice = warmup_choice(cfg, steps_per_epoch, defaulted=defaulted)
    if choice is None:
        return cfg
    if echo:
        print(choice.line(), file=sys.stderr)
    return load_config(cfg, [f"{WARMUP}={choice.value}"])
