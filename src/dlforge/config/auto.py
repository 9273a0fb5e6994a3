"""`model: auto` and `train.epochs: auto`: the choices a config leaves to its data.

The pipeline prepares the data, then calls `resolve_auto` with the data's facts (modality,
one sample's shape, training-set size) BEFORE the run is recorded: the run stores the
resolved config, so it is reproducible from its record, and search trials and resume see the
same choices. Each choice comes with the reason it was made (`Choice.line`), printed by the
pipeline. The rules need only these numbers:

- model, by modality (the family) and training-set size n (the width: small below `SMALL`
  = 2,000 samples, large from `LARGE` = 20,000, medium between):
  - image (C, H, W) with a side of at least 4 px: `basic_cnn`, 2 [conv-conv-pool] blocks
    (filters 32, 64) below 32 px, 3 (32, 64, 128) from 32 px, so the last block still sees
    at least 2x2; dense 128 / 256 / 512 by size, and when small the light dropout of the
    shipped digits default (0.1 per block, 0.3 before the head); colour (3 channels) adds
    batch normalization. Images with a side over `CNN_MAX_SIDE` (64 px) are average-pooled
    first by ceil(side / 64) (`model.downscale`: 128 px -> 64, 300 px -> 60); when the shorter
    side is then at least `STEM_SIDE` (48 px) the first convolution has stride 2
    (`model.stem_stride`), so the convolutions after it see at most 32 px: a 128x128 image
    costs about as much per sample as a 32x32 one (the convolutions at 64 px took 65 % of a
    step; benchmarks/RESULTS.md). The block count follows the side after the stem. Smaller
    images -> `mlp` as for tables.
  - table: `mlp`, hidden [64, 32] / [128, 64] / [256, 128], dropout 0.1 when small.
  - text: `text_cnn` with its defaults (Kim 2014: 1-D convolutions of widths 3, 4 and 5 over
    64-dim word embeddings, 64 filters each, max over time, dropout 0.5): it sees word pairs
    and triples, which embedding + average pooling (`text_pool`) cannot; on SMS spam over 3
    seeds it matched the TF-IDF + logistic-regression baseline, and its worst seed was better
    than `text_pool`'s (benchmarks/RESULTS.md).
- augmentation (`augment.preset`): `auto` -> `shifts` for images when no augment op is given
  (a config that names its ops chose its augmentation: `none`), `none` for tables and texts
  (augmentation applies to images only), and `none` for a GAN (`model.type: dcgan`): it learns
  the distribution of its training images, and shifting only the real ones teaches the
  generator the shifts (augmentations "leak", Karras et al. 2020). `shifts` fills in
  `augment.crop` with a padding of max(1, round(side / `SHIFT_DIVISOR`)) px (28: 1 px on 8 to
  42 px, 5 px on 128 px) for half the images (`SHIFT_P`): a small translation keeps the class of any image. Measured against
  no augmentation (benchmarks/RESULTS.md): even with these light shifts test accuracy was the
  same within the noise on digits and Fashion-MNIST (2-3 seeds), while 2 px on every image cost
  Fashion-MNIST 1-3 points at the default budget; so the default is light and buys no accuracy
  at these sizes. `natural` adds `augment.hflip` (p 0.5) for photos whose mirror image keeps
  its class; `auto` never picks it, because a mirrored digit, letter or scan of text changes
  meaning. Ops given in the config are kept; a preset fills in only the others.
- epochs: enough passes for `TARGET_STEPS` (3,000) optimizer steps, between `MIN_EPOCHS` (10)
  and `MAX_EPOCHS` (100); early stopping (on by default) ends the run when its monitor
  (val_loss; a GAN's val_frechet) stops improving, and `train.time_budget_s`, when unset, becomes `BUDGET_PER_SAMPLE` (0.02 s) per
  training sample, between 120 s and 3,600 s. A time budget makes how many epochs run depend
  on the machine's speed; set `train.epochs` for runs that must repeat exactly.
- warm-up (config/auto_warmup.py): the shipped default config's 20 warm-up steps, when the
  user did not set `train.schedule.warmup_steps` and the run has no more steps than that
  (`dlforge run --set train.epochs=1`), become a tenth of the run's steps; a warm-up the user
  set is kept (and refused when not below the run's steps).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any

from dlforge.config.load import load_config
from dlforge.config.model_schema import GAN_TYPE
from dlforge.config.schema import RunConfig
from dlforge.errors import ConfigError

GAN_WHY = ("a GAN learns the distribution of its training images: shifting the real images "
           "would teach the generator the shifts")
SMALL, LARGE = 2_000, 20_000
TARGET_STEPS, MIN_EPOCHS, MAX_EPOCHS = 3_000, 10, 100
BUDGET_PER_SAMPLE, MIN_BUDGET_S, MAX_BUDGET_S = 0.02, 120.0, 3_600.0
CNN_FILTERS = (32, 64, 128)
CNN_MAX_SIDE = 64  # larger images are average-pooled down to this side first
STEM_SIDE = 48  # from this side (after pooling) the first convolution has stride 2
SHIFT_DIVISOR = 28  # `shifts` moves half the images by up to side / 28 px (1 px on 28 px)
SHIFT_P = 0.5
PRESET_OPS = {"shifts": ("crop",), "natural": ("crop", "hflip")}


@dataclass(frozen=True)
class DataFacts:
    """What the `auto` rules look at: the prepared data's modality ("image", "table",
    "text"), one preprocessed sample's shape ((C, H, W) for images) and the training-set size."""

    modality: str
    input_shape: tuple[int, ...]
    train_samples: int


