"""Pictures of what `evaluate.inside.inspect_model` found: feature maps per block, the first
layer's weights, and the saliency of an input. Shared by the run report and `dlforge inspect`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dlforge.evaluate.inside import Inspection
from dlforge.report.plots import _displayable, feature_maps_png, filters_png, new_figure, to_png

MAX_BARS = 40


def inspection_figures(found: Inspection, image: np.ndarray | None, label: str,
                       feature_names: Sequence[str] = (), with_weights: bool = True) -> list[tuple[str, bytes]]:
    """(title, PNG) of each block's feature maps, the saliency over `image` `(C, H, W)` (or per
    feature for tables), and, when `with_weights`, the first layer's weights. `label` names the
    input in the titles, e.g. "test image 3 (true 5, predicted 5)"."""
    figures = [(f"{label}: feature maps of {name}", feature_maps_png(maps, limit=16))
               for name, maps in found.maps.items()]
    if found.saliency is not None:
        if found.saliency.ndim == 2 and image is not None:
            figures.append((f"{label}: saliency (input gradients of class {found.target})",
                            saliency_png(image, found.saliency)))
        elif found.saliency.ndim == 1:
            figures.append((f"{label}: saliency per feature (input gradients)",
                            bars_png(found.saliency, feature_names, "|gradient|")))
    if with_weights and found.first_layer is not None:
        kind, weights = found.first_layer
        if kind == "filters":
            figures.append(("First-layer filters", filters_png(weights)))
        elif kind == "features":
            figures.append(("First-layer weight magnitude per input feature (L2 norm)",
                            bars_png(weights, feature_names, "weight norm")))
    return figures


def saliency_png(image: np.ndarray, grads: np.ndarray) -> bytes:
    """The input beside its saliency map (brighter = the pixel moved the logit more)."""
    fig = new_figure(4, 2)
    left, right = fig.subplots(1, 2)
    shown = _displayable(np.asarray(image))
    left.imshow(shown, cmap="gray" if shown.ndim == 2 else None, interpolation="nearest")
    right.imshow(grads, cmap="inferno", interpolation="nearest")
    for ax, title in ((left, "input"), (right, "saliency")):
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    return to_png(fig)


def bars_png(values: np.ndarray, names: Sequence[str], ylabel: str) -> bytes:
    """The `MAX_BARS` largest values as a bar chart, named by `names` (default their index)."""
    values = np.asarray(values, dtype=np.float64)
    names = list(names) if len(names) == len(values) else [str(i) for i in range(len(values))]
    order = np.argsort(-values)[:MAX_BARS]
    fig = new_figure(max(4.0, 0.22 * len(order) + 1), 2.6)
    ax = fig.add_subplot()
    ax.bar(range(len(order)), values[order], color="#1f77b4")
    ax.set_xticks(range(len(order)), [names[i] for i in order], rotation=90, fontsize=6)
    ax.set_ylabel(ylabel)
    return to_png(fig)
