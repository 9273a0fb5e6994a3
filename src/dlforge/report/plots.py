"""The report's plots, each a function returning PNG bytes.

Figures are made with `matplotlib.figure.Figure` on the Agg canvas, never through pyplot, so
no global figure registry fills up (nothing to close) and plotting works without a display.
Small figures at 90 dpi keep a report of a dozen plots well under a megabyte.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 90
TRAIN_COLOR, VAL_COLOR = "#1f77b4", "#d62728"


def new_figure(width: float, height: float, layout: str | None = "constrained") -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def to_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def learning_curves_png(history: Sequence[dict[str, Any]], metric: str,
                        panels: Sequence[str] | None = None) -> bytes:
    """Loss and `metric` per epoch, train against validation, side by side.

    Args:
        history: rows with `loss`, `val_loss`, `<metric>`, `val_<metric>` (missing keys are
            skipped) and optionally `epoch`.
        metric: the history metric, e.g. "accuracy" or "mae".
        panels: the keys to plot, one panel each, instead of `("loss", metric)` (a GAN:
            `("d_loss", "g_loss", "frechet")`).
    """
    keys = tuple(panels or ("loss", metric))
    fig = new_figure(4 * len(keys), 3)
    # counted from 1 like the progress lines and the history table (`fit` records from 0)
    epochs = [int(row.get("epoch", i)) + 1 for i, row in enumerate(history)]
    for ax, key in zip(np.atleast_1d(fig.subplots(1, len(keys))), keys, strict=True):
        for name, color, label in ((key, TRAIN_COLOR, "train"), (f"val_{key}", VAL_COLOR, "validation")):
            points = [(e, row[name]) for e, row in zip(epochs, history, strict=True)
                      if row.get(name) is not None]
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", ms=3, color=color, label=label)
        ax.set(xlabel="epoch", ylabel=key, title=key)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
    return to_png(fig)


def lr_png(lr_history: Sequence[float]) -> bytes:
    """The learning rate at every optimizer step (log scale when it spans 10x or more)."""
    fig = new_figure(8, 2.5)
    ax = fig.subplots()
    lrs = np.asarray(lr_history, dtype=float)
    ax.plot(np.arange(1, len(lrs) + 1), lrs, color=TRAIN_COLOR)
    positive = lrs[lrs > 0]
    if positive.size and positive.max() >= 10 * positive.min():
        ax.set_yscale("log")
    ax.set(xlabel="optimizer step", ylabel="learning rate", title="learning rate per step")
    ax.grid(alpha=0.3)
    return to_png(fig)


def confusion_matrix_png(counts: Sequence[Sequence[int]], normalized: Sequence[Sequence[float]],
                         class_names: Sequence[str]) -> bytes:
    """Heat map of the row-normalized confusion matrix (rows true, columns predicted).

    Cells show counts when there are at most 20 classes; tick labels are left out beyond 30.
    """
    counts_a, norm = np.asarray(counts), np.asarray(normalized, dtype=float)
    k = len(class_names)
    side = min(3 + 0.45 * k, 10)
    fig = new_figure(side + 1, side)
    ax = fig.subplots()
    image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, shrink=0.8, label="share of the true class")
    if k <= 30:
        ax.set_xticks(range(k), labels=class_names, rotation=45, ha="right")
        ax.set_yticks(range(k), labels=class_names)
    if k <= 20:
        for (i, j), n in np.ndenumerate(counts_a):
            ax.text(j, i, str(n), ha="center", va="center", fontsize=8,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set(xlabel="predicted", ylabel="true", title="confusion matrix")
    return to_png(fig)


def roc_png(fpr: Sequence[float], tpr: Sequence[float], auc: float | None) -> bytes:
    """ROC curve with the chance diagonal."""
    fig = new_figure(4, 3.6)
    ax = fig.subplots()
    ax.plot(fpr, tpr, color=TRAIN_COLOR, label=f"ROC-AUC {_fmt(auc)}")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate (recall)", title="ROC",
           xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return to_png(fig)


def pr_png(precision: Sequence[float], recall: Sequence[float], ap: float | None,
           prevalence: float | None = None) -> bytes:
    """Precision-recall curve; the line at the positive share is what chance achieves."""
    fig = new_figure(4, 3.6)
    ax = fig.subplots()
    ax.plot(recall, precision, color=TRAIN_COLOR, label=f"PR-AUC {_fmt(ap)}")
    if prevalence is not None:
        ax.axhline(prevalence, ls="--", color="grey", label=f"chance {prevalence:.3f}")
    ax.set(xlabel="recall", ylabel="precision", title="precision-recall", xlim=(0, 1),
           ylim=(0, 1.02))
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    return to_png(fig)


def score_histogram_png(normal: np.ndarray, anomalous: np.ndarray, threshold: float | None) -> bytes:
    """Anomaly scores of normal and anomalous samples as overlaid histograms (shared bins,
    densities, log-scaled scores when they span more than two decades), with the threshold."""
    both = np.concatenate([normal, anomalous]).astype(np.float64)
    fig = new_figure(5, 3.4)
    ax = fig.subplots()
    positive = both[both > 0]
    log = positive.size == both.size and both.size > 0 and positive.max() > 100 * positive.min()
    bins = (np.geomspace(positive.min(), positive.max(), 41) if log
            else np.histogram_bin_edges(both, bins=40) if both.size else 10)
    for values, color, name in ((normal, TRAIN_COLOR, "normal"), (anomalous, VAL_COLOR, "anomaly")):
        if len(values):
            ax.hist(values, bins=bins, density=True, alpha=0.55, color=color,
                    label=f"{name} ({len(values)})")
    if threshold is not None:
        ax.axvline(threshold, ls="--", color="black", label=f"threshold {threshold:.4g}")
    ax.set(xlabel="reconstruction error", ylabel="density", title="anomaly scores on test",
           xscale="log" if log else "linear")
    ax.legend(loc="best")
    return to_png(fig)


def image_grid_png(images: np.ndarray, titles: Sequence[str], columns: int = 8) -> bytes:
    """A grid of images `(N, C, H, W)` (uint8 or float, 1 or 3 channels) with a title each.

    Pixels in [0, 1] or [0, 255] are shown as they are; anything else (standardized inputs)
    is min-max scaled image by image. The tiles are pasted into one array and drawn with a
    single `imshow` (one axes per image costs ~0.1 s each).
    """
    tiles = [_displayable(image) for image in np.asarray(images)]
    n = len(tiles)
    cols = max(1, min(columns, n))
    rows = max(1, -(-n // cols))
    h, w = tiles[0].shape[:2] if tiles else (1, 1)
    head, pad = max(2, round(0.45 * h)), max(1, h // 14)  # room for a two-line title
    cell_h, cell_w = head + h + pad, w + 2 * pad
    mosaic = np.ones((rows * cell_h, cols * cell_w, 3))
    fig = new_figure(1.3 * cols, 1.6 * rows, layout=None)
    ax = fig.add_axes((0, 0, 1, 1))
    for i, (tile, title) in enumerate(zip(tiles, titles, strict=False)):
        top, left = (i // cols) * cell_h + head, (i % cols) * cell_w + pad
        mosaic[top:top + h, left:left + w] = tile[..., None] if tile.ndim == 2 else tile
        ax.text(left + w / 2, top - 1, title, ha="center", va="bottom", fontsize=7)
    ax.imshow(mosaic, vmin=0, vmax=1, interpolation="nearest", aspect="auto")
    ax.axis("off")
    return to_png(fig)


def filters_png(weight: np.ndarray, limit: int = 32) -> bytes:
    """First-layer convolution kernels `(out, in, kh, kw)` as small images (at most `limit`).

    Three input channels are shown in colour; otherwise the mean over input channels.
    """
    weight = np.asarray(weight, dtype=np.float64)[:limit]
    if weight.shape[1] != 3:
        weight = weight.mean(axis=1, keepdims=True)
    return image_grid_png(_stretch(weight), [f"filter {i}" for i in range(len(weight))])


def feature_maps_png(maps: np.ndarray, limit: int = 32) -> bytes:
    """The activations `(channels, H, W)` of one sample in one layer, one tile per channel."""
    maps = np.asarray(maps, dtype=np.float64)[:limit, None]
    return image_grid_png(_stretch(maps), [f"channel {i}" for i in range(len(maps))])


def _stretch(tiles: np.ndarray) -> np.ndarray:
    """Min-max scale each tile to [0, 1]: the sign and scale of raw weights or activations
    mean nothing to the eye, their pattern does."""
    lo = tiles.min(axis=(1, 2, 3), keepdims=True)
    span = tiles.max(axis=(1, 2, 3), keepdims=True) - lo
    return np.divide(tiles - lo, span, out=np.zeros_like(tiles), where=span > 0)


def _displayable(image: np.ndarray) -> np.ndarray:
    """(C, H, W) -> (H, W) for one channel or (H, W, 3), scaled to [0, 1]."""
    image = image.astype(np.float64)
    if image.ndim == 3:
        image = image[0] if image.shape[0] == 1 else np.moveaxis(image[:3], 0, -1)
    lo, hi = float(image.min()), float(image.max())
    if lo >= 0 and hi <= 1:  # already scaled pixels
        return image
    if lo >= 0 and hi <= 255:  # uint8-style pixels
        return image / 255.0
    return (image - lo) / (hi - lo) if hi > lo else np.zeros_like(image)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def shares_png(labels: Sequence[str], reference: Sequence[float], current: Sequence[float],
               title: str) -> bytes:
    """Two share distributions on the same bins or categories, side-by-side bars (drift).

    Example:
        >>> shares_png(["a", "b"], [0.5, 0.5], [0.9, 0.1], "color")[:4]
        b'\\x89PNG'
    """
    fig = new_figure(4.2, 2.6)
    ax = fig.add_subplot()
    at = np.arange(len(labels))
    ax.bar(at - 0.2, reference, width=0.4, color=TRAIN_COLOR, label="reference (train)")
    ax.bar(at + 0.2, current, width=0.4, color=VAL_COLOR, label="compared")
    ax.set_xticks(at, [str(label)[:14] for label in labels], rotation=60, fontsize=6)
    ax.set_ylabel("share")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return to_png(fig)
