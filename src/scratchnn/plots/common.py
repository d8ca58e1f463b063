"""Helpers shared by the figures: saving, PNG bytes, image arrays and grid sizes."""
from __future__ import annotations

import io
import math
import numbers
from pathlib import Path

import numpy as np
from matplotlib import rcParams
from matplotlib.backend_bases import FigureCanvasBase
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import TextToPath

from ..errors import OS_ERROR_HINTS, ConfigError, ShapeError
from ..files import atomic_write_bytes

MAX_DPI = 1200  # print quality; matplotlib refuses images past 2^16 pixels a side, after drawing


def save_figure(fig: Figure, path, dpi: int = 120) -> Path:
    """Save as PNG (or SVG, PDF...: any format matplotlib knows from the suffix), atomically.

    A suffix matplotlib cannot write or a folder that cannot be written is one ConfigError.
    """
    path = Path(path)
    kind = figure_format(path)
    try:
        return atomic_write_bytes(path, figure_bytes(fig, dpi, kind))
    except OSError as error:
        hint = OS_ERROR_HINTS.get(error.errno)
        raise ConfigError(f"{path}: cannot write the figure ({error.strerror or error}"
                          f"{f': {hint}' if hint else ''})") from None


def figure_format(path) -> str:
    """The format matplotlib writes for ``path``'s suffix ("png" without one), or a ConfigError
    listing the ones it knows: commands check their output path before the work, not after."""
    path = Path(path)
    kind = path.suffix.lstrip(".").lower() or "png"
    known = FigureCanvasBase.get_supported_filetypes()
    if kind not in known:
        raise ConfigError(f"{path}: cannot draw .{kind} files; use one of {', '.join('.' + k for k in sorted(known))}")
    return kind


def figure_png(fig: Figure, dpi: int = 120) -> bytes:
    """The figure rendered as PNG bytes (for files written atomically or embedded in HTML)."""
    return figure_bytes(fig, dpi, "png")


def figure_bytes(fig: Figure, dpi: int, kind: str) -> bytes:
    """The figure saved as ``kind`` (png, svg, pdf) at ``dpi`` pixels an inch, from 1 to MAX_DPI
    (dpi=0 was matplotlib's ZeroDivisionError, deep inside; the API fuzz audit)."""
    if isinstance(dpi, bool) or not isinstance(dpi, numbers.Real) or not 1 <= dpi <= MAX_DPI:  # np.int64 too
        raise ConfigError(f"dpi must be a number from 1 to {MAX_DPI}, got {repr(dpi)[:40]}")
    buffer = io.BytesIO()
    fig.savefig(buffer, format=kind, dpi=dpi)
    return buffer.getvalue()


def as_images(images: np.ndarray, what: str = "images") -> np.ndarray:
    """Images (N, H, W) from (N, H, W), (N, 1, H, W) or square flat rows (N, H·W)."""
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    elif images.ndim == 2:
        side = math.isqrt(images.shape[1])
        if side * side != images.shape[1]:
            raise ShapeError(f"{what}: rows of {images.shape[1]} pixels are not square images; pass (N, H, W)")
        images = images.reshape(len(images), side, side)
    if images.ndim != 3:
        raise ShapeError(f"{what} must have shape (N, H, W), (N, 1, H, W) or (N, H*W), got {images.shape}")
    return images


def pixel_range(images: np.ndarray) -> tuple[float, float]:
    """(vmin, vmax) for imshow: 0..255 for integer pixels, 0..1 for scaled ones."""
    return (0.0, 255.0) if images.dtype.kind in "ui" or images.max(initial=0) > 1 else (0.0, 1.0)


def text_width(text: str, size=None) -> float:
    """Width in inches of the widest line of ``text`` at font ``size`` (default: a figure title's),
    measured from the font itself: figures grow to fit their titles instead of clipping them."""
    font = FontProperties(size=size if size is not None else rcParams["figure.titlesize"])
    measure = TextToPath()
    return max(measure.get_text_width_height_descent(line, font, ismath=False)[0]
               for line in text.splitlines() or [""]) / 72


def grid_shape(count: int, max_columns: int = 8) -> tuple[int, int]:
    """(rows, columns) for ``count`` panels: as few rows as fit, the columns evened out.

    >>> grid_shape(10), grid_shape(24), grid_shape(64), grid_shape(3)
    ((2, 5), (3, 8), (8, 8), (1, 3))
    """
    rows = max(1, -(-count // max_columns))
    return rows, max(1, -(-count // rows))


def mosaic(images: np.ndarray, columns: int, gap: int = 1) -> np.ndarray:
    """Images (K, H, W) tiled row by row into one array (R·(H+gap)−gap, columns·(W+gap)−gap),
    NaN between tiles and after the last: one imshow draws them all, far faster than K axes.

    >>> tiles = mosaic(np.ones((3, 2, 2)), columns=2)
    >>> tiles.shape, int(np.isnan(tiles).sum())
    ((5, 5), 13)
    """
    count, height, width = images.shape
    rows = max(1, -(-count // columns))
    out = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap), np.nan)
    for k, image in enumerate(images):
        r, c = divmod(k, columns)
        out[r * (height + gap):r * (height + gap) + height, c * (width + gap):c * (width + gap) + width] = image
    return out


def percent(p: float) -> str:
    """A probability as a whole percentage that never reads as certain when it is not:
    0.996 is '>99%', not '100%' (a wrong answer 'at 100%' reads as a bug)."""
    text = f"{p:.0%}"
    return ">99%" if text == "100%" and p < 1 else "<1%" if text == "0%" and p > 0 else text


def verbatim(text) -> str:
    """``text`` as matplotlib draws it letter for letter: a '$' pair would start a formula
    (mathtext), and a malformed one fails the whole figure (a class named '$\\frac$', a photo
    'note_$5_$.png'). Every name a user chose goes through it: class names, file names."""
    return str(text).replace("$", r"\$")


def verbatim_all(names) -> list[str]:
    """``verbatim`` of each of ``names`` (class names)."""
    return [verbatim(name) for name in names]


def check_probs(probs: np.ndarray, count: int, classes) -> np.ndarray:
    """probs (N, C) with N = ``count`` and C = len(classes), or a ShapeError saying which differs."""
    probs = np.asarray(probs, dtype=float)
    if probs.ndim != 2 or probs.shape[0] != count or probs.shape[1] != len(classes):
        raise ShapeError(f"probs must have shape (N, C) = ({count}, {len(classes)}) to match the images "
                         f"and classes, got {probs.shape}")
    return probs


def check_labels(labels, count: int, classes) -> np.ndarray:
    """Integer labels (N,) in 0..C-1, or a ShapeError naming the problem."""
    labels = np.asarray(labels)
    if labels.shape != (count,) or labels.dtype.kind not in "ui":
        raise ShapeError(f"labels must be integers of shape ({count},), got {labels.dtype} {labels.shape}")
    if count and (labels.min() < 0 or labels.max() >= len(classes)):
        raise ShapeError(f"labels must lie in 0..{len(classes) - 1} (one per class name), "
                         f"got {labels.min()}..{labels.max()}")
    return labels.astype(np.intp)
