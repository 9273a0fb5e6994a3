"""The run configuration: the single source of option names.

Every key a user can write is declared in this package, with its default, bounds and a
description: data sections in `data_schema.py`, models in `model_schema.py`, training in
`train_schema.py`, the rest and the whole `RunConfig` here. Import every section from this
module. Unknown keys are errors (``extra="forbid"``). Cross-field rules live in
``model_validator``s so that a config that loads is a config that runs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from dlforge.config.base import ALIAS_PATTERN, MODEL_NAME_PATTERN, Section
from dlforge.config.data_schema import (
    AugmentConfig,
    BalanceConfig,
    CropAug,
    DataConfig,
    FlipAug,
    ImagePreprocess,
    JitterAug,
    NoiseAug,
    PreprocessConfig,
    RotateAug,
    SourceName,
    TablePreprocess,
    TaskKind,
    TextPreprocess,
)
from dlforge.config.drift_schema import DriftConfig
from dlforge.config.lifecycle_schema import GateConfig, TransferConfig
from dlforge.config.messages import yaml_spelling
from dlforge.config.model_schema import (
    MODEL_TYPES,
    AirbenchConfig,
    AutoencoderConfig,
    AutoModelConfig,
    BasicCNNConfig,
    DCGANConfig,
    LinearConfig,
    MLPConfig,
    MobileNetConfig,
    ModelConfig,
    ResNetSmallConfig,
    TextCNNConfig,
    TextPoolConfig,
)
from dlforge.config.review_schema import ReviewConfig
from dlforge.config.train_schema import (
    CheckpointConfig,
    ConstantSchedule,
    CosineSchedule,
    EarlyStoppingConfig,
    ExponentialSchedule,
    InverseTimeSchedule,
    LinearSchedule,
    OneCycleSchedule,
    PlateauSchedule,
    ScheduleConfig,
    StepSchedule,
    TrainConfig,
)
from dlforge.config.update_schema import UpdateConfig

__all__ = [
    "ALIAS_PATTERN", "MODEL_NAME_PATTERN", "MODEL_TYPES", "AirbenchConfig", "AugmentConfig", "AutoModelConfig",
    "AutoencoderConfig",
    "BalanceConfig", "BasicCNNConfig", "CheckpointConfig", "DCGANConfig", "ConstantSchedule", "CosineSchedule",
    "CropAug", "DataConfig", "EarlyStoppingConfig", "EvaluateConfig", "ExponentialSchedule",
    "FlipAug", "GateConfig", "ImagePreprocess", "InverseTimeSchedule", "JitterAug", "LinearConfig", "LinearSchedule", "MLPConfig",
    "MobileNetConfig", "ModelConfig", "NoiseAug", "OneCycleSchedule", "PlateauSchedule",
    "PreprocessConfig", "RangeSpec", "RegistryConfig", "ResNetSmallConfig", "RotateAug",
    "RunConfig", "ScheduleConfig", "Section", "ServeConfig", "SourceName", "StepSchedule",
    "TablePreprocess", "TaskKind", "TextCNNConfig", "TextPoolConfig", "TextPreprocess",
    "ThresholdConfig", "TrainConfig", "TransferConfig", "TuneConfig",
]

# --------------------------------------------------------------------------------------- tune


_Int = int  # the field named `int` below shadows the builtin inside the class body


class RangeSpec(Section):
    uniform: tuple[float, float] | None = Field(None, description="[low, high], uniform.")
    log_uniform: tuple[float, float] | None = Field(None, description="[low, high], log-uniform.")
    int: tuple[_Int, _Int] | None = Field(None, description="[low, high], integers.")
    choice: list[Any] | None = Field(None, description="A list of values to choose from.")

    @model_validator(mode="after")
    def _exactly_one(self) -> RangeSpec:
        given = [k for k in ("uniform", "log_uniform", "int", "choice") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of uniform, log_uniform, int, choice (got {given or 'none'})"
            )
        for kind in ("uniform", "log_uniform", "int"):
            bounds = getattr(self, kind)
            if bounds is not None and not bounds[0] < bounds[1]:
                raise ValueError(f"{kind}: [low, high] must have low < high; an empty or inverted "
                                 f"range has nothing to search (got {list(bounds)})")
        if self.log_uniform is not None and self.log_uniform[0] <= 0:
            raise ValueError(f"log_uniform: low must be greater than 0 (got {list(self.log_uniform)})")
        if self.choice is not None and len(self.choice) < 2:
            raise ValueError(f"choice: give at least 2 values; to fix one value set the key itself "
                             f"instead of tuning it (got {yaml_spelling(self.choice)})")
        return self


class TuneConfig(Section):
    n_trials: int = Field(20, ge=1, description="Trials to run.")
    timeout_s: float | None = Field(None, gt=0, description="Wall-time budget of the search.")
    sampler: Literal["random", "grid", "tpe"] = Field("random", description="Search algorithm.")
    pruner: Literal["none", "median", "hyperband"] = Field("median", description="Stop hopeless trials.")
    metric: str = Field("val_loss", description="Validation metric the search optimizes.")
    strategy: Literal["search", "capacity_ladder"] = Field("search", description="Search or grow capacity.")
    space: dict[str, RangeSpec] = Field(default_factory=dict, description="Dotted key -> range.")
    storage: str | None = Field(None, description="SQLAlchemy URL of the study; default the store.")
    retrain_on: Literal["train", "train+validation"] = Field(
        "train", description="Data the best config is retrained on; train+validation trains for "
        "the best trial's best epoch count, keeps its validation threshold, no early stopping.")


# ----------------------------------------------------------------------------------- evaluate


class ThresholdConfig(Section):
    """Decision threshold, chosen on the VALIDATION split and applied unchanged to test: binary
    and multi-label scores, or (anomaly) reconstruction errors of NORMAL validation samples."""

    objective: Literal["max_f1", "min_recall", "min_precision", "fixed", "false_alarm_rate",
                       "percentile"] = Field(
        "max_f1", description="Maximize F1, meet a recall or precision target, or a fixed value; "
        "anomaly: flag this share of normal samples (false_alarm_rate) or cut at a percentile "
        "of their scores.",
    )
    value: float = Field(
        0.5, ge=0, le=100,
        description="min_recall/min_precision: the target for the positive class; fixed: the "
        "threshold; false_alarm_rate: the share in (0, 1); percentile: 0-100 (e.g. 95).",
    )
    confidence: float | None = Field(
        0.95, ge=0.5, lt=1,
        description="min_recall: the target must hold for the one-sided Clopper-Pearson lower "
        "bound of validation recall at this confidence, not just the point estimate, so it "
        "holds on new data; null: the point estimate.",
    )

    @model_validator(mode="after")
    def _value_fits(self) -> ThresholdConfig:
        if self.objective == "percentile":
            if not 0 < self.value < 100:
                raise ValueError(f"value: the percentile objective takes a percentile strictly "
                                 f"between 0 and 100, e.g. 95 (got {self.value:g})")
        elif self.value > 1:
            raise ValueError(f"value: must be less than or equal to 1 for objective "
                             f"{self.objective} (got {self.value:g})")
        elif self.objective == "false_alarm_rate" and self.value in (0, 1):
            raise ValueError(f"value: a false alarm rate is strictly between 0 and 1, e.g. "
                             f"0.01 (got {self.value:g})")
        return self


class EvaluateConfig(Section):
    threshold: ThresholdConfig = Field(
        default_factory=ThresholdConfig, description="Binary/multi-label decision threshold."
    )
    baseline: bool = Field(True, description="Fit a classical scikit-learn baseline on the same split.")
    misclassified_examples: int = Field(16, ge=0, description="Images shown in the report.")
    gate: GateConfig | None = Field(None, description="Champion/challenger gate before an alias moves.")


# ----------------------------------------------------------------------------- registry/serve


class RegistryConfig(Section):
    model_name: str | None = Field(
        None, pattern=MODEL_NAME_PATTERN, description="Registered name; default the run's name."
    )
    url: str | None = Field(None, description="SQLAlchemy URL; default sqlite in the workspace.")
    alias: str | None = Field(
        None, pattern=ALIAS_PATTERN, description="Point this alias (e.g. staging) at the new version."
    )

    @field_validator("alias")
    @classmethod
    def _alias_is_not_a_version(cls, v: str | None) -> str | None:
        if v == "latest":
            raise ValueError("'latest' is reserved for the newest version; choose another alias")
        return v
    enabled: bool = Field(True, description="Register the trained model as a new version.")


class ServeConfig(Section):
    host: str = Field("127.0.0.1", description="Address to bind; loopback by default.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port.")
    max_batch: int = Field(32, ge=1, description="Largest micro-batch.")
    max_wait_ms: float = Field(5.0, ge=0, description="Longest wait to fill a micro-batch.")
    max_body_mb: float = Field(10.0, gt=0, description="Larger request bodies get 413.")
    token: str | None = Field(None, description="Bearer token for state-changing endpoints.")
    protect_reads: bool = Field(False, description="Require the token for predict and reads too.")
    threads: int | None = Field(
        None, ge=1, description="torch threads of the inference thread; default: every physical "
        "core for batches of 8 or more samples (a loaded server), physical cores - 1 (at least "
        "1) for smaller ones, leaving a core for HTTP and JSON.")


# ---------------------------------------------------------------------------------------- run


class RunConfig(Section):
    name: str = Field("model", pattern=MODEL_NAME_PATTERN, description="Run/model name.")
    seed: int = Field(0, ge=0, description="Seeds splits, initialisation, shuffling, augmentation.")
    device: str = Field(
        "auto", pattern=r"^(auto|cpu|cuda(:\d+)?|mps)$",
        description="auto = CUDA when present, else CPU; or cpu, cuda, cuda:N, mps.",
    )
    data: DataConfig = Field(default_factory=DataConfig, description="Where samples come from, splits.")
    preprocess: PreprocessConfig = Field(
        default_factory=PreprocessConfig, description="Fitted on train only; saved in the bundle."
    )
    augment: AugmentConfig = Field(default_factory=AugmentConfig, description="Image augmentation.")
    balance: BalanceConfig = Field(default_factory=BalanceConfig, description="Imbalance handling.")
    model: ModelConfig = Field(
        default_factory=AutoModelConfig,
        description="Architecture, chosen by `type`: " + ", ".join(MODEL_TYPES) + "; `auto` "
        "(or `model: auto`) picks one for the data (config/auto.py).",
    )
    train: TrainConfig = Field(default_factory=TrainConfig, description="Optimizer, schedule, stopping.")
    tune: TuneConfig | None = Field(None, description="Hyperparameter search (Optuna).")
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig, description="Test evaluation.")
    registry: RegistryConfig = Field(default_factory=RegistryConfig, description="Model registry.")
    serve: ServeConfig = Field(default_factory=ServeConfig, description="Inference service.")
    drift: DriftConfig = Field(default_factory=DriftConfig, description="Drift and skew verdicts.")
    transfer: TransferConfig = Field(default_factory=TransferConfig, description="Transfer learning from a registered model (dlforge finetune).")
    review: ReviewConfig = Field(default_factory=ReviewConfig, description="Finding mislabelled training samples.")
    update: UpdateConfig = Field(default_factory=UpdateConfig, description="Online updates of a registered model (dlforge update).")
    # keys whose value came from the shipped default config, not the user (config/load.py);
    # not a field: never saved, not compared, and a config rebuilt from this one has none
    _from_defaults: frozenset[str] = PrivateAttr(default_factory=frozenset)

    def __eq__(self, other: object) -> bool:
        """The same values (pydantic's own `==` compared `_from_defaults` too: the default
        config differed from the same values read back from its dump)."""
        if not isinstance(other, RunConfig):
            return NotImplemented
        return self.__dict__ == other.__dict__

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> RunConfig:
        """A copy; a section `update` replaces no longer holds the default config's values."""
        copy = super().model_copy(update=update, deep=deep)
        if update:
            copy._from_defaults = frozenset(key for key in self._from_defaults
                                            if key.split(".")[0] not in update)
        return copy

    @field_validator("model", mode="before")
    @classmethod
    def _auto_shorthand(cls, v: Any) -> Any:
        return {"type": "auto"} if v == "auto" else v

    @model_validator(mode="before")
    @classmethod
    def _gan_defaults(cls, raw: Any) -> Any:
        from dlforge.config.gan_rules import gan_defaults

        return gan_defaults(raw)

    @model_validator(mode="after")
    def _runs(self) -> RunConfig:
        from dlforge.config.rules import run_problems

        problems = run_problems(self)
        if problems:
            raise ValueError("\n".join(problems))
        return self
