"""What a registered model can be asked for: a GAN (`model.type: dcgan`) generates images,
every other model predicts. The one check every command makes before anything runs."""

from __future__ import annotations

from pathlib import Path

from dlforge.config.model_schema import GAN_TYPE
from dlforge.errors import ConfigError
from dlforge.registry.bundle import model_type

__all__ = ["check_bundle_kind", "check_model_kind"]


def check_model_kind(ref: str, is_gan: bool, *, generate: bool = False, key: str = "model",
                     role: str = "", fix: str = "") -> None:
    """Refuse a model the command cannot use: a GAN for a command that predicts or trains on
    labels (predict, evaluate, inspect, export, profile, serve, promote, update, finetune),
    any other model for `dlforge generate`.

    Args:
        ref: the model as the message names it (``digits-gan@1``).
        is_gan: whether the model is a GAN (`isinstance(model, GAN)`, or
            `check_bundle_kind` for a bundle, without loading the weights).
        generate: the command generates images (`dlforge generate`).
        key: the config key or option the message starts with (``transfer.source (--from)``).
        role: what the model is to the command, when its name alone does not say it
            (``which holds digits@production``).
        fix: what to do instead of using a GAN here; default: use it with `dlforge generate`
            (for commands that only read the model).

    Raises:
        ConfigError: one line naming the model and what to do instead; like a config error
            it is refused before anything runs (the CLI's exit 2, the server's 422).

    Example:
        >>> check_model_kind("digits@1", False)
        >>> check_model_kind("digits-gan@1", True)
        Traceback (most recent call last):
        ...
        dlforge.errors.ConfigError: model: digits-gan@1 is a GAN (model.type dcgan): it generates images (`dlforge generate`) and predicts nothing
        >>> check_model_kind("mix@1", True, key="champion", role="which holds mix@production",
        ...                  fix="point the alias with `dlforge models alias`")
        Traceback (most recent call last):
        ...
        dlforge.errors.ConfigError: champion: mix@1, which holds mix@production, is a GAN (model.type dcgan): it generates images and predicts nothing; point the alias with `dlforge models alias`
        >>> check_model_kind("digits@1", False, generate=True)
        Traceback (most recent call last):
        ...
        dlforge.errors.ConfigError: model: digits@1 is not a GAN (model.type dcgan), so it generates no images; use `dlforge predict` for it
    """
    if is_gan and not generate:
        named = f"{ref}, {role}," if role else ref
        todo = f"; {fix}" if fix else ""
        use = "" if fix else " (`dlforge generate`)"
        raise ConfigError(f"{key}: {named} is a GAN (model.type {GAN_TYPE}): it generates "
                          f"images{use} and predicts nothing{todo}")
    if generate and not is_gan:
        raise ConfigError(f"{key}: {ref} is not a GAN (model.type {GAN_TYPE}), so it generates "
                          f"no images; use `dlforge predict` for it")


def check_bundle_kind(ref: str, bundle_path: str | Path, *, generate: bool = False,
                      key: str = "model", role: str = "", fix: str = "") -> None:
    """`check_model_kind` for a registered version's bundle directory, from its model.json
    alone (the weights are not loaded).

    Raises:
        ConfigError: as `check_model_kind`.
        NotFoundError / DataError: model.json is missing or corrupt.
    """
    check_model_kind(ref, model_type(bundle_path) == GAN_TYPE, generate=generate, key=key,
                     role=role, fix=fix)
