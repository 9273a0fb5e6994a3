"""Config sections for training: optimizer, schedules, early stopping, checkpoints."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from dlforge.config.base import Section
from dlforge.config.ema_schema import EmaConfig
from dlforge.config.muon_schema import MuonConfig, muon_problems

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
    monitor: str = Field("val_loss", description="Metric watched for a plateau (a dcgan's default: "
                         "val_frechet).")
    mode: Literal["auto", "min", "max"] = Field("auto", description="auto: max for accuracy-like.")
    factor: float = Field(0.1, gt=0, lt=1, description="Multiply the LR by this on a plateau.")
    patience: int = Field(2, ge=0, description="Epochs without improvement before reducing "
                          "(epochs that log the monitor: validations under train.val_every).")
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


class LinearSchedule(_ScheduleBase):
    type: Literal["linear"] = "linear"
    min_lr: float = Field(0.0, ge=0, description="Linear decay from lr at the first step "
                          "towards min_lr after the last: step t of T runs at min_lr + (lr - "
                          "min_lr) x (1 - t / T) (airbench94_muon's schedule with 0).")


class OneCycleSchedule(_ScheduleBase):
    type: Literal["one_cycle"] = "one_cycle"
    pct_start: float = Field(0.3, gt=0, lt=1, description="Share of steps spent rising to lr.")
    div_factor: float = Field(25.0, gt=1, description="Start LR = lr / div_factor.")
    final_div_factor: float = Field(1e4, gt=1, description="End LR = start LR / final_div_factor.")
    anneal: Literal["cos", "linear"] = Field(
        "cos", description="Shape of both phases: cosine (torch's default) or linear.")


ScheduleConfig = Annotated[
    ConstantSchedule | StepSchedule | PlateauSchedule | ExponentialSchedule
    | InverseTimeSchedule | CosineSchedule | LinearSchedule | OneCycleSchedule,
    Field(discriminator="type"),
]


class EarlyStoppingConfig(Section):
    monitor: str = Field("val_loss", description="Logged metric to watch, e.g. val_loss, val_accuracy "
                         "(a dcgan's default: val_frechet).")
    mode: Literal["auto", "min", "max"] = Field("auto", description="auto: max for accuracy-like.")
    patience: int = Field(5, ge=0, description="Epochs without improvement before stopping "
                          "(validations under train.val_every).")
    min_delta: float = Field(0.0, ge=0, description="Smaller changes do not count as improvement.")
    restore_best: bool = Field(True, description="Load the best epoch's weights at the end.")


class CheckpointConfig(Section):
    monitor: str = Field("val_loss", description="Logged metric that ranks checkpoints (a dcgan's "
                         "default: val_frechet).")
    mode: Literal["auto", "min", "max"] = Field("auto", description="auto: max for accuracy-like.")
    save_best_only: bool = Field(
        True, description="Write a checkpoint only when the monitor improves; false: one per "
        "validated epoch (every epoch unless train.val_every spaces validations out).")
    top_k: int = Field(1, ge=1, description="Keep this many best checkpoints.")
    save_last: bool = Field(True, description="Also keep the last epoch's state, for resume.")
    every_steps: int | None = Field(
        None, ge=1, description="Also write last.pt every this many optimizer steps, inside "
        "epochs too, with the data loader's position, so a resumed run continues mid-epoch; "
        "null: at epoch ends only.")

    @model_validator(mode="after")
    def _every_steps_writes_last(self) -> CheckpointConfig:
        if self.every_steps is not None and not self.save_last:
            raise ValueError(f"train.checkpoint.every_steps: {self.every_steps} writes last.pt, "
                             "but save_last is false; set save_last: true or every_steps: null")
        return self


class TrainConfig(Section):
    epochs: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        "auto", description="Passes over the training set; auto: sized to the training set "
        "(config/auto.py), with early stopping and a time budget.")
    batch_size: int = Field(128, ge=1, description="Samples per training step.")
    eval_batch_size: int = Field(1024, ge=1, description="Samples per batch when evaluating.")
    optimizer: Literal["sgd", "adam", "adamw", "rmsprop", "muon"] = Field(
        "adam", description="Optimizer; muon: Muon for hidden weight matrices, SGD for the rest "
        "(train.muon, train/muon.py).")
    lr: float = Field(1e-3, gt=0, description="Peak learning rate.")
    momentum: float = Field(0.9, ge=0, lt=1, description="sgd and rmsprop (muon: its SGD part).")
    nesterov: bool = Field(False, description="sgd (and muon's SGD part): Nesterov momentum.")
    weight_decay: float = Field(0.0, ge=0, description="L2 via the optimizer (decoupled for adamw).")
    bias_lr_scale: float = Field(
        1.0, gt=0, description="Multiply the LR of normalization layers' shifts (batch-norm "
        "biases) by this (airbench: 64).")
    decay_biases: bool = Field(
        False, description="Also weight-decay biases and normalization parameters (airbench), "
        "at the weights' per-step rate: a group's weight_decay is divided by its bias_lr_scale, "
        "so lr x decay is the same for every parameter with sgd and adamw (adam and rmsprop "
        "rescale the decay with the gradient). Default: they are never decayed (train/optim.py "
        "says why).")
    l2: float = Field(0.0, ge=0, description="Explicit L2 penalty l2 * sum(w^2) added to the loss.")
    grad_clip: float | None = Field(None, gt=0, description="Clip the gradient norm to this value.")
    loss: Literal["auto", "mse", "mae"] = Field("auto", description="Regression loss; auto = mse.")
    label_smoothing: float = Field(
        0.0, ge=0, lt=1, description="Classification: smooth the targets (multiclass: 1 - s + s/K "
        "and s/K; binary and multi-label: 1 - s/2 and s/2).")
    schedule: ScheduleConfig = Field(
        default_factory=ConstantSchedule, description="LR schedule, chosen by `type`."
    )
    early_stopping: EarlyStoppingConfig | None = Field(
        default_factory=EarlyStoppingConfig, description="Stop when the monitor stops improving; false disables."
    )
    checkpoint: CheckpointConfig = Field(
        default_factory=CheckpointConfig, description="Best/last checkpoints in the run folder."
    )
    ema: EmaConfig | None = Field(None, description="Average the weights (EMA); null: off.")
    val_every: int = Field(
        1, ge=1, description="Validate after every N-th epoch (epochs N-1, 2N-1, ... counted "
        "from 0) and always after the last one, also when the time budget ends the run (early "
        "stopping stops only after a validation). Epochs without validation log training "
        "metrics only. Monitors act on the epochs that log their metric: early stopping's "
        "patience, checkpoint ranking, a plateau schedule on a val_ metric and search pruning "
        "count validations; early stopping and checkpoints must then watch a val_ metric.")
    muon: MuonConfig | None = Field(None, description="optimizer muon: Muon's settings; null: the defaults.")
    time_budget_s: float | None = Field(
        None, gt=0, description="Stop after this wall time; with epochs: auto, default sized to "
        "the training set (config/auto.py).")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="Compute precision; auto = fp16/bf16 autocast on CUDA, bf16 on CPUs "
        "with native bfloat16 for the CNNs it speeds up, else fp32 (docs/performance.md)."
    )
    channels_last: Literal["auto", "on", "off"] = Field(
        "auto", description="Memory format for conv nets; auto = on for CNNs."
    )
    dense_kernel: Literal["auto", "aten", "onednn"] = Field(
        "auto", description="GEMM of fp32 dense layers on CPU; auto = oneDNN on non-Intel x86 "
        "CPUs with AVX-512 (MKL is slow there), aten = torch's F.linear; bf16 and GPUs keep "
        "F.linear (docs/performance.md)."
    )
    dropout_kernel: Literal["auto", "aten", "pcg"] = Field(
        "auto", description="Random bits of nn.Dropout masks on CPU; auto = numpy's PCG64 on "
        "non-Intel CPUs (torch's bernoulli is serial there), aten = torch's (docs/performance.md)."
    )
    conv_bias_grad: Literal["auto", "kernel", "sum"] = Field(
        "auto", description="Who computes Conv2d bias gradients; auto = torch's sum on CPU in "
        "fp32 (oneDNN's is a serial loop), kernel = the convolution kernel's; bf16 and GPUs "
        "keep the kernel's (docs/performance.md)."
    )
    num_threads: int | None = Field(None, ge=1, description="CPU threads; default the machine's "
                                    "physical cores (with --nproc: divided among the processes).")
    lr_scaling: Literal["none", "linear", "sqrt"] = Field(
        "none", description="Data parallelism (`--nproc`): lr x processes (linear), x sqrt(processes) "
        "or unchanged; batch_size is per process (docs/distributed.md)."
    )

    @field_validator("early_stopping", mode="before")
    @classmethod
    def _false_disables(cls, v: Any) -> Any:
        return None if v is False else v

    @field_validator("channels_last", mode="before")
    @classmethod
    def _yaml_on_off(cls, v: Any) -> Any:
        # YAML 1.1 reads a bare on/off (also yes/no, true/false) as a boolean: the file's
        # `channels_last: off` and `--set train.channels_last=off` mean the word
        return ("on" if v else "off") if isinstance(v, bool) else v

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        problems = []
        # sgd, and muon's SGD part (its biases, norms and head)
        if self.optimizer in ("sgd", "muon") and self.nesterov and self.momentum == 0:
            problems.append(f"train.nesterov: needs train.momentum > 0 (got {self.momentum})")
        problems += muon_problems(self)
        min_lr = getattr(self.schedule, "min_lr", 0.0)
        if min_lr > self.lr:
            problems.append(f"train.schedule.min_lr: must be at most train.lr = {self.lr} (got {min_lr})")
        if self.ema is not None and self.early_stopping is not None and self.early_stopping.restore_best:
            problems.append("train.ema: needs train.early_stopping.restore_best: false (got true); "
                            "the trained model is the weight average, which restoring the best "
                            "epoch's weights would replace (or set train.early_stopping: false)")
        problems += self._val_every_problems()
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _val_every_problems(self) -> list[str]:
        """With `val_every` > 1, a monitor logged every epoch could make an epoch without
        validation the best checkpoint or the restored/stopping epoch."""
        watched = [("early_stopping", self.early_stopping), ("checkpoint", self.checkpoint)]
        return [f"train.{key}.monitor: {section.monitor!r} is logged every epoch, but "
                f"train.val_every is {self.val_every}, so it could pick an epoch that was not "
                f"validated; watch a validation metric (e.g. 'val_{section.monitor}') or set "
                f"train.val_every: 1"
                for key, section in watched
                if self.val_every > 1 and section is not None and not section.monitor.startswith("val_")]