@dataclass(frozen=True)
class Choice:
    """One `auto` decision: the config key, the value chosen, and why."""

    key: str
    value: Any
    why: str

    def line(self) -> str:
        return f"auto: {self.key} = {self.value} ({self.why})"


def auto_choices(cfg: RunConfig, facts: DataFacts) -> list[Choice]:
    """The choices `resolve_auto` makes for `cfg` on data with `facts`; empty when `cfg`
    leaves nothing to the data.

    Example:
        >>> cfg = load_config({"model": "auto", "train": {"epochs": 5}, "augment": {"preset": "none"}})
        >>> [c.line() for c in auto_choices(cfg, DataFacts("table", (30,), 398))]
        ["auto: model = {'type': 'mlp', 'hidden': [64, 32], 'dropout': 0.1} (table data -> an MLP; 398 training samples (< 2000) -> small widths, light dropout)"]
    """
    choices = []
    if cfg.model.type == "auto":
        choices.append(_model_choice(facts))
    if cfg.train.epochs == "auto":
        choices += _epoch_choices(cfg, facts)
    augment = _augment_choice(cfg, facts)
    return choices + ([augment] if augment else [])


def resolve_auto(cfg: RunConfig, facts: DataFacts, *, echo: bool = False) -> RunConfig:
    """`cfg` with every `auto` filled in for data with `facts` (itself when none is left).

    Args:
        cfg: a loaded config.
        facts: the prepared data's facts (`PreparedData.facts`).
        echo: print one line per choice, with its reason, to stderr.

    Returns:
        A new frozen config; every rule of the schema is checked again.

    Raises:
        ConfigError: the filled-in config breaks a rule (e.g. a tune.space key the chosen model
            does not have).

    Example:
        >>> cfg = resolve_auto(load_config({}), DataFacts("image", (1, 8, 8), 1078))
        >>> cfg.model.type, cfg.model.filters, cfg.train.epochs, cfg.train.time_budget_s
        ('basic_cnn', [32, 64], 100, 120.0)
    """
    choices = auto_choices(cfg, facts)
    if not choices:
        return cfg
    raw = cfg.model_dump(mode="json")
    for choice in choices:
        section, _, key = choice.key.partition(".")
        if key:
            raw[section][key] = choice.value
        else:
            raw[section] = choice.value
    if echo:
        for choice in choices:
            print(choice.line(), file=sys.stderr)
    return load_config(raw)


def _model_choice(facts: DataFacts) -> Choice:
    n = facts.train_samples
    size = "small" if n < SMALL else "medium" if n < LARGE else "large"
    bound = {"small": f"< {SMALL}", "medium": f"< {LARGE}", "large": f">= {LARGE}"}[size]
    why_size = f"{n} training samples ({bound}) -> {size} widths"
    light = {"dropout": 0.1} if size == "small" else {}
    if facts.modality == "text":
        return Choice("model", {"type": "text_cnn"},
                      "text -> 1-D convolutions of widths 3, 4, 5 over word embeddings (bigrams "
                      "and longer phrases; matched the TF-IDF baseline on SMS spam, "
                      "benchmarks/RESULTS.md)")
    if facts.modality == "image" and min(facts.input_shape[1:]) >= 4:
        return Choice("model", _cnn(facts, size), _cnn_why(facts, why_size))
    hidden = {"small": [64, 32], "medium": [128, 64], "large": [256, 128]}[size]
    what = "table data" if facts.modality == "table" else "images under 4 px"
    reg = ", light dropout" if light else ""
    return Choice("model", {"type": "mlp", "hidden": hidden, **light},
                  f"{what} -> an MLP; {why_size}{reg}")


