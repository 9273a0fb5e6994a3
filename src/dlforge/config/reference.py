"""A Markdown reference of every config key, generated from the schema (docs/config.md)."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from dlforge.config import schema
from dlforge.config.data_schema import HFlipAug
from dlforge.config.muon_schema import MuonConfig
from dlforge.config.parallel_schema import ParallelConfig


def config_reference() -> str:
    """Markdown tables, one per section, listing key, type, default and description."""
    lines = ["# Config reference", "",
             "Generated from `src/dlforge/config/schema.py` by `python scripts/gen_config_docs.py`;",
             "`dlforge config schema` prints the same as JSON schema. Unknown keys are errors, and so",
             "are a key given twice, inf or NaN in any number, and `true`/`false` where a number",
             "is expected.", ""]
    for title, model in _sections():
        lines += [f"## `{title}`", ""]
        if model.__doc__ and not model.__doc__.startswith("Base of"):
            lines += [model.__doc__.strip().splitlines()[0], ""]
        lines += ["| key | type | default | description |", "|---|---|---|---|"]
        for name, field in model.model_fields.items():
            lines.append(f"| `{name}` | {_type(field.annotation)} | {_default(field)} | "
                         f"{_about(model, name, field).replace('|', '/')} |")
        lines.append("")
    return "\n".join([*lines, *_auto_section()])


def _about(model: type[BaseModel], name: str, field: Any) -> str:
    """A key's description; for a key only some model types take (`model_types` in the
    field's schema extra), under another type: that it is refused there."""
    only = (field.json_schema_extra or {}).get("model_types")
    kind = model.model_fields.get("type")
    if only and kind is not None and kind.default not in only:
        return (f"Not for model type {kind.default}: a config setting it is refused (only "
                f"{', '.join(only)} take it).")
    return field.description or ("Selects this variant." if name == "type" else "")


def _auto_section() -> list[str]:
    """What `model: auto` and `train.epochs: auto` pick, from config/auto.py's docstring."""
    from dlforge.config import auto

    body = auto.__doc__.strip().split("\n\n", 1)[1]
    return ["## What `auto` picks", "", body, ""]


def _sections() -> list[tuple[str, type[BaseModel]]]:
    return [
        ("(top level)", schema.RunConfig), ("data", schema.DataConfig),
        ("preprocess.image", schema.ImagePreprocess), ("preprocess.table", schema.TablePreprocess),
        ("preprocess.text", schema.TextPreprocess), ("augment", schema.AugmentConfig),
        ("augment.hflip", HFlipAug), ("augment.vflip", schema.FlipAug), ("augment.crop", schema.CropAug),
        ("augment.rotate", schema.RotateAug), ("augment.brightness / augment.contrast", schema.JitterAug),
        ("augment.noise", schema.NoiseAug), ("balance", schema.BalanceConfig),
        ("model (type: mlp)", schema.MLPConfig), ("model (type: basic_cnn)", schema.BasicCNNConfig),
        ("model (type: mobilenet)", schema.MobileNetConfig),
        ("model (type: resnet_small)", schema.ResNetSmallConfig),
        ("model (type: airbench)", schema.AirbenchConfig),
        ("model (type: text_pool)", schema.TextPoolConfig), ("model (type: text_cnn)", schema.TextCNNConfig),
        ("model (type: linear)", schema.LinearConfig), ("model (type: autoencoder)", schema.AutoencoderConfig),
        ("model (type: dcgan)", schema.DCGANConfig),
        ("model (type: auto)", schema.AutoModelConfig),
        ("model.parallel (mlp, basic_cnn)", ParallelConfig),
        ("train", schema.TrainConfig),
        ("train.schedule (type: constant)", schema.ConstantSchedule),
        ("train.schedule (type: step)", schema.StepSchedule),
        ("train.schedule (type: plateau)", schema.PlateauSchedule),
        ("train.schedule (type: exponential)", schema.ExponentialSchedule),
        ("train.schedule (type: inverse_time)", schema.InverseTimeSchedule),
        ("train.schedule (type: cosine)", schema.CosineSchedule),
        ("train.schedule (type: linear)", schema.LinearSchedule),
        ("train.schedule (type: one_cycle)", schema.OneCycleSchedule),
        ("train.muon (optimizer: muon)", MuonConfig),
        ("train.early_stopping", schema.EarlyStoppingConfig), ("train.checkpoint", schema.CheckpointConfig),
        ("tune", schema.TuneConfig), ("tune.space.<key>", schema.RangeSpec),
        ("evaluate", schema.EvaluateConfig), ("evaluate.threshold", schema.ThresholdConfig),
        ("evaluate.gate", schema.GateConfig), ("transfer", schema.TransferConfig),
        ("registry", schema.RegistryConfig), ("serve", schema.ServeConfig),
        ("drift", schema.DriftConfig),
        ("review", schema.ReviewConfig),
    ]


def _type(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(dict.fromkeys(_type(a) for a in args))  # a union of sections: "section"
    if origin is typing.Annotated:
        return _type(args[0])
    if origin in (list, tuple, dict):
        return f"{origin.__name__}[{', '.join(_type(a) for a in args if a is not Ellipsis)}]"
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    return getattr(annotation, "__name__", str(annotation)).replace("|", "/")


def _default(field: Any) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
        return "(section)" if isinstance(value, BaseModel) else f"`{value}`"
    if field.default is PydanticUndefined:
        return "required"
    return f"`{field.default}`" if field.default is not None else "`null`"
