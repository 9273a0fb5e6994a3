"""NumPy .npz archives with x_train/y_train and optional x_val/y_val and x_test/y_test arrays.

x with 3 dims (N, H, W) or 4 dims (N, C, H, W or N, H, W, C with C in 1, 3) are images, 2 dims
a table, 1 dim of str a text. Archives are read with `allow_pickle=False`.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from dlforge.config.schema import DataConfig
from dlforge.data.dataset import Dataset, Provenance
from dlforge.data.sources.common import existing_path, split_names
from dlforge.data.sources.download import sha256_file
from dlforge.data.sources.infer import label_task, multi_column_task
from dlforge.errors import DataError

PARTS = {"train": ("x_train", "y_train"), "val": ("x_val", "y_val"), "test": ("x_test", "y_test")}


def load(cfg: DataConfig) -> Dataset:
    """Load the .npz at `data.path`; rows of x_val / x_test are marked as those splits.

    Raises:
        DataError: not an .npz archive, missing arrays, mismatched lengths, splits whose
            samples or labels differ in shape, or an x of unsupported shape.
    """
    path = existing_path(cfg, kind=".npz file")
    arrays = _arrays(path, cfg)
    present = _parts(arrays, path.name)
    x_raw = np.concatenate([x for x, _ in present.values()])
    y_raw = np.concatenate([y for _, y in present.values()])
    x, modality = _inputs(x_raw, path.name)
    if y_raw.ndim == 2:
        frame = pd.DataFrame(y_raw, columns=[f"label_{i}" for i in range(y_raw.shape[1])])
        y, task = multi_column_task(frame, cfg, where=path.name)
    else:
        y, task = label_task(y_raw, cfg, where=f"y of {path.name}")
    split = split_names({k: len(v[1]) for k, v in present.items()}) if len(present) > 1 else None
    return Dataset(
        x=x, y=y, task=task, modality=modality, split=split,
        provenance=Provenance(source="npz", files={str(path): sha256_file(path)},
                              details={"arrays": sorted(arrays)}),
    )


def _arrays(path: Path, cfg: DataConfig) -> dict[str, np.ndarray]:
    """Every array of the archive (a plain .npy or another file is not one)."""
    if not zipfile.is_zipfile(path):
        raise DataError(f"data.path: {cfg.path!r} is not an .npz archive (the zip of arrays "
                        f"numpy.savez writes, with x_train and y_train)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {k: archive[k] for k in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"data.path: {cfg.path!r} is not a readable .npz file ({exc})") from None


def _parts(arrays: dict[str, np.ndarray], fname: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(x, y) of each split the archive holds, checked to fit together."""
    present = {}
    for split, (xk, yk) in PARTS.items():
        if (xk in arrays) != (yk in arrays) or (split == "train" and xk not in arrays):
            raise DataError(
                f"data.path: {fname} needs arrays x_train and y_train (and x_val/y_val, "
                f"x_test/y_test in pairs); it has: {', '.join(sorted(arrays)) or 'none'}"
            )
        if xk in arrays:
            if len(arrays[xk]) != len(arrays[yk]):
                raise DataError(f"data.path: {fname}: {xk} has {len(arrays[xk])} rows, "
                                f"{yk} has {len(arrays[yk])}")
            present[split] = (arrays[xk], arrays[yk])
    for i, kind in enumerate(("x", "y")):
        shapes = {f"{kind}_{split}": pair[i].shape[1:] for split, pair in present.items()}
        if len(set(shapes.values())) > 1:
            listed = ", ".join(f"{k} {_shape(v)}" for k, v in shapes.items())
            raise DataError(f"data.path: {fname}: the splits' {kind} arrays differ in shape "
                            f"({listed}); every {kind}_* must have the same shape after the "
                            f"first axis")
    return present


def _shape(rest: tuple[int, ...]) -> str:
    """An array's shape with N for its first axis: (N,), (N, 8, 8)."""
    return "(N," + "".join(f" {d}," for d in rest).rstrip(",") + ")"


def _inputs(x: np.ndarray, fname: str) -> tuple[np.ndarray | pd.DataFrame, str]:
    if x.ndim == 1 and x.dtype.kind in "US":
        return x.astype(str).astype(object), "text"
    if x.ndim == 2:
        return pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])]), "table"
    if x.ndim == 3:
        return x[:, None, :, :], "image"
    if x.ndim == 4:
        if x.shape[1] in (1, 3):
            return x, "image"
        if x.shape[3] in (1, 3):  # channels-last (Keras layout) -> channels-first
            return np.ascontiguousarray(x.transpose(0, 3, 1, 2)), "image"
    raise DataError(
        f"data.path: x in {fname} has shape {x.shape}; expected (N, features), (N, H, W), "
        f"(N, C, H, W) or (N, H, W, C) with C 1 or 3, or (N,) strings"
    )
