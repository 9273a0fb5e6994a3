"""The run configuration: the single source of option names.

Every key a user can write is declared here, with its default, bounds and a description.
Unknown keys are errors (``extra="forbid"``). Cross-field rules live in ``model_validator``s
so that a config that loads is a config that runs.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# A model name is also a directory name under artifacts/models/; registry/refs.py uses these too.
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
ALIAS_PATTERN = r"^[a-z][a-z0-9_-]*$"


class Section(BaseModel):
    """Base of every config section: unknown keys fail, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# --------------------------------------------------------------------------------------- data

SourceName = Literal["builtin", "idx", "cifar", "image_folder", "csv", "npz"]
TaskKind = Literal["multiclass", "binary", "multilabel", "regression"]


class DataConfig(Section):
    source: SourceName = Field("builtin", description="Kind of source the data comes from.")
    name: str | None = Field(
        "digits",
        description="builtin: digits|breast_cancer|wine|diabetes; idx: mnist|fashion_mnist; "
        "cifar: cifar10|cifar100. Ignored by image_folder, csv and npz.",
    )
    path: str | None = Field(
        None, description="File or directory to read. idx/cifar: overrides the search order."
    )
    task: TaskKind | None = Field(None, description="Task type; inferred from the labels if unset.")
    # csv
    label_columns: list[str] = Field(
        default_factory=lambda: ["label"],
        description="csv: label column, several for multi-label (0/1 columns), or the regression target.",
    )
    text_column: str | None = Field(None, description="csv: the column holding text (a text task).")
    feature_columns: list[str] | None = Field(
        None, description="csv tables: feature columns; default all columns but labels and split."
    )
    categorical_columns: list[str] | None = Field(
        None, description="csv tables: categorical columns; default the non-numeric ones."
    )
    split_column: str | None = Field(
        None, description="csv: column with values train/val/test fixing each row's split."
    )
    positive_class: str | None = Field(
        None, description="binary: name of the positive (rare, e.g. 'defect') class; default the second."
    )
    # images
    image_size: tuple[int, int] | None = Field(
        None, description="image_folder: resize every image to (height, width)."
    )
    color: Literal["grayscale", "rgb"] = Field("grayscale", description="image_folder: channels.")
    # splitting
    val_fraction: float = Field(0.15, gt=0, lt=1, description="Share of samples for validation.")
    test_fraction: float = Field(
        0.15, gt=0, lt=1, description="Share held out for test (when the source has no test set)."
    )
    stratify: bool = Field(True, description="Keep class ratios equal across splits.")
    test_distribution: Literal["natural"] = Field(
        "natural",
        description="The test split keeps the source's class ratio; resampling touches train only.",
    )
    classes: list[str] | None = Field(
        None, description="Keep only these classes (by name), in this order."
    )
    binary_from: dict[str, list[str]] | None = Field(
        None,
        description="Build a binary task from class names: {positive_name: [classes...]}; "
        "every other class becomes the negative class. E.g. {defect: [Sandal]}.",
    )
    negative_name: str = Field("ok", description="Name of the negative class built by binary_from.")
    positive_fraction: float | None = Field(
        None, gt=0, lt=1,
        description="With binary_from: subsample positives so they are this share of all samples.",
    )
    limit: int | None = Field(
        None, ge=10, description="Use at most this many samples (stratified), for quick runs."
    )
    cache_dir: str | None = Field(
        None, description="Download cache; default $DLFORGE_CACHE or ~/.cache/dlforge."
    )

    @model_validator(mode="after")
    def _source_needs(self) -> DataConfig:
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError(
                f"data.val_fraction + data.test_fraction: must be less than 1 "
                f"(got {self.val_fraction} + {self.test_fraction})"
            )
        if self.source in ("image_folder", "csv", "npz") and not self.path:
            raise ValueError(f"data.path: required for source {self.source!r} (got None)")
        allowed = {
            "builtin": ("digits", "breast_cancer", "wine", "diabetes"),
            "idx": ("mnist", "fashion_mnist"),
            "cifar": ("cifar10", "cifar100"),
        }.get(self.source)
        if allowed and self.name not in allowed:
            raise ValueError(
                f"data.name: must be one of {', '.join(allowed)} for source {self.source!r} "
                f"(got {self.name!r})"
            )
        return self


# --------------------------------------------------------------------------------- preprocess


class ImagePreprocess(Section):
    scale: bool = Field(True, description="Divide pixel values by 255 (uint8 sources) to [0, 1].")
    standardize: bool = Field(True, description="Per-channel mean/std fitted on the train split.")