def _cnn_geometry(facts: DataFacts) -> tuple[int, int, int]:
    """(downscale, stem stride, conv blocks) for images of `facts.input_shape`."""
    _, height, width = facts.input_shape
    downscale = math.ceil(max(height, width) / CNN_MAX_SIDE)
    side = min(height, width) // downscale
    stem = 2 if side >= STEM_SIDE else 1
    return downscale, stem, 2 if math.ceil(side / stem) < 32 else 3


def _cnn(facts: DataFacts, size: str) -> dict[str, Any]:
    downscale, stem, blocks = _cnn_geometry(facts)
    model: dict[str, Any] = {"type": "basic_cnn", "filters": list(CNN_FILTERS[:blocks]),
                             "dense": {"small": 128, "medium": 256, "large": 512}[size]}
    if downscale > 1:
        model["downscale"] = downscale
    if stem > 1:
        model["stem_stride"] = stem
    if size == "small":
        model |= {"dropout": 0.1, "dense_dropout": 0.3}
    if facts.input_shape[0] >= 3:
        model["batch_norm"] = True
    return model


def _cnn_why(facts: DataFacts, why_size: str) -> str:
    channels, height, width = facts.input_shape
    downscale, stem, blocks = _cnn_geometry(facts)
    pooled = (f", average-pooled by {downscale} first (sides over {CNN_MAX_SIDE} px)"
              if downscale > 1 else "")
    stem_why = f", a stride-2 first convolution (side >= {STEM_SIDE} px)" if stem > 1 else ""
    depth = "2 conv blocks (side < 32 px)" if blocks == 2 else "3 conv blocks (side >= 32 px)"
    colour = "; colour -> batch normalization" if channels >= 3 else ""
    return (f"{channels}x{height}x{width} images -> a CNN with {depth}{pooled}{stem_why}{colour}; "
            f"{why_size}")


def _epoch_choices(cfg: RunConfig, facts: DataFacts) -> list[Choice]:
    steps = math.ceil(facts.train_samples / cfg.train.batch_size)
    epochs = min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(TARGET_STEPS / steps)))
    stopping = f"early stopping on {cfg.train.early_stopping.monitor} ends it sooner" \
        if cfg.train.early_stopping else \
        "early stopping is off (train.early_stopping: false)"
    choices = [Choice("train.epochs", epochs,
                      f"{steps} steps per epoch -> about {TARGET_STEPS} steps, within "
                      f"[{MIN_EPOCHS}, {MAX_EPOCHS}] epochs; {stopping}")]
    if cfg.train.time_budget_s is None:
        budget = min(MAX_BUDGET_S, max(MIN_BUDGET_S, BUDGET_PER_SAMPLE * facts.train_samples))
        choices.append(Choice("train.time_budget_s", round(budget, 1),
                              f"{BUDGET_PER_SAMPLE} s per training sample, within "
                              f"[{MIN_BUDGET_S:g}, {MAX_BUDGET_S:g}] s"))
    return choices


def _augment_choice(cfg: RunConfig, facts: DataFacts) -> Choice | None:
    """`augment.preset` resolved: `auto` to a named preset, a named preset's ops filled in."""
    aug, preset = cfg.augment, cfg.augment.preset
    if facts.modality != "image":
        if preset in PRESET_OPS:
            raise ConfigError(f"augment.preset: {preset} applies to images only; this data is "
                              f"{facts.modality} (got {preset}). Use augment.preset: none")
        return Choice("augment.preset", "none", f"{facts.modality} data: augmentation applies "
                      f"to images only") if preset == "auto" else None
    if preset == "auto" and cfg.model.type == GAN_TYPE and not aug.enabled:
        return Choice("augment.preset", "none", GAN_WHY)
    why = ""
    if preset == "auto":
        preset = "none" if aug.enabled else "shifts"
        why = ("augment ops given in the config -> only those" if aug.enabled else
               "images -> small random shifts, safe for any images; no flips (a mirrored "
               "digit or letter changes meaning: augment.preset: natural adds them for photos)")
    side = min(facts.input_shape[1:])
    ops = {"crop": {"padding": max(1, round(side / SHIFT_DIVISOR)), "p": SHIFT_P},
           "hflip": {"p": 0.5}}
    missing = {op: ops[op] for op in PRESET_OPS.get(preset, ()) if getattr(aug, op) is None}
    if not missing and preset == aug.preset:
        return None
    value = aug.model_dump(mode="json", exclude_none=True) | {"preset": preset, **missing}
    if "crop" in missing:
        why += f"{'; ' if why else ''}shifts of up to {ops['crop']['padding']} px on {side} px"
    return Choice("augment", value, why or f"the ops of augment.preset: {preset}")
