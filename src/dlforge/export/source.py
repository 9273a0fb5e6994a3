"""What an export starts from: a registered version, its bundle, and its run's test split.

The test split is rebuilt from the run's stored config with the same loading and splitting
code as training (`data.prepare.load_and_split`), so the parity and accuracy checks see exactly
the samples the model was tested on. When that data can no longer be loaded, the export still
works; the reason the check was skipped travels along for the user to see.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from dlforge.errors import ConfigError, DataError, NotFoundError, first_line

if TYPE_CHECKING:
    from dlforge.registry.bundle import Bundle
    from dlforge.registry.records import ModelVersion
    from dlforge.registry.store import Store

# Samples of random input used for the parity check when the test split cannot be loaded.
SYNTHETIC_SAMPLES = 64


@dataclass
class TestSplit:
    """The preprocessed test inputs `x` and their labels `y`."""

    __test__ = False  # not a pytest test class despite the name

    x: torch.Tensor
    y: np.ndarray


@dataclass
class ExportSource:
    """A registered version ready to export.

    Attributes:
        test: the run's test split, preprocessed; None when it could not be loaded.
        skipped: why `test` is None (one line), else None.
    """

    version: ModelVersion
    bundle: Bundle
    workspace: Path
    test: TestSplit | None
    skipped: str | None

    @property
    def model_type(self) -> str:
        return self.bundle.model_config.type

    @property
    def input_dtype(self) -> torch.dtype:
        """int64 token ids for text models, float32 for everything else."""
        return torch.long if self.bundle.preprocessor.kind == "text" else torch.float32

    @property
    def outputs(self) -> str:
        """What the model outputs: ``logits``, or ``reconstruction`` for the autoencoder."""
        return "reconstruction" if self.model_type == "autoencoder" else "logits"

    def check_inputs(self, seed: int = 0) -> tuple[torch.Tensor, str]:
        """Inputs for the parity check: the test split, else random samples; and their name."""
        if self.test is not None and len(self.test.x) >= 2:  # exporters trace a batch of 2
            return self.test.x, f"{len(self.test.x)} test samples"
        generator = torch.Generator().manual_seed(seed)
        shape = (SYNTHETIC_SAMPLES, *self.bundle.input_shape)
        if self.input_dtype == torch.long:
            high = int(self.bundle.preprocessor.vocab_size or 2)
            x = torch.randint(0, high, shape, generator=generator)
        else:
            x = torch.randn(shape, generator=generator)
        return x, f"{SYNTHETIC_SAMPLES} random samples"


def open_source(ref: str, workspace: str | Path | None = None, url: str | None = None,
                load_test: bool = True) -> ExportSource:
    """Resolve `ref` like `dlforge predict` does and load its bundle and test split.

    Args:
        ref: ``NAME``, ``NAME@VERSION`` or ``NAME@ALIAS``.
        workspace: the workspace; default $DLFORGE_WORKSPACE or ./dlforge-workspace.
        url: the store's SQLAlchemy URL; default the workspace's SQLite file.
        load_test: rebuild the run's test split (the slow part: it reloads the data).

    Raises:
        NotFoundError: unknown model, version or alias, or a missing bundle file.
        ConfigError: the model is a GAN, which predicts nothing.
    """
    from dlforge.models.dcgan import GAN
    from dlforge.registry.bundle import load_bundle
    from dlforge.registry.model_kind import check_model_kind
    from dlforge.registry.store import Store
    from dlforge.workspace import resolve_workspace

    root = resolve_workspace(workspace)
    with Store.open(root, url) as store:
        version = store.resolve(ref)
        source = ExportSource(version=version, bundle=load_bundle(version.bundle_path),
                              workspace=root, test=None, skipped="not loaded")
    # its forward takes noise: nothing to export or time
    check_model_kind(version.ref, isinstance(source.bundle.model, GAN))
    return load_test_split(source, url) if load_test else source


def load_test_split(source: ExportSource, url: str | None = None) -> ExportSource:
    """`source` with its run's test split (or the reason it could not be loaded) filled in."""
    from dlforge.registry.store import Store

    with Store.open(source.workspace, url) as store:
        source.test, source.skipped = _test_split(store, source.version, source.bundle)
    return source


def _test_split(store: Store, version: ModelVersion, bundle: Bundle) -> tuple[TestSplit | None, str | None]:
    """The run's test split through the bundle's preprocessor, or None and the reason."""
    from dlforge.config import load_config
    from dlforge.data.prepare import load_and_split

    if version.run_id is None:
        return None, f"{version.ref} was registered without a run, so its test split is unknown"
    raw = dict(store.get_run(version.run_id).config)
    # The stored store URL is masked; the data does not need it.
    raw["registry"] = {**raw.get("registry", {}), "url": None}
    try:
        dataset, splits, _ = load_and_split(load_config(raw))
    except (ConfigError, DataError, NotFoundError, OSError) as exc:
        return None, f"the data of run {version.run_id} could not be loaded ({first_line(exc)})"
    if tuple(dataset.task.class_names) != tuple(bundle.task.class_names):
        return None, (f"the data of run {version.run_id} now has classes "
                      f"{list(dataset.task.class_names)}, not the model's {list(bundle.task.class_names)}")
    x = bundle.preprocessor.transform(splits.test.x)
    return TestSplit(torch.from_numpy(np.ascontiguousarray(x)), np.asarray(splits.test.y)), None

