"""Which training labels look wrong: confident learning on out-of-sample probabilities
(Northcutt et al. 2021) and the area under the margin (Pleiss et al. 2020). Pure numpy.

Written here from the papers; cleanlab implements the first but is AGPL-licensed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LabelIssues:
    """Per-sample verdicts of one signal, in sample order.

    Attributes:
        score: lower = more likely mislabelled (self-confidence, or the area under the margin).
        suggested: the class the evidence points to.
        flagged: the signal's own decision (an off-diagonal entry of the confident joint; a
            negative area under the margin).
        kind: "label" (another class is confidently predicted), "outlier" (no class reaches its
            threshold: the sample fits no class well) or "" (not flagged).
        thresholds: confident learning's per-class thresholds (empty for the margin).
    """

    score: np.ndarray
    suggested: np.ndarray
    flagged: np.ndarray
    kind: np.ndarray
    thresholds: np.ndarray


def class_probabilities(scores: np.ndarray) -> np.ndarray:
    """`(N, K)` probabilities from `predict_scores` output: binary `(N,)` becomes `(N, 2)`."""
    scores = np.asarray(scores, dtype=np.float64)
    return np.stack([1 - scores, scores], axis=1) if scores.ndim == 1 else scores


def confident_learning(labels: np.ndarray, probs: np.ndarray) -> LabelIssues:
    """Confident learning's label issues from out-of-sample probabilities.

    The threshold of class j is the mean probability of j over the samples labelled j. A sample
    labelled i counts as "confidently j" for the class j of highest probability among those at
    or above their threshold; it is flagged when that j differs from i (an off-diagonal entry of
    the confident joint). A sample at no class's threshold, whose most probable class is not
    its own, is flagged as an outlier: it fits no class well.

    Args:
        labels: given labels `(N,)` in 0..K-1.
        probs: out-of-sample probabilities `(N, K)` (`class_probabilities`).

    Returns:
        LabelIssues with score = the probability of the given label (self-confidence).

    Example:
        >>> p = np.array([[.9, .1], [.8, .2], [.2, .8], [.9, .1]])
        >>> issues = confident_learning(np.array([0, 0, 1, 1]), p)
        >>> issues.thresholds.round(2).tolist(), issues.flagged.tolist(), issues.suggested.tolist()
        ([0.85, 0.45], [False, False, False, True], [0, 0, 1, 0])
    """
    labels = np.asarray(labels, dtype=np.int64)
    k = probs.shape[1]
    sums = np.bincount(labels, minlength=k)
    thresholds = np.array([probs[labels == j, j].mean() if sums[j] else 1.0 for j in range(k)])
    above = probs >= thresholds[None, :] - 1e-12
    masked = np.where(above, probs, -np.inf)
    confident = masked.argmax(axis=1)
    none = ~above.any(axis=1)
    suggested = np.where(none, probs.argmax(axis=1), confident)
    mislabelled = ~none & (confident != labels)
    outlier = none & (suggested != labels)
    kind = np.where(mislabelled, "label", np.where(outlier, "outlier", "")).astype(object)
    return LabelIssues(score=probs[np.arange(len(labels)), labels], suggested=suggested,
                       flagged=mislabelled | outlier, kind=kind, thresholds=thresholds)


def margin_issues(labels: np.ndarray, mean_margin: np.ndarray, mean_logits: np.ndarray) -> LabelIssues:
    """The area under the margin as label issues: flagged when negative (averaged over epochs,
    the model preferred another class to the given one); suggested = the class of the highest
    mean logit other than the given one when flagged, else the given one.

    Example:
        >>> m = margin_issues(np.array([0, 1]), np.array([2.0, -1.5]), np.array([[3., 1.], [1., .5]]))
        >>> m.flagged.tolist(), m.suggested.tolist()
        ([False, True], [0, 0])
    """
    labels = np.asarray(labels, dtype=np.int64)
    others = np.array(mean_logits, dtype=np.float64)
    others[np.arange(len(labels)), labels] = -np.inf
    flagged = np.asarray(mean_margin) < 0
    suggested = np.where(flagged, others.argmax(axis=1), labels)
    kind = np.where(flagged, "label", "").astype(object)
    return LabelIssues(score=np.asarray(mean_margin, dtype=np.float64), suggested=suggested,
                       flagged=flagged, kind=kind, thresholds=np.array([]))


def precision_recall(flagged_ids: list[str], true_ids: list[str]) -> dict[str, float | int]:
    """Precision and recall of `flagged_ids` against the truly bad `true_ids`.

    Example:
        >>> precision_recall(["a", "b"], ["b", "c", "d"])
        {'flagged': 2, 'true': 3, 'hits': 1, 'precision': 0.5, 'recall': 0.3333}
    """
    hits = len(set(flagged_ids) & set(true_ids))
    return {"flagged": len(flagged_ids), "true": len(true_ids), "hits": hits,
            "precision": round(hits / len(flagged_ids), 4) if flagged_ids else 0.0,
            "recall": round(hits / len(true_ids), 4) if true_ids else 0.0}
