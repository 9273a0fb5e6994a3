"""Tiny registered models (table, image, text) for the `dlforge predict` streaming tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

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

DIGITS = TaskSpec("multiclass", ("zero", "one", "two", "three"))
SENTIMENT = TaskSpec("binary", ("neg", "pos"))


def rows(n: int, seed: int = 0) -> pd.DataFrame:
    """Table rows: two numeric columns and a categorical one whose values look like numbers."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.normal(0, 1, n).round(4), "b": rng.normal(5, 2, n).round(4),
                         "shop": rng.choice(["1", "2", "x"], n)})


def _register(ws: Path, name: str, bundle: Path) -> None:
    with Store.open(ws) as store:
        store.register(name, None, bundle, {})


def table_model(ws: Path, tmp: Path, name: str = "tab", task: TaskSpec = SENTIMENT) -> None:
    """Register a small MLP over `rows()` (categorical 'shop' one-hot encoded)."""
    pre = TablePreprocessor(TablePreprocess()).fit(rows(64))
    torch.manual_seed(0)
    model = build_model(MLPConfig(hidden=[8]), input_shape=pre.output_shape, num_outputs=task.num_outputs)
    bundle = save_bundle(tmp / f"{name}-bundle", model=model, model_config=MLPConfig(hidden=[8]),
                         input_shape=pre.output_shape, num_outputs=task.num_outputs, vocab_size=None,
                         preprocessor=pre, task=task, threshold=0.5, metrics={},
                         extra={"input": {"columns": ["a", "b", "shop"]}})
    _register(ws, name, bundle)


def image_model(ws: Path, tmp: Path) -> None:
    """Register a linear model over 8x8 grayscale images with four classes."""
    x = np.random.default_rng(1).integers(0, 256, (64, 1, 8, 8), dtype=np.uint8)
    pre = ImagePreprocessor(ImagePreprocess()).fit(x)
    torch.manual_seed(1)
    model = build_model(LinearConfig(), input_shape=pre.output_shape, num_outputs=4)
    bundle = save_bundle(tmp / "img-bundle", model=model, model_config=LinearConfig(),
                         input_shape=pre.output_shape, num_outputs=4, vocab_size=None,
                         preprocessor=pre, task=DIGITS, threshold=None, metrics={})
    _register(ws, "img", bundle)


def text_model(ws: Path, tmp: Path) -> None:
    """Register a pooled-embedding binary text model reading the CSV column 'review'."""
    texts = np.array(["good film", "bad film", "great plot", "boring and bad", "fine"] * 8, dtype=object)
    pre = TextPreprocessor(TextPreprocess(maxlen=5, num_words=20)).fit(texts)
    torch.manual_seed(2)
    cfg = TextPoolConfig(embedding_dim=4, hidden=4)
    model = build_model(cfg, input_shape=pre.output_shape, num_outputs=1, vocab_size=pre.vocab_size)
    bundle = save_bundle(tmp / "txt-bundle", model=model, model_config=cfg,
                         input_shape=pre.output_shape, num_outputs=1, vocab_size=pre.vocab_size,
                         preprocessor=pre, task=SENTIMENT, threshold=0.5, metrics={},
                         extra={"input": {"text_column": "review"}})
    _register(ws, "txt", bundle)


def write_pngs(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """`n` random 8x8 grayscale PNGs in two sub-folders; returns them in sorted path order."""
    images = np.random.default_rng(seed).integers(0, 256, (n, 8, 8), dtype=np.uint8)
    files = []
    for i, image in enumerate(images):
        path = folder / f"part{i % 2}" / f"img{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path)  # 2-D uint8: grayscale
        files.append(path)
    return sorted(files)
