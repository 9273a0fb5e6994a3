"""dlforge: a deep-learning platform on PyTorch with careful practice built in.

The public API, imported lazily so that `import dlforge` stays cheap:

- `dlforge.run(config)`: the whole pipeline, returns a RunResult.
- `dlforge.fit(model, loaders, train_config, task)`: the one training loop.
- `dlforge.load("name@alias")`: a Predictor for a registered model.
- `dlforge.load_config(path_or_dict)`: a validated RunConfig.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "run": ("dlforge.pipeline", "run"),
    "RunResult": ("dlforge.pipeline", "RunResult"),
    "fit": ("dlforge.train.loop", "fit"),
    "load": ("dlforge.registry", "load"),
    "load_config": ("dlforge.config", "load_config"),
    "RunConfig": ("dlforge.config", "RunConfig"),
}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'dlforge' has no attribute {name!r}")
