"""An exponential moving average (EMA) of a model's weights, for `train.ema`.

The average covers every floating-point entry of the model's `state_dict`: parameters and the
batch-norm running statistics, so the averaged weights are evaluated with statistics that
match them (integer entries such as `num_batches_tracked` are copied). The fit loop updates it
after every optimizer step, validates with the averaged weights swapped in (`applied`), and
leaves them in the model at the end, so test scores and the registered bundle are the
average's. Checkpoints hold it (`state_dict`), so a resumed run continues the same average.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn


class WeightAverage:
    """The EMA of `model`'s weights, bound to its live tensors.

    Args:
        model: the model being trained (bound once; its tensors are updated in place).
        decay: weight of the old average at each update.
        every: update after every this many calls of `step`.
        lookahead_steps: lookahead mode (airbench), over a run of this many optimizer steps:
            after t steps the decay is ``decay * (t / lookahead_steps) ** 3`` and the model's
            weights are reset to the average after each update. None: a plain EMA.

    Example:
        >>> model = nn.Linear(1, 1, bias=False)
        >>> _ = model.weight.data.fill_(0.0)
        >>> ema = WeightAverage(model, decay=0.5, every=1)
        >>> _ = model.weight.data.fill_(1.0)
        >>> ema.step()  # first update: decay min(0.5, 1 / 10) = 0.1
        >>> round(float(ema.shadow["weight"]), 4)
        0.9
    """

    def __init__(self, model: nn.Module, decay: float, every: int = 1,
                 lookahead_steps: int | None = None) -> None:
        self.decay, self.every = decay, every
        self.lookahead_steps = lookahead_steps
        self.live = model.state_dict(keep_vars=False)  # shares storage with the model
        self.shadow = {k: v.detach().clone() for k, v in self.live.items()}
        self.steps = 0
        self.updates = 0

    def current_decay(self) -> float:
        """The decay of the next update: min(decay, (1 + n) / (10 + n)) after n updates;
        in lookahead mode decay * (t / lookahead_steps) ** 3 after t steps."""
        if self.lookahead_steps is not None:
            return self.decay * min(self.steps / self.lookahead_steps, 1.0) ** 3
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def step(self) -> None:
        """Count one optimizer step; every `every` steps, move the average toward the weights."""
        self.steps += 1
        if self.steps % self.every:
            return
        decay = self.current_decay()
        self.updates += 1
        for key, live in self.live.items():
            average = self.shadow[key]
            if average.is_floating_point():
                average.lerp_(live, 1 - decay)
            else:
                average.copy_(live)
        if self.lookahead_steps is not None:
            self.copy_to_model()

    @torch.no_grad()
    def copy_to_model(self) -> None:
        """Put the averaged weights into the model (for good)."""
        for key, live in self.live.items():
            live.copy_(self.shadow[key])

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """The averaged weights in the model for the duration of the block, then the trained
        ones back."""
        saved = {k: v.clone() for k, v in self.live.items()}
        self.copy_to_model()
        try:
            yield
        finally:
            with torch.no_grad():
                for key, live in self.live.items():
                    live.copy_(saved[key])

    def state_dict(self) -> dict[str, Any]:
        """The average and its counters (tensors and ints only)."""
        return {"shadow": self.shadow, "steps": self.steps, "updates": self.updates}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the average `state_dict` returned."""
        for key, value in state["shadow"].items():
            self.shadow[key].copy_(value)
        self.steps, self.updates = int(state["steps"]), int(state["updates"])


def averaging(ema: WeightAverage | None) -> contextlib.AbstractContextManager:
    """`ema.applied()`, or a block that changes nothing without `train.ema`."""
    return contextlib.nullcontext() if ema is None else ema.applied()
