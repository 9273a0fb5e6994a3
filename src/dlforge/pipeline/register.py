"""The register stage: write the model bundle and record it as a new version in the store."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlforge.config import RunConfig
from dlforge.data.prepare import PreparedData
from dlforge.faults import fault_point
from dlforge.lifecycle.reference import reference_for
from dlforge.lifecycle.replay import REPLAY, Replay, replay_for
from dlforge.pipeline.evaluate_model import Evaluation, threshold_json, threshold_value
from dlforge.registry import Store
from dlforge.registry.bundle import input_spec as bundle_input_spec
from dlforge.registry.bundle import save_bundle


def register_trained(store: Store, cfg: RunConfig, run_id: str, model: torch.nn.Module,
                     data: PreparedData, evaluation: Evaluation, staging: Path,
                     parent_version: int | None = None):
    """Save a bundle (weights, preprocessing, task, threshold, metrics, the training split's
    drift reference and replay buffer) and register it.

    The bundle is written complete into `staging` first; the store then moves it into the
    artifacts folder, so a failure leaves no half-written version behind.

    Idempotent per run, so that a run resumed after a crash at any point ends with one version
    and its alias moved once: a version the run already registered is kept (no new bundle), a
    bundle staged but never registered is written again, and an alias already on the version
    is left alone (`Store.set_alias` changes nothing then). `parent_version` is the version
    of the same model it was trained from (fine-tuning, an update), for lineage.
    """
    name = cfg.registry.model_name or cfg.name
    version = store.version_for_run(run_id)
    if version is None:
        if staging.exists():  # saved by a process killed before it registered: write it anew
            shutil.rmtree(staging)
        bundle = _save(staging, cfg, run_id, model, data, evaluation, replay_for(store, data, cfg))
        fault_point("bundle-saved")
        version = store.register(name, run_id, bundle, evaluation.summary_metrics(),
                                 parent_version=parent_version)
        fault_point("registered")
    if cfg.registry.alias:
        version = store.set_alias(name, cfg.registry.alias, version.version, reason=f"run {run_id}")
        fault_point("alias-moved")
    return version


def _save(staging: Path, cfg: RunConfig, run_id: str, model: torch.nn.Module,
          data: PreparedData, evaluation: Evaluation, replay: Replay | None) -> Path:
    return save_bundle(
        staging, model=model.cpu(), model_config=cfg.model.model_dump(mode="json"),
        input_shape=data.preprocessor.output_shape, num_outputs=data.task.num_outputs,
        vocab_size=data.preprocessor.vocab_size, preprocessor=data.preprocessor, task=data.task,
        threshold=threshold_value(evaluation.threshold), metrics=evaluation.summary_metrics(),
        extra={"input": input_spec(cfg, data), "run_id": run_id,
               "data_fingerprint": data.dataset.provenance.fingerprint,
               "threshold_detail": threshold_json(evaluation.threshold),
               "trained_on": evaluation.trained_on},
        reference=reference_for(model, data, cfg, threshold_value(evaluation.threshold)),
        arrays=None if replay is None else {REPLAY: replay.arrays()},
    )


def input_spec(cfg: RunConfig, data: PreparedData) -> dict[str, Any]:
    """What raw inputs look like, so a bundle alone can turn files, texts or rows into tensors."""
    ds = data.dataset
    spec: dict[str, Any] = {"raw_shape": list(ds.sample_shape)}
    if ds.modality == "image":
        spec |= {"resize": cfg.data.image_size is not None, "pixels": _pixel_kind(ds.x)}
    elif ds.modality == "text":
        spec["text_column"] = cfg.data.text_column or "text"
    else:
        spec["columns"] = [str(c) for c in ds.x.columns]
    return bundle_input_spec(ds.modality, ds.sample_shape, spec)


def _pixel_kind(x: np.ndarray) -> str:
    """uint8 (0..255), unit (floats in [0, 1]) or other: how decoded image files must be scaled."""
    if x.dtype == np.uint8:
        return "uint8"
    return "unit" if x.size and 0.0 <= float(x.min()) and float(x.max()) <= 1.0 else "other"
