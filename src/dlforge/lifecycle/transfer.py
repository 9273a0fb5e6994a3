"""Transfer learning: train a candidate from a registered model's weights, through the one path.

The source's preprocessing is reused as fitted (refitting it would change what the backbone
sees), its architecture replaces the config's, and its head (the dense classifier, if any, and
the output layer: `head_layers`) is replaced when the classes differ. `feature_extraction`
freezes the backbone and its BatchNorm statistics and trains the head; `finetune` trains the
head alone for `transfer.freeze_epochs` epochs, then every layer with the backbone at
`train.lr * transfer.backbone_lr_mult` (its own optimizer group).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from dlforge.candidate import TrainingPlan
from dlforge.config import RunConfig, load_config
from dlforge.data.prepare import load_and_split, prepare_splits
from dlforge.errors import ConfigError, DataError
from dlforge.models.head import head_prefix, submodule
from dlforge.registry.bundle import Bundle, load_bundle
from dlforge.registry.model_kind import check_bundle_kind
from dlforge.train.optim import LR_SCALE
from dlforge.train.steps import SupervisedStep

if TYPE_CHECKING:
    from dlforge.data.dataset import Dataset
    from dlforge.registry import ModelVersion, Store
    from dlforge.train.state import LoopState

FEATURE_EXTRACTION = "feature_extraction"
# The layers of a model that form its head when it is transferred (`head_layers`), in order.
HEAD_LAYERS = ("classifier", "head")


@dataclass(frozen=True)
class Transfer:
    """A training plan that starts from `source`, and the version it descends from.

    Attributes:
        plan: the candidate's plan (config with the source's model, data through its preprocessing).
        source: the source version.
        parent_version: `source.version` when the candidate keeps the source's name (lineage in
            the store), else None (the source is still named in `plan.trained_on`).
    """

    plan: TrainingPlan
    source: ModelVersion
    parent_version: int | None


def transfer_plan(cfg: RunConfig, store: Store, model_name: str) -> Transfer:
    """The plan of a candidate trained from `cfg.transfer.source`.

    Raises:
        NotFoundError: unknown source model, version or alias.
        DataError: a source whose modality or input shape cannot take the data.
        ConfigError: a source model without a `head` layer to retrain; a GAN.
    """
    source = store.resolve(cfg.transfer.source)
    # before its weights are loaded and its model section taken (its rules would name keys
    # the user never set)
    check_bundle_kind(source.ref, source.bundle_path, key="transfer.source (--from)",
                      fix="fine-tune from a classifier or a regressor (`dlforge models list` "
                          "shows each model's type)")
    bundle = load_bundle(source.bundle_path)
    config = _source_config(cfg, source, bundle)
    dataset, splits, report = load_and_split(config)
    check_fits(bundle, source.ref, dataset)
    data = prepare_splits(config, dataset, splits, report, preprocessor=bundle.preprocessor)
    new_head = tuple(dataset.task.class_names) != tuple(bundle.task.class_names)
    t = config.transfer
    trained_on = {"splits": "train", "samples": len(splits.train),
                  "transfer": {"source": source.ref, "mode": t.mode, "new_head": new_head}}
    plan = TrainingPlan(config, data, step=TransferStep(t.mode, t.freeze_epochs),
                        trained_on=trained_on,
                        prepare_model=partial(start_from, state=bundle.model.state_dict(),
                                              new_head=new_head, cfg=config))
    return Transfer(plan, source, source.version if source.name == model_name else None)


def _source_config(cfg: RunConfig, source: ModelVersion, bundle: Bundle) -> RunConfig:
    """`cfg` with the source's model section, and its source pinned to the resolved version
    (an alias may move before a resumed run rebuilds the plan)."""
    raw = cfg.model_dump(mode="json")
    raw["model"] = bundle.model_config
    raw["transfer"]["source"] = source.ref
    return load_config(raw)


def check_fits(bundle: Bundle, ref: str, dataset: Dataset) -> None:
    """Refuse data the source model cannot take, naming both shapes.

    Raises:
        DataError: another modality, or samples the source's preprocessing turns into another shape.
    """
    kind = bundle.input_spec.get("modality", bundle.preprocessor.kind)
    if kind != dataset.modality:
        raise DataError(f"transfer.source: {ref} takes {kind} inputs, this data is "
                        f"{dataset.modality}; choose a source trained on {dataset.modality} data")
    want = tuple(bundle.input_shape)
    try:
        got = tuple(bundle.preprocessor.transform(dataset.subset([0]).x).shape[1:])
        detail = f", {list(got)} after its preprocessing"
    except (ValueError, KeyError, IndexError) as exc:  # the preprocessor refuses the shape
        got, detail = None, f" ({str(exc).splitlines()[0]})"
    if got != want:
        fix = {"image": "resize the data (data.image_size)",
               "text": "give it the texts in the column the source read (data.text_column)"}.get(
            kind, "give it the columns the source was trained on (data.feature_columns)")
        raise DataError(f"transfer.source: {ref} takes inputs of shape {list(want)} (raw "
                        f"{bundle.input_spec.get('raw_shape')}); this data's samples are "
                        f"{list(dataset.sample_shape)}{detail}; {fix} or choose a source "
                        f"trained on this shape")


def start_from(model: nn.Module, *, state: dict[str, Tensor], new_head: bool, cfg: RunConfig) -> nn.Module:
    """Load the source's weights into `model`, all but the head's when `new_head` (the output
    layer starts at zero, so its first logits are neutral; a dense classifier before it keeps
    its fresh initialisation), then freeze the backbone (feature extraction) or scale its LR
    (fine-tuning). `head_layers` says which layers are the head."""
    heads = head_layers(model)
    prefixes = tuple(f"{name}." for name, _ in heads)
    if new_head:
        state = {k: v for k, v in state.items() if not k.startswith(prefixes)}
        for p in heads[-1][1].parameters():  # zero-initialised output layer (as BiT does)
            nn.init.zeros_(p)
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all(k.startswith(prefixes) for k in missing), (missing, unexpected)
    head_params = {id(p) for _, m in heads for p in m.parameters()}
    for p in model.parameters():
        if id(p) in head_params:
            continue
        if cfg.transfer.mode == FEATURE_EXTRACTION:
            p.requires_grad_(False)
        else:
            setattr(p, LR_SCALE, cfg.transfer.backbone_lr_mult)
    return model


def head_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The layers a transferred model trains as its head, by name, the output layer last: the
    dense `classifier` when the model has one (basic_cnn), then the output layer `head` (also
    inside a regression `TargetScale`). Everything else is the backbone.

    The dense classifier belongs to the head because its ReLU units were trained to separate
    the source's classes: on Fashion-MNIST, 49 of the 64 units of a basic_cnn trained on five
    classes never fire on the other five, so an output layer on them reads 15 features (a
    linear probe scores 0.69) where the conv features they read score 0.92 (RESULTS.md).

    Raises:
        ConfigError: the model has no `head`.

    Example:
        >>> net = nn.Module()
        >>> net.features, net.classifier, net.head = nn.Conv2d(1, 2, 3), nn.Linear(8, 4), nn.Linear(4, 2)
        >>> [name for name, _ in head_layers(net)]
        ['classifier', 'head']
    """
    prefix = head_prefix(model)
    if prefix is not None:
        return [(f"{prefix}{name}", m) for name in HEAD_LAYERS
                if (m := submodule(model, f"{prefix}{name}")) is not None]
    raise ConfigError(f"transfer.source: a {type(model).__name__} has no head layer to retrain; "
                      f"transfer from a classifier such as basic_cnn, mlp or resnet_small")


