"""Validation-report lines about images an image folder takes from nested folders of a class
folder (`image_folder.class_images`): they are trained as that class, so the report names them
(``cat/rejected/`` would otherwise be trained on silently), and a layout one level too high
(every class folder holding only the same nested folders) is pointed out."""

from __future__ import annotations

from collections.abc import Sequence

SHOWN = 3  # nested folders named per class, and classes named per line


def nested_folder_warnings(ids: Sequence[str], split_folders: bool) -> list[str]:
    """Warning lines for image ids (paths under data.path, ``[split/]class/...``).

    Example:
        >>> nested_folder_warnings(["cat/a.png", "cat/indoor/b.png", "dog/c.png"], False)
        ["data: images in nested folders are trained as their class folder's: cat (indoor); move out any that are not that class"]
    """
    nested: dict[str, set[str]] = {}
    direct: set[str] = set()
    for rel in ids:
        parts = rel.split("/")[1:] if split_folders else rel.split("/")
        cls, inner = parts[0], parts[1:-1]
        nested.setdefault(cls, set())
        if inner:
            nested[cls].add("/".join(inner))
        else:
            direct.add(cls)
    with_nested = {cls: sorted(dirs) for cls, dirs in sorted(nested.items()) if dirs}
    if not with_nested:
        return []
    named = [f"{cls} ({_some(dirs)})" for cls, dirs in with_nested.items()]
    lines = [f"data: images in nested folders are trained as their class folder's: "
             f"{_some(named)}; move out any that are not that class"]
    tops = {cls: {d.split("/")[0] for d in dirs} for cls, dirs in with_nested.items()}
    first = next(iter(tops.values()))
    if len(nested) > 1 and not direct and len(tops) == len(nested) and all(
            t == first for t in tops.values()):
        lines.append(f"data: every class folder ({_some(sorted(nested))}) holds its images only in "
                     f"the same nested folders ({_some(sorted(first))}); if those are the classes, "
                     f"data.path is one level too high: point it at one of the class folders")
    return lines


def _some(items: list[str]) -> str:
    more = len(items) - SHOWN
    return ", ".join(items[:SHOWN]) + (f" and {more} more" if more > 0 else "")
