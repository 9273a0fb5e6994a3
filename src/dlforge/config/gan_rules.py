"""The defaults and rules of a GAN run (`model.type: dcgan`) that need only the config; the
image shape is checked when the model is built for the data (`models.dcgan.check_image_size`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dlforge.config.schema import RunConfig

GAN_MONITORS = ("val_frechet", "val_d_loss", "val_g_loss", "d_loss", "g_loss")
GAN_MONITOR = "val_frechet"  # what a GAN's checkpoints and early stopping watch unless told


def gan_defaults(raw: Any) -> Any:
    """`raw` (a config as loaded, before validation) with a GAN's own defaults wherever the
    config leaves a key out: ``preprocess.image.standardize: false`` (the generator outputs
    pixels in [0, 1]) and `GAN_MONITOR` for ``train.checkpoint.monitor``,
    ``train.early_stopping.monitor`` (unless early stopping is off) and a plateau schedule's
    monitor (a GAN logs no ``val_loss``, the default of the other tasks). Other configs, and
    keys the config gives, are unchanged (the rules then judge them).

    Example:
        >>> gan_defaults({"model": {"type": "dcgan"}})["train"]
        {'checkpoint': {'monitor': 'val_frechet'}, 'early_stopping': {'monitor': 'val_frechet'}}
    """
    model = raw.get("model") if isinstance(raw, dict) else None
    if (model.get("type") if isinstance(model, dict) else getattr(model, "type", None)) != "dcgan":
        return raw
    raw = dict(raw)
    image = _section(_section(raw, "preprocess"), "image")
    _default(image, "standardize", False)
    train = _section(raw, "train")
    _default(_section(train, "checkpoint"), "monitor", GAN_MONITOR)
    if isinstance(train, dict) and train.get("early_stopping", {}) not in (None, False):
        _default(_section(train, "early_stopping"), "monitor", GAN_MONITOR)
    schedule = _section(train, "schedule", create=False)
    if isinstance(schedule, dict) and schedule.get("type") == "plateau":
        _default(schedule, "monitor", GAN_MONITOR)
    return raw


def _section(parent: Any, key: str, *, create: bool = True) -> Any:
    """``parent[key]`` as a copy of its dict, stored back in `parent` (a new empty one if the
    key is absent and `create`); anything else (a section object, None, a bool) is returned
    as it is, for the schema to judge."""
    if not isinstance(parent, dict) or (key not in parent and not create):
        return None
    value = parent.get(key, {})
    if isinstance(value, dict):
        value = parent[key] = dict(value)
    return value


def _default(section: Any, key: str, value: Any) -> None:
    if isinstance(section, dict):
        section.setdefault(key, value)


def gan_problems(cfg: RunConfig) -> list[str]:
    """One line per problem of a `model.type: dcgan` config (empty for other models).

    Example:
        >>> from dlforge.config.schema import RunConfig
        >>> gan_problems(RunConfig())  # the default model is a basic_cnn
        []
    """
    if cfg.model.type != "dcgan":
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