class TablePreprocess(Section):
    scaling: Literal["standard", "minmax", "none"] = Field(
        "standard", description="Numeric columns: standardization or min-max normalization."
    )
    impute: Literal["none", "median", "mean"] = Field(
        "none", description="Numeric missing values; 'none' makes NaN a data error."
    )
    categorical_impute: Literal["none", "most_frequent"] = Field(
        "most_frequent", description="Categorical missing values."
    )
    pca_components: int | None = Field(None, ge=1, description="Project onto this many components.")


class TextPreprocess(Section):
    lowercase: bool = Field(True, description="Lowercase texts before tokenizing.")
    num_words: int = Field(10000, ge=10, description="Vocabulary: the most frequent train tokens.")
    maxlen: int = Field(200, ge=1, description="Pad or truncate every sequence to this length.")
    truncate: Literal["pre", "post"] = Field("post", description="Which end to cut long texts at.")


class PreprocessConfig(Section):
    image: ImagePreprocess = Field(default_factory=ImagePreprocess)
    table: TablePreprocess = Field(default_factory=TablePreprocess)
    text: TextPreprocess = Field(default_factory=TextPreprocess)


# ------------------------------------------------------------------------------------ augment

Prob = Annotated[float, Field(ge=0, le=1)]


class FlipAug(Section):
    p: Prob = Field(0.5, description="Probability of flipping each image.")


class CropAug(Section):
    padding: int = Field(2, ge=1, description="Pad by this many pixels, then crop back at random.")
    p: Prob = Field(1.0, description="Probability of shifting each image.")


class RotateAug(Section):
    degrees: float = Field(10.0, gt=0, le=180, description="Rotate by up to +/- this angle.")
    p: Prob = Field(0.5, description="Probability of rotating each image.")


class JitterAug(Section):
    amount: float = Field(0.1, gt=0, le=1, description="Max relative change.")
    p: Prob = Field(0.5, description="Probability of changing each image.")


class NoiseAug(Section):
    std: float = Field(0.05, gt=0, description="Standard deviation of the added noise.")
    p: Prob = Field(0.5, description="Probability of adding noise to each image.")


class AugmentConfig(Section):
    """On-the-fly augmentation of TRAINING batches of images; each op is off unless given."""

    hflip: FlipAug | None = Field(None, description="Horizontal flip.")
    vflip: FlipAug | None = Field(None, description="Vertical flip.")
    crop: CropAug | None = Field(None, description="Random crop after padding (a shift).")
    rotate: RotateAug | None = Field(None, description="Small random rotation.")
    brightness: JitterAug | None = Field(None, description="Brightness jitter.")
    contrast: JitterAug | None = Field(None, description="Contrast jitter.")
    noise: NoiseAug | None = Field(None, description="Gaussian noise.")

    @property
    def enabled(self) -> bool:
        return any(getattr(self, name) is not None for name in type(self).model_fields)


# ------------------------------------------------------------------------------------ balance


class BalanceConfig(Section):
    """Imbalance handling, applied to the TRAINING split only."""

    method: Literal["none", "oversample", "undersample", "class_weight", "weighted_sampler"] = Field(
        "none", description="Random over/under-sampling, loss weights, or a weighted batch sampler."
    )
    ratio: float = Field(
        1.0, gt=0, le=1,
        description="oversample/undersample: each class ends at >= ratio x the largest class "
        "(over) or the largest ends at <= smallest / ratio (under). 1.0 = fully balanced.",
    )


# -------------------------------------------------------------------------------------- model

Activation = Literal["relu", "gelu", "tanh", "sigmoid", "leaky_relu", "silu"]
Init = Literal["glorot", "torch"]
INIT_DESCRIPTION = (
    "Weight initialisation: glorot (Glorot-uniform kernels, zero biases: fewer epochs to "
    "accuracy in our measurements) or torch (PyTorch's defaults)."
)


class _ModelBase(Section):
    init: Init = Field("glorot", description=INIT_DESCRIPTION)


class MLPConfig(_ModelBase):
    type: Literal["mlp"] = "mlp"
    hidden: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: [256, 128], description="Units of each hidden dense layer."
    )
    activation: Activation = Field("relu", description="Activation after each hidden layer.")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout after each hidden layer.")
    batch_norm: bool = Field(False, description="Batch normalization after each hidden layer.")


class BasicCNNConfig(_ModelBase):
    type: Literal["basic_cnn"] = "basic_cnn"
    filters: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: [32, 64], description="Filters of each [conv-conv-pool] block."
    )
    dense: int = Field(512, ge=1, description="Units of the dense layer before the head.")
    dropout: float = Field(0.25, ge=0, lt=1, description="After each conv block.")
    dense_dropout: float = Field(0.5, ge=0, lt=1, description="Dropout before the head.")
    batch_norm: bool = Field(False, description="Batch normalization after each convolution.")


