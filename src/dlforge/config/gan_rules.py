"""The defaults and rules of a GAN run (`model.type: dcgan`) that need only the config; the
image shape is checked when the model is built for the data (`models.dcgan.check_image_size`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from dlforge.config.model_schema import GAN_TYPE

if TYPE_CHECKING:
    from dlforge.config.schema import RunConfig

GAN_MONITORS = ("val_frechet", "val_d_loss", "val_g_loss", "d_loss", "g_loss")
GAN_MONITOR = "val_frechet"  # what a GAN's checkpoints and early stopping watch unless told


def gan_defaults(raw: Any) -> Any:
    """`raw` (a config as loaded, before validation) with a GAN's own defaults wherever the
    config leaves a key out: ``preprocess.image.standardize: false`` (the generator outputs
    pixels in [0, 1]) and `GAN_MONITOR` for ``train.checkpoint.monitor``,
    ``train.early_stopping.monitor`` (unless early stopping is off) and a plateau schedule's
    monitor (a GAN logs no ``val_loss``, the default of the other tasks). A section may be a
    dict (a key it lacks is left out) or a section object (`RunConfig(train=TrainConfig(...))`:
    a field not in its ``model_fields_set`` is left out). Other configs, and keys the config
    gives, are unchanged (the rules then judge them).

    Example:
        >>> gan_defaults({"model": {"type": "dcgan"}})["train"]
        {'checkpoint': {'monitor': 'val_frechet'}, 'early_stopping': {'monitor': 'val_frechet'}}
    """
    model = raw.get("model") if isinstance(raw, dict) else None
    if (model.get("type") if isinstance(model, dict) else getattr(model, "type", None)) != GAN_TYPE:
        return raw
    raw = _with_default(raw, ("preprocess", "image", "standardize"), False)
    raw = _with_default(raw, ("train", "checkpoint", "monitor"), GAN_MONITOR)
    raw = _with_default(raw, ("train", "early_stopping", "monitor"), GAN_MONITOR)
    schedule = _child(_child(raw, "train"), "schedule")
    if _child(schedule, "type") == "plateau":
        raw = _with_default(raw, ("train", "schedule", "monitor"), GAN_MONITOR)
    return raw


def _with_default(section: Any, path: tuple[str, ...], value: Any) -> Any:
    """`section` with `value` at the dotted `path` where the user did not set it, as a copy:
    a dict lacking the key gets it, a section object lacking it in ``model_fields_set`` is
    rebuilt with it. Anything else on the way (None: early stopping off, a bool, a list) is
    returned as it is, for the schema to judge."""
    key, rest = path[0], path[1:]
    if isinstance(section, dict):
        if key in section and not rest:
            return section
        return {**section, key: _with_default(section.get(key, {}), rest, value) if rest else value}
    if isinstance(section, BaseModel) and key in type(section).model_fields:
        if key in section.model_fields_set and not rest:
            return section
        child = _with_default(getattr(section, key), rest, value) if rest else value
        if child is getattr(section, key):
            return section
        given = {name: getattr(section, name) for name in section.model_fields_set}
        return type(section)(**(given | {key: child}))  # validated again, `key` now set
    return section


def _child(section: Any, key: str) -> Any:
    """``section[key]`` of a dict, the field of a section object, else None."""
    if isinstance(section, dict):
        return section.get(key)
    return getattr(section, key, None) if isinstance(section, BaseModel) else None


def gan_problems(cfg: RunConfig) -> list[str]:
    """One line per problem of a `model.type: dcgan` config (empty for other models).

    Example:
        >>> from dlforge.config.schema import RunConfig
        >>> gan_problems(RunConfig())  # the default model is a basic_cnn
        []
    """
    if cfg.model.type != GAN_TYPE:
        return []
    problems = []
    image = cfg.preprocess.image
    if image.standardize or not image.scale:
        problems.append("preprocess.image: a DCGAN generator outputs pixels in [0, 1]; set "
                        "scale: true and standardize: false (got scale: "
                        f"{str(image.scale).lower()}, standardize: {str(image.standardize).lower()})")
    if cfg.tune is not None:
        problems.append("tune: a GAN run is not searched yet (the search ranks val_loss, "
                        "val_accuracy or val_mae, which a GAN does not log); remove the tune section")
    if cfg.train.l2:
        problems.append(f"train.l2: not applied to a GAN's two networks; use train.weight_decay "
                        f"(got {cfg.train.l2})")
    watched = [("train.checkpoint.monitor", cfg.train.checkpoint.monitor)]
    if cfg.train.early_stopping is not None:
        watched.append(("train.early_stopping.monitor", cfg.train.early_stopping.monitor))
    if cfg.train.schedule.type == "plateau":
        watched.append(("train.schedule.monitor", cfg.train.schedule.monitor))
    problems += [f"{key}: a GAN logs {', '.join(GAN_MONITORS)}; watch one of them, e.g. "
                 f"val_frechet (got {name!r})" for key, name in watched if name not in GAN_MONITORS]
    return problems
