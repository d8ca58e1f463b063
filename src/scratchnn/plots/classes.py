"""Per-class figures from a confusion matrix: the heatmap with counts and the accuracy bars."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib import rcParams
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from ..errors import ShapeError
from ..metrics import per_class_accuracy
from .common import text_width, verbatim_all


def _check_matrix(matrix, classes: Sequence[str]) -> np.ndarray:
    matrix = np.asarray(matrix)
    count = len(classes)
    if matrix.shape != (count, count) or matrix.dtype.kind not in "ui" or (matrix < 0).any():
        raise ShapeError(f"the confusion matrix must be non-negative integer counts of shape "
                         f"({count}, {count}) for {count} classes, got {matrix.dtype} {matrix.shape}")
    return matrix


def _long_names(classes: Sequence[str]) -> bool:
    return max(len(str(c)) for c in classes) > 2


MAX_SIDE = 36.0  # inches: EMNIST's 62 classes fit at full size; more classes get smaller cells
WRITTEN = 64  # classes up to which every count is written in its cell


def confusion_figure(matrix: np.ndarray, classes: Sequence[str], title: str | None = None) -> Figure:
    """Heatmap of the counts (C, C), rows = true class, columns = predicted class.

    Colour is each cell's share of its row (share = count / row total), on a square-root scale so
    that a few mistakes still show; every non-zero count is written in its cell (up to WRITTEN
    classes; the figure grows with the classes up to MAX_SIDE inches).
    """
    matrix, classes = _check_matrix(matrix, classes), verbatim_all(classes)
    count = len(classes)
    totals = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
    side = min(max(4.5, 0.52 * count + 2.3), MAX_SIDE)  # 256 classes made a 136-inch figure (API fuzz audit)
    fig = Figure(figsize=(side + 1.2, side), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(share, cmap="Blues", norm=PowerNorm(0.5, vmin=0, vmax=1))
    fig.colorbar(image, ax=ax, shrink=0.8, label="share of the true class",
                 format=PercentFormatter(1.0))
    fontsize = 9 if matrix.max(initial=0) < 1000 else 7
    for i, j in zip(*np.nonzero(matrix)) if count <= WRITTEN else ():  # beyond, the colours alone
        ax.text(j, i, f"{matrix[i, j]:,}", ha="center", va="center", fontsize=fontsize,
                color="white" if share[i, j] > 0.5 else "black")
    tilt = {"rotation": 40, "ha": "right", "rotation_mode": "anchor"} if _long_names(classes) else {}
    ax.set_xticks(range(count), classes, **tilt)
    ax.set_yticks(range(count), classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    total = int(matrix.sum())
    accuracy = matrix.trace() / total if total else float("nan")
    ax.set_title(title or f"Confusion matrix: {total:,} images, accuracy {accuracy:.1%}")
    return fig


def axis_start(recall: np.ndarray) -> float:
    """Where the accuracy axis starts: a multiple of 5% at least 5% below the worst class, so
    classes at 97% and 99% look different; 0 when some class is below 50% (or none has images).

    >>> axis_start(np.array([0.97, 0.99, 0.93])), axis_start(np.array([0.4, 0.9]))
    (0.85, 0.0)
    """
    worst = np.nanmin(recall) if np.isfinite(recall).any() else 0.0
    return 0.0 if worst < 0.5 else float(np.floor((worst - 0.05) * 20) / 20)


def per_class_accuracy_figure(matrix: np.ndarray, classes: Sequence[str], title: str | None = None) -> Figure:
    """Horizontal bars of each class's accuracy (recall = diagonal / row total of the (C, C)
    counts), labelled with the value and the number of images; a dashed line marks the overall
    accuracy (trace / total). A class without images gets no bar and says so."""
    matrix, classes = _check_matrix(matrix, classes), verbatim_all(classes)
    count = len(classes)
    recall = per_class_accuracy(matrix)
    totals = matrix.sum(axis=1)
    names = max((text_width(name, rcParams["ytick.labelsize"]) for name in classes), default=0.0)
    # long class names widen the figure instead of squeezing the bars (the axis label was cut off)
    fig = Figure(figsize=(7.0 + max(0.0, names - 1.0), max(3.0, 0.36 * count + 1.4)), layout="constrained")
    ax = fig.subplots()
    total = int(matrix.sum())
    overall = matrix.trace() / total if total else float("nan")
    if total:  # over the bars, under the labels (whose white box keeps them readable across it)
        ax.axvline(overall, color="tab:orange", linestyle="--", zorder=2.5)
    low = axis_start(recall)
    bars = ax.barh(range(count), np.where(np.isnan(recall), 0.0, recall - low), left=low, color="tab:blue", zorder=2)
    for bar, value, n in zip(bars, recall, totals):
        y = bar.get_y() + bar.get_height() / 2
        text = "no images" if np.isnan(value) else f"{value:.1%} of {n:,}"
        ax.text(max(np.nan_to_num(value), low) + 0.01 * (1 - low), y, text, va="center", fontsize=9, zorder=3,
                color="dimgray" if np.isnan(value) else "black",
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 1, "alpha": 0.85})
    ax.set_yticks(range(count), classes)
    ax.invert_yaxis()
    ax.set_xlim(low, 1 + 0.22 * (1 - low))  # room for the labels right of a 100% bar
    ax.set_xticks(np.linspace(low, 1, 6))
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("accuracy (share of the class's images predicted correctly)"
                  + (f"\nthe axis starts at {low:.0%}" if low else ""))
    ax.set_title(title or "Accuracy per class" + (f" (dashed line: overall {overall:.1%})" if total else ""))
    ax.grid(axis="x", alpha=0.3)
    return fig