class MobileNetConfig(_ModelBase):
    type: Literal["mobilenet"] = "mobilenet"
    width: float = Field(1.0, gt=0, le=4, description="Width multiplier of every layer.")
    channels: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: [32, 64, 128, 256],
        description="Output channels of the stem and each depthwise-separable stage.",
    )
    dropout: float = Field(0.2, ge=0, lt=1, description="Dropout before the head.")


class ResNetSmallConfig(_ModelBase):
    type: Literal["resnet_small"] = "resnet_small"
    width: int = Field(16, ge=1, description="Channels of the first stage (doubled per stage).")
    blocks: int = Field(2, ge=1, le=8, description="Residual blocks per stage (3 stages).")


class TextPoolConfig(_ModelBase):
    type: Literal["text_pool"] = "text_pool"
    embedding_dim: int = Field(16, ge=1, description="Size of each token's embedding.")
    hidden: int = Field(16, ge=1, description="Units of the dense layer after pooling.")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout before the head.")


class TextCNNConfig(_ModelBase):
    type: Literal["text_cnn"] = "text_cnn"
    embedding_dim: int = Field(64, ge=1, description="Size of each token's embedding.")
    filters: int = Field(64, ge=1, description="Filters per kernel size.")
    kernel_sizes: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: [3, 4, 5], description="Widths of the 1-D convolutions."
    )
    dropout: float = Field(0.5, ge=0, lt=1, description="Dropout before the head.")


class LinearConfig(_ModelBase):
    type: Literal["linear"] = "linear"


class AutoencoderConfig(_ModelBase):
    type: Literal["autoencoder"] = "autoencoder"
    kind: Literal["dense", "conv"] = Field("dense", description="Dense or convolutional.")
    hidden: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: [128], description="dense: encoder units (mirrored in the decoder)."
    )
    latent_dim: int = Field(16, ge=1, description="Size of the code in the middle.")


ModelConfig = Annotated[
    MLPConfig | BasicCNNConfig | MobileNetConfig | ResNetSmallConfig | TextPoolConfig
    | TextCNNConfig | LinearConfig | AutoencoderConfig,
    Field(discriminator="type"),
]
MODEL_TYPES = ("mlp", "basic_cnn", "mobilenet", "resnet_small", "text_pool", "text_cnn",
               "linear", "autoencoder")


# -------------------------------------------------------------------------------------- train


class _ScheduleBase(Section):
    warmup_steps: int = Field(0, ge=0, description="Linear warm-up from 0 to lr over these steps.")


class ConstantSchedule(_ScheduleBase):
    type: Literal["constant"] = "constant"


class StepSchedule(_ScheduleBase):
    type: Literal["step"] = "step"
    step_epochs: int = Field(10, ge=1, description="Multiply the LR by gamma every N epochs.")
    gamma: float = Field(0.1, gt=0, lt=1, description="Factor applied every step_epochs.")


class PlateauSchedule(_ScheduleBase):
    type: Literal["plateau"] = "plateau"
    monitor: str = Field("val_loss", description="Metric watched for a plateau.")
    mode: Literal["auto", "min", "max"] = Field("auto", description="auto: max for accuracy-like.")
    factor: float = Field(0.1, gt=0, lt=1, description="Multiply the LR by this on a plateau.")
    patience: int = Field(2, ge=0, description="Epochs without improvement before reducing.")
    min_lr: float = Field(0.0, ge=0, description="Never reduce below this.")


class ExponentialSchedule(_ScheduleBase):
    type: Literal["exponential"] = "exponential"
    decay_rate: float = Field(0.96, gt=0, lt=1, description="lr * decay_rate ** (step / decay_steps).")
    decay_steps: int = Field(100, ge=1, description="Steps per decay period.")
    staircase: bool = Field(False, description="Decay in whole steps of decay_steps.")


class InverseTimeSchedule(_ScheduleBase):
    type: Literal["inverse_time"] = "inverse_time"
    decay_rate: float = Field(0.5, gt=0, description="lr / (1 + decay_rate * step / decay_steps).")
    decay_steps: int = Field(100, ge=1, description="Steps per decay period.")
    staircase: bool = Field(False, description="Decay in whole steps of decay_steps.")


class CosineSchedule(_ScheduleBase):
    type: Literal["cosine"] = "cosine"
    min_lr: float = Field(0.0, ge=0, description="LR at the last step.")


class OneCycleSchedule(_ScheduleBase):
    type: Literal["one_cycle"] = "one_cycle"
    pct_start: float = Field(0.3, gt=0, lt=1, description="Share of steps spent rising to lr.")
    div_factor: float = Field(25.0, gt=1, description="Start LR = lr / div_factor.")
    final_div_factor: float = Field(1e4, gt=1, description="End LR = start LR / final_div_factor.")


