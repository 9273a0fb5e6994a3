"""Tiny fitted preprocessors, models and bundles for the bundle and predictor tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from dlforge.config.schema import (
    ImagePreprocess,
    LinearConfig,
    MLPConfig,
    TablePreprocess,
    TextPoolConfig,
    TextPreprocess,
)
from dlforge.data.dataset import TaskSpec
from dlforge.data.preprocess import ImagePreprocessor, TablePreprocessor, TextPreprocessor
from dlforge.models import build_model
from dlforge.registry.bundle import save_bundle


def table_x(n: int = 64, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.normal(0, 1, n), "b": rng.normal(5, 2, n),
                         "color": rng.choice(["red", "blue", "green"], n)})


def image_x(n: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 1, 8, 8), dtype=np.uint8)


TEXTS = ["good film", "bad film", "great plot and good actors", "boring and bad", "good good",
         "awful", "a fine film", "bad plot"] * 8


def table_bundle(dest: Path, task: TaskSpec, *, threshold=None, seed: int = 0,
                 config=None, extra=None) -> tuple[Path, torch.nn.Module, TablePreprocessor]:
    pre = TablePreprocessor(TablePreprocess()).fit(table_x())
    torch.manual_seed(seed)
    cfg = config or MLPConfig(hidden=[8])
    model = build_model(cfg, input_shape=pre.output_shape, num_outputs=task.num_outputs)
    path = save_bundle(dest, model=model, model_config=cfg, input_shape=pre.output_shape,
                       num_outputs=task.num_outputs, vocab_size=None, preprocessor=pre,
                       task=task, threshold=threshold, metrics={"f1": 0.5},
                       extra=extra if extra is not None else
                       {"run_id": "r1", "data_fingerprint": "fp",
                        "input": {"columns": ["a", "b", "color"]}})
    return path, model, pre


def image_bundle(dest: Path, *, seed: int = 0) -> tuple[Path, torch.nn.Module, ImagePreprocessor]:
    pre = ImagePreprocessor(ImagePreprocess()).fit(image_x())
    torch.manual_seed(seed)
    task = TaskSpec("multiclass", ("zero", "one", "two"))
    cfg = LinearConfig()
    model = build_model(cfg, input_shape=pre.output_shape, num_outputs=3)
    path = save_bundle(dest, model=model, model_config=cfg, input_shape=pre.output_shape,
                       num_outputs=3, vocab_size=None, preprocessor=pre, task=task,
                       threshold=None, metrics={"accuracy": 0.25})
    return path, model, pre


def text_bundle(dest: Path, task: TaskSpec, *, threshold=None) -> tuple[Path, torch.nn.Module, TextPreprocessor]:
    pre = TextPreprocessor(TextPreprocess(maxlen=6, num_words=20)).fit(np.array(TEXTS, dtype=object))
    torch.manual_seed(0)
    cfg = TextPoolConfig(embedding_dim=4, hidden=4)
    model = build_model(cfg, input_shape=pre.output_shape, num_outputs=task.num_outputs,
                        vocab_size=pre.vocab_size)
    path = save_bundle(dest, model=model, model_config=cfg, input_shape=pre.output_shape,
                       num_outputs=task.num_outputs, vocab_size=pre.vocab_size,
                       preprocessor=pre, task=task, threshold=threshold, metrics={},
                       extra={"input": {"text_column": "review"}})
    return path, model, pre
