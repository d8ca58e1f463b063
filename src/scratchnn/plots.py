"""Figures drawn with matplotlib (object API, no pyplot: works headless, no global state)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure


def prediction_figure(image: np.ndarray, probs: np.ndarray, classes: Sequence[str],
                      true_label: int | None = None) -> Figure:
    """The seed's test_prediction: the image (H, W) with predicted and true label, plus bars of
    the class probabilities (C,)."""
    best = int(np.argmax(probs))
    fig = Figure(figsize=(6.4, 3.2), layout="constrained")
    ax_image, ax_probs = fig.subplots(1, 2, width_ratios=[1, 1.3])
    ax_image.imshow(image, cmap="gray", interpolation="nearest")
    ax_image.set_axis_off()
    title = f"Prediction: {classes[best]} ({probs[best]:.0%})"
    if true_label is not None:
        title += f"\nTrue label: {classes[true_label]}"
    ax_image.set_title(title, color="black" if true_label in (None, best) else "firebrick")
    colors = ["tab:blue" if i == best else "silver" for i in range(len(probs))]
    ax_probs.barh(range(len(probs)), probs, color=colors)
    ax_probs.set_yticks(range(len(probs)), classes)
    ax_probs.invert_yaxis()
    ax_probs.set_xlim(0, 1)
    ax_probs.set_xlabel("probability")
    return fig


def save_figure(fig: Figure, path, dpi: int = 120) -> Path:
    """Save as PNG (or any format matplotlib knows from the suffix)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path
