"""A real store in a temporary workspace with tiny registered models, for the serve tests."""

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
from dlforge.registry import Store
from dlforge.registry.bundle import save_bundle

DIGITS = TaskSpec("multiclass", ("zero", "one", "two"))
CHURN = TaskSpec("binary", ("stay", "leave"))
TOPICS = TaskSpec("multilabel", ("sport", "film"))
TEXTS = ["good film", "bad film", "great plot and good actors", "boring and bad"] * 16


def image_pixels(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 1, 8, 8), dtype=np.uint8)


def table_rows(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.normal(0, 1, n), "b": rng.normal(5, 2, n),
                         "color": rng.choice(["red", "blue", "green"], n)})


def _image_bundle(dest: Path, seed: int) -> Path:
    pre = ImagePreprocessor(ImagePreprocess()).fit(image_pixels(64))
    torch.manual_seed(seed)
    model = build_model(LinearConfig(), input_shape=pre.output_shape, num_outputs=3)
    return save_bundle(dest, model=model, model_config=LinearConfig(), input_shape=pre.output_shape,
                       num_outputs=3, vocab_size=None, preprocessor=pre, task=DIGITS,
                       threshold=None, metrics={"accuracy": 0.5 + seed / 100})


def _table_bundle(dest: Path) -> Path:
    pre = TablePreprocessor(TablePreprocess()).fit(table_rows(64))
    torch.manual_seed(0)
    cfg = MLPConfig(hidden=[8])
    model = build_model(cfg, input_shape=pre.output_shape, num_outputs=1)
    return save_bundle(dest, model=model, model_config=cfg, input_shape=pre.output_shape,
                       num_outputs=1, vocab_size=None, preprocessor=pre, task=CHURN,
                       threshold=0.3, metrics={"f1": 0.7},
                       extra={"input": {"columns": ["a", "b", "color"]}})


def _text_bundle(dest: Path) -> Path:
    pre = TextPreprocessor(TextPreprocess(maxlen=6, num_words=20)).fit(np.array(TEXTS, dtype=object))
    torch.manual_seed(0)
    cfg = TextPoolConfig(embedding_dim=4, hidden=4)
    model = build_model(cfg, input_shape=pre.output_shape, num_outputs=2, vocab_size=pre.vocab_size)
    return save_bundle(dest, model=model, model_config=cfg, input_shape=pre.output_shape,
                       num_outputs=2, vocab_size=pre.vocab_size, preprocessor=pre, task=TOPICS,
                       threshold=[0.4, 0.6], metrics={})


def make_store(root: Path) -> Store:
    """digits v1, v2 (production -> 1), churn v1 (binary), topics v1 (multilabel text)."""
    store = Store.open(root / "ws")
    store.register("digits", None, _image_bundle(root / "d1", seed=1), {"accuracy": 0.51})
    store.register("digits", None, _image_bundle(root / "d2", seed=2), {"accuracy": 0.52})
    store.set_alias("digits", "production", 1)
    store.register("churn", None, _table_bundle(root / "c1"), {"f1": 0.7})
    store.register("topics", None, _text_bundle(root / "t1"), {})
    return store
