"""Tiny models registered into a temporary store, for the export and profile tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dlforge.config.schema import ImagePreprocess, TextPreprocess
from dlforge.data.dataset import TaskSpec
from dlforge.data.preprocess import ImagePreprocessor, TextPreprocessor
from dlforge.models import build_model
from dlforge.registry import Store
from dlforge.registry.bundle import save_bundle

TEXTS = np.array(["good film", "bad film", "great plot and good actors", "boring and bad",
                  "good good", "awful", "a fine film", "bad plot"] * 8, dtype=object)
IMAGES = np.random.default_rng(0).integers(0, 256, (64, 1, 8, 8), dtype=np.uint8)
TASK = TaskSpec("multiclass", ("a", "b", "c"))


def register(workspace: Path, name: str, cfg, *, text: bool = False,
             run_config: dict | None = None) -> Path:
    """Build `cfg` for 8x8 grey images (or 6-token texts), save it as a bundle and register it.

    With `run_config`, the version belongs to a run recorded with that config.
    """
    if text:
        pre = TextPreprocessor(TextPreprocess(maxlen=6, num_words=20)).fit(TEXTS)
    else:
        pre = ImagePreprocessor(ImagePreprocess()).fit(IMAGES)
    torch.manual_seed(0)
    model = build_model(cfg, input_shape=pre.output_shape, num_outputs=TASK.num_outputs,
                        vocab_size=pre.vocab_size)
    bundle = save_bundle(workspace / f"{name}-bundle", model=model, model_config=cfg,
                         input_shape=pre.output_shape, num_outputs=TASK.num_outputs,
                         vocab_size=pre.vocab_size, preprocessor=pre, task=TASK, threshold=None,
                         metrics={})
    with Store.open(workspace) as store:
        run_id = None
        if run_config is not None:
            run_id = store.create_run(name, run_config, None, None, seed=0).id
        store.register(name, run_id, bundle, metrics={})
    return workspace
