"""Config section `review`: looking for mislabelled or outlying training samples."""

from __future__ import annotations

from pydantic import Field

from dlforge.config.base import Section


class ReviewConfig(Section):
    in_run: bool = Field(
        True, description="Every classification run tracks each training sample's margin "
        "(one extra forward pass over the training set per epoch) and its report ranks the "
        "samples of lowest area under the margin. false turns it off.")
    folds: int = Field(5, ge=2, description="`dlforge data review`: folds of out-of-sample "
                       "probabilities (k-fold training of the run's model).")
    epochs: int = Field(15, ge=1, description="`dlforge data review`: train.epochs of each fold "
                        "(early stopping still applies; on digits 5 epochs flagged 2.6x the flipped labels, 15 epochs 1.4x).")
    top: int = Field(16, ge=1, description="Candidates shown in the report and printed.")
