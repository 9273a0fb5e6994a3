"""The run's own look for mislabelled training samples (`review.in_run`): a margin tracker on
the run's training, read back as findings for the report."""

from __future__ import annotations

from dlforge.config import RunConfig
from dlforge.data.prepare import PreparedData
from dlforge.review import Findings, margin_findings
from dlforge.train.margins import MarginTracker


def margin_tracker(cfg: RunConfig, data: PreparedData) -> MarginTracker | None:
    """A tracker of the training samples' margins, or None when `review.in_run` is off or the
    task has no single class per sample (multilabel, regression).

    Example:
        >>> tracker = margin_tracker(cfg, data)  # doctest: +SKIP
        >>> plan = replace(plan, callbacks=(*plan.callbacks, tracker))  # doctest: +SKIP
    """
    if not cfg.review.in_run or data.task.kind not in ("multiclass", "binary"):
        return None
    return MarginTracker(*data.training_samples(), batch_size=cfg.train.eval_batch_size)


def tracked_findings(tracker: MarginTracker | None, data: PreparedData) -> Findings | None:
    """What the tracker saw, by sample id (None without a tracker).

    Example:
        >>> tracked_findings(tracker, data).rows("aum", top=1)  # doctest: +SKIP
        [{'id': '1428', 'given': '6', 'suggested': '9', 'score': -0.44, 'flagged': True, 'issue': 'label'}]
    """
    if tracker is None:
        return None
    train = data.splits.train
    return margin_findings(tracker, train.ids, train.y, data.task.class_names,
                           data.splits.info.get("flipped", []))
