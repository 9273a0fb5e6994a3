"""Config section `train.muon`: the Muon half of `train.optimizer: muon` (train/muon.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from dlforge.config.base import Section

if TYPE_CHECKING:
    from dlforge.config.train_schema import TrainConfig


class MuonConfig(Section):
    """Muon's settings for the hidden weight matrices (conv filters, hidden dense weights).

    Every other trainable parameter (biases, normalization parameters, the output layer, an
    input layer the model names, embeddings) takes SGD with `train.lr`, `train.momentum`, `train.nesterov`,
    `train.weight_decay` and `train.bias_lr_scale`. The schedule scales both alike.
    """

    lr: float = Field(0.02, gt=0, description="Muon's peak learning rate: each step moves a "
                      "filter matrix by lr x its orthogonalized update (airbench: 0.24).")
    momentum: float = Field(0.95, ge=0, lt=1, description="Momentum of the gradient before "
                            "orthogonalization (airbench: 0.6).")
    nesterov: bool = Field(True, description="Nesterov momentum.")
    ns_steps: int = Field(5, ge=1, le=20, description="Newton-Schulz iterations (airbench: 3; "
                          "5 is the usual).")
    normalize_weights: bool = Field(
        False, description="Before each step, rescale every Muon weight to Frobenius norm "
        "sqrt(out_channels) (airbench); the weights then need no weight decay.")
    weight_decay: float = Field(0.0, ge=0, description="Decoupled weight decay of the Muon "
                                "weights: w -= lr x weight_decay x w each step.")


def muon_problems(train: TrainConfig) -> list[str]:
    """The rules of `train.muon` against the rest of `train`, one line per problem.

    Example:
        >>> from dlforge.config.train_schema import TrainConfig
        >>> unchecked = TrainConfig.model_construct(optimizer="sgd", muon=MuonConfig())
        >>> [line.split(";")[0] for line in muon_problems(unchecked)]
        ["train.muon: applies to train.optimizer: muon only (got optimizer 'sgd')"]
    """
    muon = train.muon
    problems = []
    if muon is not None and train.optimizer != "muon":
        problems.append(f"train.muon: applies to train.optimizer: muon only (got optimizer "
                        f"{train.optimizer!r}); remove train.muon or set train.optimizer: muon")
    if muon is not None and muon.nesterov and muon.momentum == 0:
        problems.append("train.muon.nesterov: needs train.muon.momentum > 0 (got 0.0); set a "
                        "momentum or nesterov: false")
    if muon is not None and muon.normalize_weights and muon.weight_decay > 0:
        problems.append(f"train.muon.weight_decay: has no effect with normalize_weights: true, "
                        f"which resets every weight's norm each step (got {muon.weight_decay}); "
                        "set weight_decay: 0 or normalize_weights: false")
    return problems
