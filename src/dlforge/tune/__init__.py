"""Hyperparameter search with Optuna around the one candidate path: space, study, pruning,
search, the capacity ladder and retraining the best trial."""

from dlforge.tune.results import SearchOutcome, TrialSummary
from dlforge.tune.search import check_search, search
from dlforge.tune.space import apply_params

__all__ = ["SearchOutcome", "TrialSummary", "apply_params", "check_search", "search"]
