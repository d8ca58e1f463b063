"""The learning-rate range test's figure: loss against learning rate, the suggestions marked."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..errors import ShapeError


def lr_find_figure(lrs, losses, smoothed, steepest: float, min_over_10: float | None,
                   suggested: float | None = None) -> Figure:
    """The raw mini-batch losses (K,) faint, their smoothed curve (K,) over them, against the
    learning rates lrs (K,) on a log axis; a vertical line at each reading and at the
    ``suggested`` rate (``LRFindResult.suggestion``), labelled with its value, and a dot where
    the smoothed curve is lowest (min_over_10 is that rate / 10; None when the loss never turned
    up, so its lowest point is only the end of the range).

    The y axis stops a little above the smoothed curve's highest point: the raw losses of the
    last, diverging steps run off the top instead of squashing the interesting part flat.
    """
    lrs, losses, smoothed = (np.asarray(a, dtype=float) for a in (lrs, losses, smoothed))
    if not (lrs.ndim == 1 and len(lrs) >= 2 and losses.shape == smoothed.shape == lrs.shape):
        raise ShapeError(f"lrs, losses and smoothed must be 1-D of one length >= 2, got shapes "
                         f"{lrs.shape}, {losses.shape}, {smoothed.shape}")
    if not (np.isfinite(lrs).all() and (lrs > 0).all()):
        raise ShapeError("learning rates must be finite and > 0 (they are drawn on a log axis)")
    finite = np.isfinite(smoothed)
    if not finite.any():
        raise ShapeError("no finite smoothed loss to draw: the loss diverged at the first step")
    fig = Figure(figsize=(7.5, 4.6), layout="constrained")
    ax = fig.subplots()
    ax.plot(lrs, losses, color="tab:blue", alpha=0.3, linewidth=1, label="loss of each mini-batch")
    ax.plot(lrs, smoothed, color="tab:blue", linewidth=2, label="smoothed (moving average: it lags the raw losses)")
    lowest = int(np.argmin(np.where(finite, smoothed, np.inf)))
    ax.plot(lrs[lowest], smoothed[lowest], "o", color="black", markersize=5,
            label=f"lowest smoothed loss, lr {lrs[lowest]:.2g}")
    ax.axvline(steepest, color="tab:red", linewidth=1.5, linestyle=":", label=f"steepest descent: {steepest:.2g}")
    if min_over_10 is not None:
        ax.axvline(min_over_10, color="tab:green", linewidth=1.5, linestyle="--",
                   label=f"lowest / 10: {min_over_10:.2g}")
    if suggested is not None:
        ax.axvline(suggested, color="black", linewidth=2, label=f"suggested: {suggested:.2g}"
                   + (" (halfway between them)" if suggested != steepest else " (the loss never turned up)"))
    ax.set_xscale("log")
    seen = np.concatenate([smoothed[finite], losses[np.isfinite(losses)]])
    top = smoothed[finite].max()
    ax.set_ylim(max(0.0, seen.min() - 0.05 * (top - seen.min())), top + 0.1 * (top - seen.min()) + 1e-12)
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("loss (cross-entropy)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title(f"Learning-rate range test: {len(lrs)} steps, lr {lrs[0]:.2g} to {lrs[-1]:.2g}")
    return fig
