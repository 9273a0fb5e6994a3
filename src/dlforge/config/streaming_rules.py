"""Rules of `data.streaming`: what a training split that stays on disk cannot do.

A streamed split is never in memory at once, so the keys that resample the training split or
regroup it (retraining on train + validation, transfer learning) do not apply; shards are
written AFTER selection, splitting and curation, so with shards the keys that select or curate
samples do not apply either (an image folder is selected and split on its file list).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dlforge.config.schema import RunConfig

# Keys applied when the shards were written (`dlforge data shard` runs select and curate).
SHARD_TIME_KEYS = ("classes", "binary_from", "positive_fraction", "normal_classes",
                   "anomaly_classes", "limit", "exclude_file", "flip_labels")


def streaming_problems(cfg: RunConfig) -> list[str]:
    """One line per key that cannot go with `data.streaming` (empty when it runs).

    Example:
        >>> from dlforge.config import load_config
        >>> streaming_problems(load_config({"data": {"source": "shards", "path": "s", "streaming": True}}))
        []
        >>> cfg = load_config({"data": {"source": "shards", "path": "s"}})
        >>> streaming_problems(cfg.model_copy(update={"data": cfg.data.model_copy(update={"limit": 50, "streaming": True})}))
        ['data.limit: applied when the shards were written; with data.streaming, set it in the config given to `dlforge data shard`']
    """
    data = cfg.data
    if data.streaming is False or (data.streaming == "auto" and data.source != "shards"):
        return []
    if data.source not in ("shards", "image_folder", "csv"):
        return [f"data.streaming: streams shards, image folders and CSVs; set data.source: "
                f"shards and data.path to a directory `dlforge data shard` wrote, or "
                f"image_folder or csv (got source {data.source!r})"]
    problems = _csv_problems(cfg) if data.source != "shards" else [
        f"data.{key}: applied when the shards were written; with data.streaming, "
        f"set it in the config given to `dlforge data shard`"
        for key in SHARD_TIME_KEYS if getattr(data, key) is not None]
    if data.exclude and data.source == "shards":
        problems.append("data.exclude: applied when the shards were written; with "
                        "data.streaming, set it in the config given to `dlforge data shard`")
    if cfg.balance.method != "none":
        problems.append(f"balance.method: resampling or weighting needs the training split in "
                        f"memory (got {cfg.balance.method!r}); use none with data.streaming")
    if cfg.tune is not None and cfg.tune.retrain_on != "train":
        problems.append("tune.retrain_on: train+validation regroups the splits in memory; use "
                        "train with data.streaming")
    if cfg.transfer.source is not None:
        problems.append("transfer.source: fine-tuning reads its data in memory; set "
                        "data.streaming: false")
    if cfg.update.source is not None:
        problems.append("update.source: an update mixes its replay buffer into the training "
                        "split in memory; set data.streaming: false")
    return problems


def _csv_problems(cfg: RunConfig) -> list[str]:
    """A streamed CSV is parsed a batch at a time: numeric feature columns only."""
    data = cfg.data
    if data.source != "csv":
        return []
    return [f"data.{key}: a streamed CSV holds numeric features only (got {value!r}); set "
            f"data.streaming: false" for key, value in
            (("text_column", data.text_column), ("categorical_columns", data.categorical_columns))
            if value]
