"""A folder of images with one sub-folder per class, optionally under train/ and test/ folders.

    root/cat/1.png, root/dog/2.jpg               -> split left to data.split
    root/train/cat/1.png, root/test/cat/9.png    -> rows marked train / test

A class folder's images in nested folders (root/cat/indoor/3.png) are that class's too, as
`dlforge predict` searches a folder's nested folders; hidden folders are left out.

Files that cannot be decoded are listed in `Dataset.skipped` and left out, so one corrupt file
never stops a run; the report shows them. A class folder without any image file is refused,
naming it, where it would be trained on (under train/, or when there are no split folders): a
class the user made but left empty is almost surely a mistake (a copy that did not finish, a
wrong extension), and training without it would quietly drop the class. A class that
`data.classes` leaves out may be empty, and so may one under test/ or val/: the class is still
trained, and the validation report warns that it has no samples in that split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlforge.config.schema import DataConfig
from dlforge.data.dataset import Dataset, Provenance
from dlforge.data.images import decode_image
from dlforge.data.sources.common import existing_path, sha256_bytes
from dlforge.data.sources.infer import label_task
from dlforge.errors import DataError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
SPLIT_DIRS = {"train": "train", "val": "val", "validation": "val", "test": "test"}
# other spellings of split folders (any case), refused as class names; values: the folder to use
SPLIT_LIKE = {"train": "train", "training": "train", "val": "val", "valid": "val",
              "validation": "val", "test": "test", "testing": "test", "eval": "test"}


def load(cfg: DataConfig) -> Dataset:
    """Decode every image under `data.path` to (C, H, W) uint8 in `data.color`.

    Raises:
        DataError: the path is missing or has no images, a class folder has none (unless
            `data.classes` leaves the class out), or images differ in size while
            `data.image_size` is unset.
    """
    root, entries = _entries(cfg)
    images, labels, splits, files, skipped = _decode_all(root, entries, cfg)
    if not images:
        raise DataError(f"data.path: none of the {len(entries)} images under {cfg.path!r} "
                        f"could be read; first problem: {skipped[0]['path']}: {skipped[0]['reason']}")
    _require_every_class(entries, skipped, root, cfg)
    _require_one_size(images, list(files))
    y, task = label_task(np.array(labels, dtype=object), cfg, where=f"the class folders of {root.name}")
    split = None if splits[0] is None else np.array(splits, dtype=object)
    return Dataset(
        x=np.stack(images), y=y, task=task, modality="image", split=split, skipped=skipped,
        ids=np.array(list(files), dtype=object),
        provenance=Provenance(source="image_folder", files=files,
                              details={"root": str(root), "color": cfg.color}),
    )


def folder_index(cfg: DataConfig) -> Dataset:
    """The folder's files without decoding them, for streaming (data/folder_stream.py): `x`
    the file numbers 0..N-1, `ids` the paths under the root, labels and split marks as `load`
    gives them (unreadable files are found when a batch decodes them).

    Raises:
        DataError: the path is missing or has no images, or mixes split and class folders.
    """
    root, entries = _entries(cfg)
    y, task = label_task(np.array([e[1] for e in entries], dtype=object), cfg,
                         where=f"the class folders of {root.name}")
    split = None if entries[0][2] is None else np.array([e[2] for e in entries], dtype=object)
    ids = np.array([path.relative_to(root).as_posix() for path, _, _ in entries], dtype=object)
    return Dataset(x=np.arange(len(entries)), y=y, task=task, modality="image", split=split,
                   ids=ids, provenance=Provenance(source="image_folder", files={}, details={
                       "root": str(root), "color": cfg.color, "streamed": True}))


def _decode_all(root: Path, entries: list[tuple[Path, str, str | None]], cfg: DataConfig) -> tuple:
    """Decode every entry; unreadable files go to `skipped` instead of stopping the load."""
    images, labels, splits, files, skipped = [], [], [], {}, []
    for path, label, split in entries:
        rel = path.relative_to(root).as_posix()
        try:
            data = path.read_bytes()
            img = decode_image(data, color=cfg.color, size=cfg.image_size)
        except OSError as exc:
            skipped.append({"path": rel, "reason": f"cannot read file ({exc.strerror or exc})"})
            continue
        except DataError as exc:
            skipped.append({"path": rel, "reason": str(exc).removeprefix("<bytes>: ")})
            continue
        images.append(img)
        labels.append(label)
        splits.append(split)
        files[rel] = sha256_bytes(data)
    return images, labels, splits, files, skipped


def _entries(cfg: DataConfig) -> tuple[Path, list[tuple[Path, str, str | None]]]:
    """The root directory and its image files (`_list_images`), or a `DataError`."""
    root = existing_path(cfg, kind="directory")
    if not root.is_dir():
        raise DataError(f"data.path: {cfg.path!r} is a file; give a directory with one "
                        f"sub-folder per class")
    entries = _list_images(root, cfg)
    if not entries:
        raise DataError(
            f"data.path: no images ({', '.join(e[1:] for e in EXTENSIONS)}) under {cfg.path!r}; "
            f"expected one sub-folder per class"
        )
    return root, entries


def _list_images(root: Path, cfg: DataConfig) -> list[tuple[Path, str, str | None]]:
    """(file, class name, split or None) for every image file, in a stable order.

    Raises:
        DataError: split and class folders mixed, or class folders without images where
            they are trained on (one line each; a class `data.classes` leaves out, or one
            under a test/ or val/ folder, may be empty).
    """
    tops = _subdirs(root)
    _refuse_split_like(tops)
    split_tops = [d for d in tops if d.name in SPLIT_DIRS]
    if split_tops and len(split_tops) != len(tops):
        others = [d.name for d in tops if d.name not in SPLIT_DIRS]
        raise DataError(
            f"data.path: {cfg.path!r} mixes split folders ({', '.join(d.name for d in split_tops)}) "
            f"and class folders ({', '.join(others)}); use train/ and test/ folders that each "
            f"hold the class folders, or class folders only"
        )
    parts = [(d, SPLIT_DIRS[d.name]) for d in split_tops] or [(root, None)]
    entries, empty = [], []
    for part, split in parts:
        for class_dir in _subdirs(part):
            files = class_images(class_dir)
            entries += [(f, class_dir.name, split) for f in files]
            if not files and split in (None, "train") and (
                    cfg.classes is None or class_dir.name in cfg.classes):
                empty.append(class_dir)
    if empty and entries:  # no images at all is said by the caller
        raise DataError("\n".join(_empty_folder(d) for d in empty))
    return entries


def _refuse_split_like(tops: list[Path]) -> None:
    """Refuse folders named like splits but not as dlforge reads them (Kaggle's Training/ and
    Testing/, Train/, eval/): their class folders would be read as nested folders of two
    classes named "Training" and "Testing"."""
    odd = [d.name for d in tops if d.name not in SPLIT_DIRS and d.name.lower() in SPLIT_LIKE]
    if not odd:
        return
    order = list(SPLIT_DIRS.values())
    odd.sort(key=lambda n: (order.index(SPLIT_LIKE[n.lower()]), n))
    names = _and([repr(n) for n in odd])
    fixes = _and([f"{SPLIT_LIKE[n.lower()]}/" for n in odd])
    if len(odd) == 1:
        raise DataError(f"data.path: {names} looks like a split folder, not a class; rename it "
                        f"{fixes} (dlforge reads that), or point data.path at it")
    raise DataError(f"data.path: {names} look like split folders, not classes; rename them "
                    f"{fixes} (dlforge reads those), or point data.path at one of them")


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def class_images(class_dir: Path) -> list[Path]:
    """The image files of one class folder, those in nested folders included (as `dlforge
    predict` searches a folder), sorted by path; hidden folders (``.cache/``) are left out.

    Example:
        >>> class_images(Path("data/cat"))  # doctest: +SKIP
        [PosixPath('data/cat/1.png'), PosixPath('data/cat/indoor/2.png')]
    """
    return sorted(f for f in class_dir.rglob("*")
                  if f.suffix.lower() in EXTENSIONS and f.is_file()
                  and not any(p.startswith(".") for p in f.relative_to(class_dir).parts[:-1]))


def _empty_folder(class_dir: Path) -> str:
    return (f"data.path: class folder {str(class_dir)!r} holds no images "
            f"({', '.join(e[1:] for e in EXTENSIONS)}); add its images, remove the empty folder, "
            f"or leave the class out with data.classes")


def _require_every_class(entries: list[tuple[Path, str, str | None]], skipped: list[dict],
                         root: Path, cfg: DataConfig) -> None:
    """Refuse, like an empty class folder, a trained class none of whose images could be read
    (unreadable, refused, too large): training without it would quietly drop the class."""
    reasons = {s["path"]: s["reason"] for s in skipped}
    trained: dict[str, list[str]] = {}
    for path, label, split in entries:
        if split in (None, "train") and (cfg.classes is None or label in cfg.classes):
            trained.setdefault(label, []).append(path.relative_to(root).as_posix())
    lost = {label: paths for label, paths in trained.items() if all(p in reasons for p in paths)}
    if lost:
        raise DataError("\n".join(
            f"data.path: none of the {len(paths)} images of class {label!r} could be read, so "
            f"the class would not be trained; first problem: {paths[0]}: {reasons[paths[0]]}; "
            f"fix or replace its images, or leave the class out with data.classes"
            for label, paths in lost.items()))


def _subdirs(path: Path) -> list[Path]:
    return sorted(d for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))


def _require_one_size(images: list[np.ndarray], names: list[str]) -> None:
    first = images[0].shape
    for img, name in zip(images, names, strict=True):
        if img.shape != first:
            raise DataError(
                f"data.image_size: images differ in size ({first[1]}x{first[2]} in {names[0]}, "
                f"{img.shape[1]}x{img.shape[2]} in {name}); set data.image_size: [height, width] "
                f"to resize them"
            )
