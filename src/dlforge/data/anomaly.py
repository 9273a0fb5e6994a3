"""Anomaly detection learns what is normal: the model and its threshold see normal samples
only, and labelled anomalies are kept for the test split, where they are measured."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from dlforge.data.dataset import Splits


def normal_only(splits: Splits) -> tuple[Splits, str | None]:
    """Leave the anomalies (label 1) out of the training and validation splits.

    The autoencoder trains on normal samples and the threshold is calibrated on normal
    validation samples; the test split keeps every sample so that detection can be measured.

    Args:
        splits: splits of an anomaly task (labels 0 normal, 1 anomaly).

    Returns:
        The splits without anomalies in train and validation, and a one-line warning with the
        counts when some were left out (else None). `info["anomalies_left_out"]` records them.

    Example:
        >>> from dlforge.data.dataset import Dataset, Provenance, TaskSpec
        >>> task = TaskSpec("anomaly", ("normal", "anomaly"))
        >>> ds = Dataset(np.zeros((4, 1)), np.array([0, 1, 0, 0]), task, "table", Provenance("t"))
        >>> kept, warning = normal_only(Splits(ds, ds, ds))
        >>> len(kept.train), len(kept.test), kept.info["anomalies_left_out"]
        (3, 4, {'train': 1, 'val': 1})
    """
    counts = {name: int(np.sum(part.y == 1)) for name, part in (("train", splits.train),
                                                                 ("val", splits.val))}
    if not any(counts.values()):
        return splits, None
    train, val = (part.subset(np.flatnonzero(part.y == 0)) for part in (splits.train, splits.val))
    info = {**splits.info, "anomalies_left_out": counts}
    warning = (f"data: the anomaly task trains on normal samples only; left out "
               f"{counts['train']} anomalies of the training split (kept {len(train)} normal) "
               f"and {counts['val']} of validation (kept {len(val)}); the test split keeps its "
               f"{int(np.sum(splits.test.y == 1))} anomalies")
    return replace(splits, train=train, val=val, info=info), warning
