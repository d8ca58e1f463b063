"""The figure for ``scratchnn predict --explain-preprocessing``: every step from photo to 28x28.

matplotlib's object API (``Figure``, no pyplot): no global state, works without a display.
"""
from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .common import verbatim

TITLE_CHARS = 9  # characters of the title an inch of the figure holds


def preprocessing_figure(steps: list[tuple[str, np.ndarray]], title: str | None = None,
                         columns: int = 4) -> Figure:
    """A grid of the (name, image) steps of ``images.preprocess_steps``: grey (h, w) in 0..1
    (black = 0) or RGB (h, w, 3), each under its name, in order left to right."""
    if not steps:
        raise ValueError("no steps to draw; pass the list preprocess_steps returns")
    columns = min(columns, len(steps))
    rows = math.ceil(len(steps) / columns)
    # it names the photo's file, and why a refused photo stopped: wrapped to the figure's width
    title = None if title is None else verbatim(textwrap.fill(title, int(TITLE_CHARS * 3.0 * columns)))
    lines = 0 if title is None else title.count("\n") + 1
    fig = Figure(figsize=(3.0 * columns, 3.1 * rows + 0.4 * lines), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False)).ravel()
    for ax, (name, image) in zip(axes, steps):
        small = max(image.shape[:2]) <= 40  # the 28x28 and 20x20 steps: show pixels, not a blur
        ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest" if small else "antialiased")
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[len(steps):]:
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    return fig


def save_preprocessing_figure(steps: list[tuple[str, np.ndarray]], path, title: str | None = None) -> Path:
    """Draw ``steps`` and save them as ``path`` (PNG, or any format matplotlib knows from the suffix)."""
    from . import save_figure

    return save_figure(preprocessing_figure(steps, title), path, dpi=100)
