"""The inputs `dlforge drift --data` compares: read from a config's data section or a file,
checked against the model's raw-input spec, and preprocessed as the model's training was."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dlforge.data.sources.csv_source import read_csv_file
from dlforge.data.sources.image_folder import EXTENSIONS
from dlforge.errors import DataError

if TYPE_CHECKING:
    from dlforge.registry.predictor import Predictor

CONFIG_SUFFIXES = (".yaml", ".yml")
IMAGE_SUFFIXES = EXTENSIONS  # what training and `dlforge predict` read from an image folder


def read_inputs(source: str | Path, predictor: Predictor, *, split: str = "all",
                overrides: list[str] | None = None) -> Any:
    """Raw inputs from `source`: a run config (YAML: its data section, `split` "all" or
    "test"), a CSV file (tables, texts), a .npy/.npz array of images (N, C, H, W) or a folder
    of image files (subfolders included).

    Raises:
        NotFoundError: `source` does not exist.
        DataError: a format this modality cannot take, or columns / image sizes that differ
            from the reference's (one line naming both).
    """
    from dlforge.errors import NotFoundError

    path = Path(source)
    if not path.exists():
        raise NotFoundError(f"--data: {path} does not exist; give a run config (YAML) or a data file")
    if path.suffix in CONFIG_SUFFIXES:
        raw = _from_config(path, split, overrides or [])
    elif path.is_dir():
        raw = _image_files(path)
    elif path.suffix == ".csv":
        raw = read_csv_file(path, field="--data")
    elif path.suffix in (".npy", ".npz"):
        raw = _array(path)
    else:
        raise DataError(f"--data: {path} is neither a config (.yaml) nor a .csv, .npy or .npz "
                        "file nor a folder of images")
    check_matches(raw, predictor, str(path))
    return raw


def _image_files(folder: Path) -> list[str]:
    """The image files in `folder` and its subfolders (class folders, as the image_folder
    source and `dlforge update --watch` lay them out), sorted.

    Raises:
        DataError: the folder holds no image files at any depth.
    """
    files = sorted(str(p) for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                   and p.is_file())
    if not files:
        raise DataError(f"--data: {folder} holds no image files ({', '.join(IMAGE_SUFFIXES)}), "
                        f"in it or in its subfolders; give a folder of images")
    return files


def check_matches(raw: Any, predictor: Predictor, source: str) -> None:
    """Tables must hold the training columns, image arrays the training image size.

    Raises:
        DataError: naming the data's columns or size and the model's.
    """
    spec = predictor.bundle.input_spec
    if predictor.modality == "table" and isinstance(raw, pd.DataFrame):
        expected = [str(c) for c in spec.get("columns") or []]
        missing = [c for c in expected if c not in raw.columns.astype(str)]
        if missing:
            raise DataError(f"drift: {source} has columns {[str(c) for c in raw.columns]} but the "
                            f"model was trained on columns {expected} (missing {missing})")
    elif predictor.modality == "image" and isinstance(raw, np.ndarray):
        expected = tuple(predictor.bundle.preprocessor.output_shape)
        shape = tuple(raw.shape[1:]) if raw.ndim == 4 else (1, *raw.shape[1:])
        if shape != expected:
            raise DataError(f"drift: {source} holds {_image_size(shape)} images but the model "
                            f"was trained on {_image_size(expected)} images")


def _from_config(path: Path, split: str, overrides: list[str]) -> Any:
    from dlforge.config import load_config
    from dlforge.data.prepare import load_and_split

    # only scored: a class without training samples in this config's split is no error
    dataset, splits, _ = load_and_split(load_config(path, overrides), training=False)
    return (splits.test if split == "test" else dataset).x


def _array(path: Path) -> np.ndarray:
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"--data: {path} is not a readable numpy file ({exc})") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            key = "x" if "x" in loaded.files else loaded.files[0]
            return loaded[key]
    return loaded


def _image_size(shape: tuple[int, ...]) -> str:
    if len(shape) != 3:
        return f"shape {shape}"
    return f"{shape[2]}x{shape[1]} ({shape[0]} channel{'s' if shape[0] != 1 else ''})"
