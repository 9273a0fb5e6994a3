"""The rules of a GAN run (`model.type: dcgan`) that need only the config; the image shape is
checked when the model is built for the data (`models.dcgan.check_image_size`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dlforge.config.schema import RunConfig

GAN_MONITORS = ("val_frechet", "val_d_loss", "val_g_loss", "d_loss", "g_loss")


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
