"""The fitted-preprocessing protocol shared by images, tables and texts.

A preprocessor is fitted on the TRAINING split only, then applied unchanged to validation,
test and serving inputs. Its whole state is plain JSON (lists, numbers, strings), so a model
bundle carries it without pickle and serving applies exactly what training applied.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel

from dlforge.errors import ConfigError, DataError

FORMAT_VERSION = 1


class Preprocessor(ABC):
    """Base class: `fit` on train, `transform` anything, `to_dict` for the bundle.

    Subclasses set `kind` and `config_type` and implement `fit`, `transform`,
    `output_shape`, `_state` and `_load_state`.
    """

    kind: ClassVar[str]
    config_type: ClassVar[type[BaseModel]]

    def __init__(self, cfg: BaseModel) -> None:
        self.cfg = cfg
        self.fitted = False

    @abstractmethod
    def fit(self, x_raw: Any) -> Preprocessor:
        """Learn the statistics of the training split; returns self."""

    @abstractmethod
    def transform(self, x_raw: Any) -> np.ndarray:
        """Apply the fitted statistics to raw samples of the same modality."""

    @property
    @abstractmethod
    def output_shape(self) -> tuple[int, ...]:
        """Shape of one transformed sample."""

    @property
    def vocab_size(self) -> int | None:
        """Number of token ids (texts only; None otherwise)."""
        return None

    def fit_chunks(self, chunks: Iterable[Any]) -> Preprocessor:
        """`fit` from consecutive pieces of the training split (a streaming pass).

        Raises:
            ConfigError: this kind of preprocessing needs the whole split at once.
        """
        raise ConfigError(f"data.streaming: {self.kind} preprocessing cannot be fitted on a "
                          f"stream; set data.streaming: false")

    def fit_transform(self, x_raw: Any) -> np.ndarray:
        """`fit(x_raw)` then `transform(x_raw)`: for the training split only."""
        return self.fit(x_raw).transform(x_raw)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe state; `preprocessor_from_dict` rebuilds an identical preprocessor."""
        self._check_fitted()
        return {"format": FORMAT_VERSION, "kind": self.kind,
                "config": self.cfg.model_dump(mode="json"), "state": self._state()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocessor:
        """Rebuild from `to_dict()` output."""
        pre = cls(cls.config_type.model_validate(d["config"]))
        pre._load_state(d["state"])
        pre.fitted = True
        return pre

    @abstractmethod
    def _state(self) -> dict[str, Any]:
        """The fitted statistics as JSON-safe values."""

    @abstractmethod
    def _load_state(self, state: dict[str, Any]) -> None:
        """Inverse of `_state`."""

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise DataError(f"preprocess: the {self.kind} preprocessor is not fitted; "
                            f"call fit(train.x) before transform or to_dict")
