"""Finding mislabelled or outlying training samples (`dlforge data review`, the run report)."""

from dlforge.review.findings import Findings, margin_findings
from dlforge.review.kfold import review_data

__all__ = ["Findings", "margin_findings", "review_data"]
