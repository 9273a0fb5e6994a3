"""Build the configured model for prepared data: input shape, head width, vocabulary and, for
regression, output scaling fitted on the training targets. Every stage that trains a model
from a config (`train_candidate`) builds it here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import nn

from dlforge.models.registry import build_model
from dlforge.models.target_scale import fit_target_scale

if TYPE_CHECKING:
    from dlforge.data.prepare import PreparedData


def build_for_data(model_cfg: Any, data: PreparedData) -> nn.Module:
    """`build_model` sized for `data`; regression outputs scaled to the training targets; a
    model with `fit_to_inputs` (airbench's whitening layer) fitted to the training inputs.

    Example:
        >>> model = build_for_data(cfg.model, prepare_data(cfg))  # doctest: +SKIP
    """
    regression = data.task.kind == "regression"
    model = build_model(model_cfg, input_shape=data.input_shape, num_outputs=data.task.num_outputs,
                        vocab_size=data.vocab_size, scale_outputs=regression)
    fit_to_inputs = getattr(model, "fit_to_inputs", None)
    if fit_to_inputs is not None:
        fit_to_inputs(data.inputs("train"))
    return fit_target_scale(model, data.tensors["train"][1]) if regression else model
