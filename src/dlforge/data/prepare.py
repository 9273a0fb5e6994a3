"""Everything that happens to data before a model sees it, in order, for one run.

load -> select -> split -> validate -> balance (train only) -> preprocess (fit on train) -> loaders
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dlforge.config.schema import RunConfig
from dlforge.data.augment import build_augmenter
from dlforge.data.balance import Balanced, balance
from dlforge.data.dataset import Dataset, Splits, TaskSpec
from dlforge.data.loader import BatchLoader, Loaders, to_tensors
from dlforge.data.preprocess import Preprocessor, build_preprocessor
from dlforge.data.select import select
from dlforge.data.sources import load_dataset
from dlforge.data.split import split_dataset
from dlforge.data.validate import ValidationReport, validate
from dlforge.errors import ConfigError


@dataclass
class PreparedData:
    """The splits, the fitted preprocessing and ready-to-use loaders of one run."""

    dataset: Dataset
    splits: Splits
    validation: ValidationReport
    balanced: Balanced
    preprocessor: Preprocessor
    tensors: dict[str, tuple[torch.Tensor, torch.Tensor]]
    loaders: Loaders

    @property
    def task(self) -> TaskSpec:
        return self.dataset.task


def load_and_split(cfg: RunConfig) -> tuple[Dataset, Splits, ValidationReport]:
    """Load the configured source, select classes, split once and validate.

    Raises:
        DataError: the data cannot be used (one line per fatal problem).
    """
    dataset = select(load_dataset(cfg.data), cfg.data, cfg.seed)
    splits = split_dataset(dataset, cfg.data, cfg.seed)
    report = validate(dataset, splits, cfg.preprocess)
    return dataset, splits, report


def prepare_data(cfg: RunConfig) -> PreparedData:
    """Run every data stage for `cfg` and return loaders for training.

    Preprocessing is fitted on the training split as it came from the source (before any
    resampling, so duplicated minority samples do not skew the statistics), then applied
    unchanged to validation and test. Resampling and augmentation touch training data only.
    """
    return prepare_splits(cfg, *load_and_split(cfg))


def prepare_splits(cfg: RunConfig, dataset: Dataset, splits: Splits,
                   report: ValidationReport) -> PreparedData:
    """The stages after splitting (balance, preprocess fitted on `splits.train`, loaders), for
    splits made here or regrouped by a caller (e.g. train + validation to retrain on)."""
    balanced = balance(splits.train, cfg.balance, cfg.seed)
    pre = build_preprocessor(cfg.preprocess, dataset.modality).fit(splits.train.x)
    tensors = {
        "train": to_tensors(pre.transform(balanced.dataset.x), balanced.dataset.y, dataset.task),
        "val": to_tensors(pre.transform(splits.val.x), splits.val.y, dataset.task),
        "test": to_tensors(pre.transform(splits.test.x), splits.test.y, dataset.task),
    }
    loaders = make_loaders(cfg, dataset, tensors, balanced, pre)
    return PreparedData(dataset, splits, report, balanced, pre, tensors, loaders)


def background(preprocessor: Preprocessor, dataset: Dataset) -> torch.Tensor:
    """Per-channel value a black (raw 0) pixel has after preprocessing."""
    black = np.zeros((1, *dataset.sample_shape), dtype=dataset.x.dtype)
    return torch.as_tensor(preprocessor.transform(black)[0, :, 0, 0])


def make_loaders(cfg: RunConfig, dataset: Dataset, tensors: dict, balanced: Balanced,
                 preprocessor: Preprocessor) -> Loaders:
    """Batch iterators: shuffled, augmented (images) and optionally re-weighted for training."""
    if cfg.augment.enabled and dataset.modality != "image":
        raise ConfigError(f"augment: augmentation applies to images only; this data is "
                          f"{dataset.modality}. Remove the augment section.")
    augment = None
    if dataset.modality == "image":
        augment = build_augmenter(cfg.augment, fill=background(preprocessor, dataset))
    weights = None if balanced.sample_weights is None else torch.as_tensor(
        np.asarray(balanced.sample_weights), dtype=torch.float64)
    train = BatchLoader(*tensors["train"], batch_size=cfg.train.batch_size, shuffle=True,
                        seed=cfg.seed, augment=augment, sample_weights=weights)
    val = BatchLoader(*tensors["val"], batch_size=cfg.train.eval_batch_size)
    test = BatchLoader(*tensors["test"], batch_size=cfg.train.eval_batch_size)
    class_weights = None if balanced.class_weights is None else torch.as_tensor(
        np.asarray(balanced.class_weights), dtype=torch.float32)
    return Loaders(train=train, val=val, test=test, class_weights=class_weights)
