"""Config sections for models, one per `model.type`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from dlforge.config.base import Section
from dlforge.config.parallel_schema import SPLITTABLE, ParallelConfig

# -------------------------------------------------------------------------------------- model

Activation = Literal["relu", "gelu", "tanh", "sigmoid", "leaky_relu", "silu"]
Init = Literal["glorot", "torch"]
INIT_DESCRIPTION = (
    "Weight initialisation: glorot (Glorot-uniform kernels, zero biases: fewer epochs to "
    "accuracy in our measurements) or torch (PyTorch's defaults)."
)


class _ModelBase(Section):
    init: Init = Field("glorot", description=INIT_DESCRIPTION)
    parallel: ParallelConfig | None = Field(
        None, description=f"Pipeline model parallelism: the layers split into stages across "
        f"processes (model.parallel); only model types {', '.join(SPLITTABLE)} take it.",
        json_schema_extra={"model_types": list(SPLITTABLE)})  # the rule in parallel_problems


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
    downscale: int = Field(
        1, ge=1, le=16, description="Average-pool the input by this factor before the first "
        "convolution (2 halves each side): large images train several times faster; "
        "`model: auto` picks it so that the side the convolutions see is at most 64 px.")
    stem_stride: Literal[1, 2] = Field(
        1, description="Stride of the first convolution: 2 halves each side there, so every "
        "later layer costs a quarter; `model: auto` uses 2 when the side after `downscale` is "
        "at least 48 px.")


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


class AirbenchConfig(_ModelBase):
    """The CIFAR-10 recipe's net (models/airbench.py, docs/cifar10.md)."""

    type: Literal["airbench"] = "airbench"
    widths: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: [64, 256, 256],
        description="Channels of each [conv-pool-BN-GELU-conv-BN-GELU] block; each block "
        "halves H and W.")
    whiten: bool = Field(
        True, description="First layer: a frozen patch-whitening convolution initialised from "
        "the training images' patch covariance when the model is built for the data; false: "
        "a trainable convolution of the same shape.")
    whiten_size: int = Field(2, ge=1, le=5, description="Side of the whitening patches (px).")
    test_flip: bool = Field(
        True, description="In eval mode, average the logits of each image and its mirror "
        "image (test-time flip augmentation); training is unchanged.")
    tta_translate: bool = Field(
        False, description="With test_flip, also average over 1-px translations (airbench's "
        "test-time augmentation level 2): logits = 1/2 flip-averaged logits of the image + 1/4 "
        "those of the image shifted 1 px up-left + 1/4 down-right (reflect padding).")
    bn_momentum: float = Field(
        0.1, gt=0, le=1, description="Batch-norm running-statistics momentum (PyTorch "
        "convention: the weight of the new batch); airbench uses 0.4.")
    bn_eps: float = Field(1e-5, gt=0, description="Batch-norm epsilon; airbench uses 1e-12.")
    bn_scale: bool = Field(
        True, description="Train the batch-norm scales; false: frozen at 1, only the shifts "
        "train (airbench).")
    dirac_init: bool = Field(
        False, description="Initialise the first in-channels filters of each block convolution "
        "as the identity (dirac), after model.init, as airbench does (with init: torch).")
    pool_floor: bool = Field(
        False, description="Block max-pools drop an odd last row/column (airbench: 31 -> 15 -> "
        "7 -> 3 px, then a 3x3 max); false: they keep it (31 -> 16 -> 8 -> 4).")
    whiten_bias_epochs: int | None = Field(
        None, ge=0, description="Train the whitening layer's bias for this many epochs, then "
        "freeze it (airbench: 3); null: it trains throughout.")

    @model_validator(mode="after")
    def _translate_needs_flip(self) -> AirbenchConfig:
        if self.tta_translate and not self.test_flip:
            raise ValueError("model.tta_translate: averages flip-averaged logits, so it needs "
                             "model.test_flip: true (got test_flip: false)")
        return self


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


class AutoModelConfig(Section):
    """`model: auto`: the pipeline picks the family and width from the prepared data
    (config/auto.py) before the run is recorded; the run stores the model it picked."""

    type: Literal["auto"] = "auto"


class AutoencoderConfig(_ModelBase):
    type: Literal["autoencoder"] = "autoencoder"
    kind: Literal["dense", "conv"] = Field("dense", description="Dense or convolutional.")
    hidden: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: [128], description="dense: encoder units (mirrored in the decoder)."
    )
    latent_dim: int = Field(16, ge=1, description="Size of the code in the middle.")


GAN_TYPE = "dcgan"  # the `model.type` of a GAN: other tasks predict, a GAN generates images


class DCGANConfig(_ModelBase):
    """A GAN (`model.type: dcgan` makes the run a GAN task); see docs/gan.md."""

    type: Literal["dcgan"] = "dcgan"
    latent_dim: int = Field(64, ge=1, description="Size of the generator's noise vector z.")
    width: int = Field(32, ge=1, description="Channels of the widest conv layer of G and D.")
    loss: Literal["non_saturating", "hinge"] = Field(
        "non_saturating", description="non_saturating (BCE, G maximizes log D(G(z))) or hinge.")
    label_smoothing: float = Field(
        0.0, ge=0, lt=0.5, description="non_saturating: D's target for real images is 1 - this.")
    spectral_norm: bool = Field(False, description="Spectral norm on the discriminator's layers.")
    d_steps: int = Field(1, ge=1, description="Discriminator updates per generator update.")
    d_lr_scale: float = Field(
        1.0, gt=0, description="The discriminator's LR = this x the generator's scheduled LR.")
    grid: int = Field(64, ge=1, le=256, description="Samples in each epoch's grid (fixed z).")
    classifier_epochs: int = Field(
        5, ge=1, description="Epochs of the basic_cnn trained on the same data whose features "
        "measure the Frechet distance, confidence and class coverage.")

    @model_validator(mode="after")
    def _smoothing_needs_bce(self) -> DCGANConfig:
        if self.loss == "hinge" and self.label_smoothing:
            raise ValueError(f"label_smoothing: applies to the non_saturating loss only; set it to "
                             f"0 with loss: hinge (got {self.label_smoothing})")
        return self


ModelConfig = Annotated[
    MLPConfig | BasicCNNConfig | MobileNetConfig | ResNetSmallConfig | AirbenchConfig | TextPoolConfig
    | TextCNNConfig | LinearConfig | AutoencoderConfig | DCGANConfig | AutoModelConfig,
    Field(discriminator="type"),
]
MODEL_TYPES = ("auto", "mlp", "basic_cnn", "mobilenet", "resnet_small", "airbench", "text_pool",
               "text_cnn", "linear", "autoencoder", "dcgan")