ScheduleConfig = Annotated[
    ConstantSchedule | StepSchedule | PlateauSchedule | ExponentialSchedule
    | InverseTimeSchedule | CosineSchedule | OneCycleSchedule,
    Field(discriminator="type"),
]


class EarlyStoppingConfig(Section):
    monitor: str = Field("val_loss", description="Logged metric to watch, e.g. val_loss, val_accuracy.")
    mode: Literal["auto", "min", "max"] = Field("auto", description="auto: max for accuracy-like.")
    patience: int = Field(5, ge=0, description="Epochs without improvement before stopping.")
    min_delta: float = Field(0.0, ge=0, description="Smaller changes do not count as improvement.")
    restore_best: bool = Field(True, description="Load the best epoch's weights at the end.")


class CheckpointConfig(Section):
    monitor: str = Field("val_loss", description="Logged metric that ranks checkpoints.")
    mode: Literal["auto", "min", "max"] = Field("auto", description="auto: max for accuracy-like.")
    save_best_only: bool = Field(True, description="Write a checkpoint only when the monitor improves.")
    top_k: int = Field(1, ge=1, description="Keep this many best checkpoints.")
    save_last: bool = Field(True, description="Also keep the last epoch's state, for resume.")


class TrainConfig(Section):
    epochs: int = Field(10, ge=1, description="Passes over the training set.")
    batch_size: int = Field(128, ge=1, description="Samples per training step.")
    eval_batch_size: int = Field(1024, ge=1, description="Samples per batch when evaluating.")
    optimizer: Literal["sgd", "adam", "adamw", "rmsprop"] = Field("adam", description="Optimizer.")
    lr: float = Field(1e-3, gt=0, description="Peak learning rate.")
    momentum: float = Field(0.9, ge=0, lt=1, description="sgd and rmsprop.")
    nesterov: bool = Field(False, description="sgd: Nesterov momentum.")
    weight_decay: float = Field(0.0, ge=0, description="L2 via the optimizer (decoupled for adamw).")
    l2: float = Field(0.0, ge=0, description="Explicit L2 penalty l2 * sum(w^2) added to the loss.")
    grad_clip: float | None = Field(None, gt=0, description="Clip the gradient norm to this value.")
    loss: Literal["auto", "mse", "mae"] = Field("auto", description="Regression loss; auto = mse.")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="multiclass: smooth the targets.")
    schedule: ScheduleConfig = Field(
        default_factory=ConstantSchedule, description="LR schedule, chosen by `type`."
    )
    early_stopping: EarlyStoppingConfig | None = Field(
        default_factory=EarlyStoppingConfig, description="Stop when the monitor stops improving; false disables."
    )
    checkpoint: CheckpointConfig = Field(
        default_factory=CheckpointConfig, description="Best/last checkpoints in the run folder."
    )
    time_budget_s: float | None = Field(None, gt=0, description="Stop after this wall time.")
    mixed_precision: bool = Field(False, description="Autocast on CUDA; ignored on CPU.")
    channels_last: Literal["auto", "on", "off"] = Field(
        "auto", description="Memory format for conv nets; auto = on for CNNs."
    )
    num_threads: int | None = Field(None, ge=1, description="CPU threads; default all cores.")

    @field_validator("early_stopping", mode="before")
    @classmethod
    def _false_disables(cls, v: Any) -> Any:
        return None if v is False else v


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
                             f"instead of tuning it (got {self.choice})")
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


# ----------------------------------------------------------------------------------- evaluate


class ThresholdConfig(Section):
    """Binary decision threshold, chosen on the VALIDATION split and applied unchanged to test."""

    objective: Literal["max_f1", "min_recall", "min_precision", "fixed"] = Field(
        "max_f1", description="Maximize F1, meet a recall or precision target, or a fixed value."
    )
    value: float = Field(
        0.5, ge=0, le=1,
        description="min_recall/min_precision: the target for the positive class; fixed: the threshold.",
    )


class EvaluateConfig(Section):
    threshold: ThresholdConfig = Field(
        default_factory=ThresholdConfig, description="Binary/multi-label decision threshold."
    )
    baseline: bool = Field(True, description="Fit a classical scikit-learn baseline on the same split.")
    misclassified_examples: int = Field(16, ge=0, description="Images shown in the report.")


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
        default_factory=BasicCNNConfig,
        description="Architecture, chosen by `type`: " + ", ".join(MODEL_TYPES) + ".",
    )
    train: TrainConfig = Field(default_factory=TrainConfig, description="Optimizer, schedule, stopping.")
    tune: TuneConfig | None = Field(None, description="Hyperparameter search (Optuna).")
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig, description="Test evaluation.")
    registry: RegistryConfig = Field(default_factory=RegistryConfig, description="Model registry.")
    serve: ServeConfig = Field(default_factory=ServeConfig, description="Inference service.")
