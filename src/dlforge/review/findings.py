"""What a review found: per-sample evidence of one or two signals, as rows, CSV and JSON."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dlforge.evaluate.label_issues import LabelIssues, margin_issues, precision_recall
from dlforge.train.margins import MarginTracker

SIGNALS = ("confident_learning", "aum")


@dataclass(frozen=True)
class Findings:
    """The training samples and what each signal says of them.

    Attributes:
        ids: sample ids (file paths, or row numbers from 0), in training-split order.
        labels: the given labels.
        class_names: names of the classes.
        signals: `confident_learning` (k-fold out-of-sample probabilities) and/or `aum` (area
            under the margin), each a `LabelIssues` in sample order.
        flipped: the ids `data.flip_labels` gave a wrong class (experiments), else empty.
        notes: how the evidence was gathered, for people.
    """

    ids: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    signals: dict[str, LabelIssues]
    flipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def order(self, signal: str) -> np.ndarray:
        """Sample positions, most suspicious first: flagged before unflagged, then by score."""
        issues = self.signals[signal]
        return np.lexsort((issues.score, ~issues.flagged))

    def rows(self, signal: str, top: int | None = None) -> list[dict[str, Any]]:
        """One dict per sample (`id`, `given`, `suggested`, `score`, `flagged`, `issue`), the
        most suspicious first; the first `top` only when given."""
        issues, names = self.signals[signal], self.class_names
        return [{"id": str(self.ids[i]), "given": names[self.labels[i]],
                 "suggested": names[issues.suggested[i]], "score": round(float(issues.score[i]), 4),
                 "flagged": bool(issues.flagged[i]), "issue": str(issues.kind[i])}
                for i in self.order(signal)[:top]]

    def flagged_ids(self, signal: str) -> list[str]:
        """Ids of the samples `signal` flagged, in sample order."""
        return self.ids[self.signals[signal].flagged].tolist()

    def against_flipped(self) -> dict[str, dict[str, float | int]]:
        """Precision and recall of each signal's flagged samples against the flipped ones."""
        return {name: precision_recall(self.flagged_ids(name), self.flipped) for name in self.signals}

    def to_dict(self, top: int | None = None) -> dict[str, Any]:
        """JSON: counts, notes, the `top` rows per signal, the per-class thresholds of confident
        learning, and precision/recall against the flipped labels when known."""
        counts = {name: int(issues.flagged.sum()) for name, issues in self.signals.items()}
        out: dict[str, Any] = {"samples": len(self.ids), "flagged": counts, "notes": self.notes,
                               "signals": {name: self.rows(name, top) for name in self.signals}}
        if "confident_learning" in self.signals:
            thresholds = self.signals["confident_learning"].thresholds
            out["thresholds"] = dict(zip(self.class_names, np.round(thresholds, 4).tolist(), strict=True))
        if self.flipped:
            out["against_flipped"] = self.against_flipped()
        return out

    def to_csv(self, signal: str) -> str:
        """Every sample as a CSV row, the most suspicious first."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, ["id", "given", "suggested", "score", "flagged", "issue"],
                                lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows(signal))
        return buffer.getvalue()


def margin_findings(tracker: MarginTracker, ids: np.ndarray, labels: np.ndarray,
                    class_names: tuple[str, ...], flipped: list[str] = ()) -> Findings:
    """The area under the margin a `MarginTracker` collected during one training run."""
    issues = margin_issues(labels, tracker.mean_margin(), tracker.mean_logits())
    note = (f"Area under the margin over {tracker.epochs} epochs: each training sample's logit "
            f"minus its largest other logit, scored in eval mode at every epoch's end (no "
            f"augmentation); flagged when negative.")
    return Findings(ids=np.asarray(ids), labels=np.asarray(labels), class_names=class_names,
                    signals={"aum": issues}, flipped=list(flipped), notes=[note])
