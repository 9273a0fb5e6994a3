"""Hyperparameter search with Optuna around the one fit loop: space, study, pruning, search."""

from dlforge.tune.results import SearchResult, TrialSummary
from dlforge.tune.search import check_search, search
from dlforge.tune.space import apply_params, check_space, tunable_keys

__all__ = ["SearchResult", "TrialSummary", "apply_params", "check_search", "check_space", "search", "tunable_keys"]