def find_head(model: nn.Module) -> tuple[str, nn.Module]:
    """The model's output layer alone and its name (the last of `head_layers`).

    Raises:
        ConfigError: the model has no `head`.
    """
    return head_layers(model)[-1]


class TransferStep(SupervisedStep):
    """The supervised step with the backbone frozen while the head trains alone: always for
    feature extraction, for the first `freeze_epochs` epochs when fine-tuning. A frozen
    backbone runs in eval mode, as it will at inference: its BatchNorm statistics do not move
    and its dropout is off, so the head learns from the features it will be given."""

    def __init__(self, mode: str, freeze_epochs: int) -> None:
        self.mode = mode
        self.freeze_epochs = freeze_epochs
        self._backbone: list[nn.Parameter] = []
        self._heads: list[nn.Module] = []

    def bind(self, state: LoopState) -> None:
        self._heads = [m for _, m in head_layers(state.model)]
        in_head = {id(p) for m in self._heads for p in m.parameters()}
        self._backbone = [p for p in state.model.parameters() if id(p) not in in_head]

    def frozen(self, epoch: int) -> bool:
        """Whether the backbone is frozen during epoch `epoch` (from 0)."""
        return self.mode == FEATURE_EXTRACTION or epoch < self.freeze_epochs

    def train_batch(self, state: LoopState, xb: Tensor, yb: Tensor, meter: Any) -> None:
        frozen = self.frozen(state.epoch + 1)
        if self.mode != FEATURE_EXTRACTION:
            for p in self._backbone:
                p.requires_grad_(not frozen)
        if frozen:  # the loop put the model in train mode at the epoch's start
            state.model.eval()
            for m in self._heads:
                m.train()
        super().train_batch(state, xb, yb, meter)
