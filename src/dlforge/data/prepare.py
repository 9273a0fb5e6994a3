"""Everything that happens to data before a model sees it, in order, for one run.

load -> select -> split -> validate -> balance (train only) -> preprocess (fit on train) -> loaders
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from dlforge.config.auto import DataFacts
from dlforge.config.schema import RunConfig
from dlforge.data.anomaly import normal_only
from dlforge.data.augment import build_augmenter
from dlforge.data.balance import Balanced, balance
from dlforge.data.curate import curate
from dlforge.data.dataset import Dataset, Splits, TaskSpec
from dlforge.data.loader import BatchLoader, Loaders, to_tensors
from dlforge.data.preprocess import Preprocessor, build_preprocessor
from dlforge.data.select import select
from dlforge.data.sources import load_dataset
from dlforge.data.split import split_dataset
from dlforge.data.streamed import TrainStream, open_stream, stream_splits, streams
from dlforge.data.validate import ValidationReport, validate
from dlforge.errors import ConfigError


@dataclass(frozen=True)
class PreparedData:
    """The splits and the preprocessing fitted on the training split, as tensors.

    Ask it for what a stage needs: `loaders_for(cfg)` (batch iterators for one config: its
    batch sizes, augmentation and seed), `task`, `input_shape`, `vocab_size`, `inputs(split)`.
    `has_validation` is False after `joined_for_retraining`, whose validation samples are
    training samples. With `stream` (`data.streaming`), the training batches are read from
    shards on disk and `inputs("train")`, `splits.train` and `training_samples()` hold the
    `streamed.SAMPLE_ROWS` training samples, evenly spaced over the split (data/streamed.py).
    """

    dataset: Dataset
    splits: Splits
    validation: ValidationReport
    balanced: Balanced
    preprocessor: Preprocessor
    tensors: dict[str, tuple[torch.Tensor, torch.Tensor]]
    has_validation: bool = True
    stream: TrainStream | None = None

    @property
    def task(self) -> TaskSpec:
        return self.dataset.task

    @property
    def modality(self) -> str:
        return self.dataset.modality

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One preprocessed sample's shape: what a model built for this data takes."""
        return self.preprocessor.output_shape

    @property
    def vocab_size(self) -> int | None:
        return self.preprocessor.vocab_size

    @property
    def facts(self) -> DataFacts:
        """What `model: auto` and `train.epochs: auto` are resolved from (config/auto.py)."""
        train = len(self.stream) if self.stream is not None else len(self.tensors["train"][0])
        return DataFacts(self.modality, tuple(self.input_shape), train)

    def inputs(self, split: str) -> torch.Tensor:
        """Preprocessed inputs of `train` (balanced), `val` or `test`."""
        return self.tensors[split][0]

    def loaders_for(self, cfg: RunConfig) -> Loaders:
        """Batch iterators for `cfg`: shuffled, augmented (images) and optionally re-weighted
        for training; no validation loader when `has_validation` is False."""
        if cfg.augment.enabled and self.modality != "image":
            raise ConfigError(f"augment: augmentation applies to images only; this data is "
                              f"{self.modality}. Remove the augment section.")
        augment = None
        if self.modality == "image":
            augment = build_augmenter(cfg.augment, fill=background(self.preprocessor, self.dataset))
        weights = self.balanced.sample_weights
        weights = None if weights is None else torch.as_tensor(np.asarray(weights), dtype=torch.float64)
        if self.stream is not None:
            train = self.stream.loader(self.preprocessor, self.task.kind, seed=cfg.seed,
                                       batch_size=cfg.train.batch_size, augment=augment)
        else:
            train = BatchLoader(*self.tensors["train"], batch_size=cfg.train.batch_size,
                                shuffle=True, seed=cfg.seed, augment=augment, sample_weights=weights)
        val = BatchLoader(*self.tensors["val"], batch_size=cfg.train.eval_batch_size) \
            if self.has_validation else None
        test = BatchLoader(*self.tensors["test"], batch_size=cfg.train.eval_batch_size)
        class_weights = self.balanced.class_weights
        class_weights = None if class_weights is None else torch.as_tensor(
            np.asarray(class_weights), dtype=torch.float32)
        return Loaders(train=train, val=val, test=test, class_weights=class_weights)

    def joined_for_retraining(self, cfg: RunConfig) -> PreparedData:
        """This data regrouped to retrain on: train = train + validation (balanced and
        preprocessed afresh, preprocessing fitted on both), the same untouched test split, and
        no validation split left (its samples are training samples now)."""
        self._in_memory("retraining on train + validation")
        splits = self.splits
        joined = Splits(train=splits.train.concat(splits.val), val=splits.val, test=splits.test,
                        info={**splits.info, "retrain_on": "train+validation"})
        return replace(prepare_splits(cfg, self.dataset, joined, self.validation),
                       has_validation=False)

    def holding_out(self, cfg: RunConfig, held_out: np.ndarray) -> PreparedData:
        """This data regrouped for one fold of a k-fold review: train = the training samples
        not at positions `held_out` (balanced and preprocessed afresh), the same validation
        split (early stopping still watches it), and test = the held-out training samples, so
        scores of `inputs("test")` are out of sample."""
        self._in_memory("a k-fold review")
        splits, keep = self.splits, np.setdiff1d(np.arange(len(self.splits.train)), held_out)
        fold = Splits(train=splits.train.subset(keep), val=splits.val,
                      test=splits.train.subset(held_out), info={**splits.info, "held_out": len(held_out)})
        return prepare_splits(cfg, self.dataset, fold, self.validation)

    def with_training(self, x: np.ndarray, y: np.ndarray) -> PreparedData:
        """This data with more training samples, already preprocessed (an update's replayed
        ones), appended to the training tensors; splits, preprocessing and the other splits
        are unchanged. Under a weighted sampler the extra samples get the mean weight."""
        self._in_memory("mixing in an update's replay buffer")
        xt, yt = to_tensors(x, y, self.task)
        train = self.tensors["train"]
        weights = self.balanced.sample_weights
        if weights is not None and len(x):
            weights = np.concatenate([weights, np.full(len(x), float(np.mean(weights)))])
        return replace(self, tensors={**self.tensors, "train": (torch.cat([train[0], xt.to(train[0].dtype)]),
                                                                torch.cat([train[1], yt.to(train[1].dtype)]))},
                       balanced=replace(self.balanced, sample_weights=weights))

    def _in_memory(self, what: str) -> None:
        if self.stream is not None:
            raise ConfigError(f"data.streaming: {what} regroups the training split in memory; "
                              f"set data.streaming: false")

    def training_samples(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The training split as it came from the source (before resampling), preprocessed:
        one row per `splits.train.ids`, for per-sample scores such as margins."""
        train = self.splits.train
        return to_tensors(self.preprocessor.transform(train.x), train.y, self.task)


def load_and_split(cfg: RunConfig, *, training: bool = True) -> tuple[Dataset, Splits, ValidationReport]:
    """Load the configured source, select classes, split once, curate the training split
    (`data.exclude`, `data.flip_labels`) and validate. An anomaly task's training and
    validation splits keep their normal samples only (`data.anomaly`). With `training`
    False (scoring a trained model: `dlforge evaluate`) a class without training samples is
    no error: only the scored splits matter.

    With `data.streaming` the splits are `streamed.stream_splits`' (the training split's
    `SAMPLE_ROWS` samples evenly spaced, validation and test whole), so the stages that read the test
    split (evaluation, export, the gate) never load a streamed training split.

    Raises:
        DataError: the data cannot be used (one line per fatal problem).
    """
    if streams(cfg.data):
        return stream_splits(cfg, training=training)
    dataset = select(load_dataset(cfg.data), cfg.data, cfg.seed)
    splits = curate(split_dataset(dataset, cfg.data, cfg.seed), dataset, cfg.data, cfg.seed)
    report = validate(dataset, splits, cfg.preprocess, training=training)
    if dataset.task.kind == "anomaly":
        splits, warning = normal_only(splits)
        report.warnings += [warning] if warning else []
    return dataset, splits, report


def prepare_data(cfg: RunConfig, preprocessor: Preprocessor | None = None) -> PreparedData:
    """Run every data stage for `cfg` and return loaders for training.

    Preprocessing is fitted on the training split as it came from the source (before any
    resampling, so duplicated minority samples do not skew the statistics), then applied
    unchanged to validation and test. Resampling and augmentation touch training data only.
    A fitted `preprocessor` (a source model's, for transfer learning) is used as it is. With
    `data.streaming` (data/streamed.py) the training split stays on disk and preprocessing is
    fitted on a streaming pass over it.
    """
    if streams(cfg.data):
        opened = open_stream(cfg, preprocessor)
        data = prepare_splits(cfg, opened.dataset, opened.splits, opened.report,
                              preprocessor=opened.preprocessor)
        return replace(data, stream=opened.stream)
    return prepare_splits(cfg, *load_and_split(cfg), preprocessor=preprocessor)


def prepare_splits(cfg: RunConfig, dataset: Dataset, splits: Splits,
                   report: ValidationReport, preprocessor: Preprocessor | None = None) -> PreparedData:
    """The stages after splitting (balance, preprocess fitted on `splits.train` unless a fitted
    `preprocessor` is given, loaders), for splits made here or regrouped by a caller (e.g.
    train + validation to retrain on)."""
    balanced = balance(splits.train, cfg.balance, cfg.seed)
    pre = preprocessor or build_preprocessor(cfg.preprocess, dataset.modality).fit(splits.train.x)
    tensors = {
        "train": to_tensors(pre.transform(balanced.dataset.x), balanced.dataset.y, dataset.task),
        "val": to_tensors(pre.transform(splits.val.x), splits.val.y, dataset.task),
        "test": to_tensors(pre.transform(splits.test.x), splits.test.y, dataset.task),
    }
    return PreparedData(dataset, splits, report, balanced, pre, tensors)


def background(preprocessor: Preprocessor, dataset: Dataset) -> torch.Tensor:
    """Per-channel value a black (raw 0) pixel has after preprocessing."""
    black = np.zeros((1, *dataset.sample_shape), dtype=dataset.x.dtype)
    return torch.as_tensor(preprocessor.transform(black)[0, :, 0, 0])
