"""One path from a config and prepared data to a trained candidate model (`train_candidate`).

Sits above train/ and evaluate/ and below tune/ and pipeline/: every stage that trains a model
from a config goes through it.
"""

from dlforge.candidate.build import build_for_data
from dlforge.candidate.train import (
    Candidate,
    TrainingPlan,
    check_plan,
    steps_per_epoch,
    train_candidate,
)
from dlforge.candidate.validation import ValidationScores, score_on_validation

__all__ = ["Candidate", "TrainingPlan", "ValidationScores", "build_for_data", "check_plan",
           "score_on_validation", "steps_per_epoch", "train_candidate"]
