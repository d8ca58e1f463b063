"""Building blocks for grey images (H, W), in NumPy: box filters, Otsu's threshold, grey
dilation, connected components. ``images`` builds the photo -> MNIST pipeline from them.
"""
from __future__ import annotations

import numpy as np


def box_sum(x: np.ndarray, radius: int) -> np.ndarray:
    """Sums of x (H, W) over (2r+1) x (2r+1) windows clipped at the borders: O(H·W) whatever the
    radius, a cumulative sum and a difference along each axis in turn (the box is separable)."""
    for axis in (0, 1):
        n = x.shape[axis]
        cumulative = np.concatenate([np.zeros_like(np.take(x, [0], axis), np.float64),
                                     np.cumsum(x, axis, dtype=np.float64)], axis)
        low, high = _window(n, radius)
        x = np.take(cumulative, high, axis) - np.take(cumulative, low, axis)
    return x


def box_mean(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean of x (H, W) over (2r+1)^2 windows; near the borders, over the part inside the image."""
    (top, bottom), (left, right) = _window(x.shape[0], radius), _window(x.shape[1], radius)
    return box_sum(x, radius) / np.outer(bottom - top, right - left)


def _window(n: int, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) of the window around each of n positions, clipped to 0..n."""
    return np.clip(np.arange(n) - radius, 0, n), np.clip(np.arange(n) + radius + 1, 0, n)


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold t: values > t and <= t maximise the between-class variance ω0·ω1·(μ0 − μ1)².

    Where a range of t ties (an empty gap between two modes), the middle of the gap.

    >>> round(otsu_threshold(np.array([0.1, 0.2, 0.2, 0.8, 0.9])), 2)
    0.5
    """
    values = np.ravel(values)
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return lo
    edges = np.linspace(lo, hi, bins + 1)
    p = np.bincount(np.minimum(((values - lo) * (bins / (hi - lo))).astype(np.intp), bins - 1),
                    minlength=bins) / values.size
    omega = np.cumsum(p)[:-1]  # weight of class 0 when it ends with bin k
    mu = np.cumsum(p * (edges[:-1] + edges[1:]) / 2)[:-1]
    total = mu[-1] + p[-1] * (edges[-2] + edges[-1]) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        between = np.nan_to_num((total * omega - mu) ** 2 / (omega * (1 - omega)))
    best = np.flatnonzero(between >= between.max() * (1 - 1e-9))
    return float(edges[best[0] + 1] + edges[best[-1] + 1]) / 2


def dilate(image: np.ndarray, radius: int) -> np.ndarray:
    """Grey dilation of image (h, w): the max over a (2r+1) square, separable (rows, then columns)."""
    if radius < 1:
        return image
    padded = np.pad(image, radius)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1, axis=0).max(-1)
    return np.lib.stride_tricks.sliding_window_view(windows, 2 * radius + 1, axis=1).max(-1)


def min_filter(x: np.ndarray, radius: int) -> np.ndarray:
    """The min over (2r+1) x (2r+1) windows of x (H, W), edges repeated past the borders."""
    return _extreme_filter(x, radius, np.minimum)


def max_filter(x: np.ndarray, radius: int) -> np.ndarray:
    """The max over (2r+1) x (2r+1) windows of x (H, W), edges repeated past the borders."""
    return _extreme_filter(x, radius, np.maximum)


def opening(x: np.ndarray, radius: int) -> np.ndarray:
    """Grey opening of x (H, W): the max filter of the min filter. Removes what is brighter than its
    surroundings and narrower than the (2r+1) square (pen strokes, once the ink is made bright), and
    keeps what is wider: slow changes of light, and sharp steps such as a shadow's edge or a desk."""
    return max_filter(min_filter(x, radius), radius)


def _extreme_filter(x: np.ndarray, radius: int, pick) -> np.ndarray:
    """min or max (``pick``) over square windows, separable, each axis in O(n) whatever the radius
    (van Herk / Gil-Werman: running extremes within blocks of the window's length, from the left
    and from the right; any window spans the end of one block and the start of the next)."""
    if radius < 1:
        return x
    k = 2 * radius + 1
    for axis in (0, 1):
        x = np.moveaxis(x, axis, 0)
        n = x.shape[0]
        blocks = -(-(n + 2 * radius) // k)
        padded = np.pad(x, [(radius, blocks * k - n - radius)] + [(0, 0)] * (x.ndim - 1), mode="edge")
        runs = padded.reshape(blocks, k, *x.shape[1:])
        left = pick.accumulate(runs, axis=1).reshape(padded.shape)  # from each block's start
        right = pick.accumulate(runs[:, ::-1], axis=1)[:, ::-1].reshape(padded.shape)  # to each block's end
        x = np.moveaxis(pick(right[:n], left[k - 1:k - 1 + n]), 0, axis)  # window i: padded[i .. i + k - 1]
    return x


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of mask (H, W) bool -> (labels (H, W) int32, 0 = background; count)."""
    labels, stats = components(np.asarray(mask, bool))
    return labels, len(stats)


def components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels (H, W), stats (K, 5): area, top, bottom, left, right (exclusive)) of component 1..K.

    Runs of ink along each row are the nodes; a run touches a run of the next row when their
    columns overlap or meet diagonally. Union-find merges touching runs, vectorised: every root
    hooks under the smallest root it touches, then pointers jump to their roots, until stable.
    """
    height, width = mask.shape
    edges = np.diff(np.pad(mask, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    rows, starts = np.nonzero(edges == 1)  # row-major order: runs sorted by (row, start)
    ends = np.nonzero(edges == -1)[1]  # exclusive
    n = len(rows)
    if n == 0:
        return np.zeros(mask.shape, np.int32), np.zeros((0, 5), np.int64)
    key = width + 2  # (row, column) -> one sortable number
    # run [s, e) in row r touches [s2, e2) in row r + 1 iff s2 <= e and e2 >= s (diagonals count)
    first = np.searchsorted(ends + rows * key, (rows + 1) * key + starts, "left")
    last = np.searchsorted(starts + rows * key, (rows + 1) * key + ends, "right")
    a, b = expand_ranges(np.arange(n), first, np.maximum(last - first, 0))
    parent = np.arange(n)
    while True:
        pa, pb = parent[a], parent[b]
        differ = pa != pb
        if not differ.any():
            break
        np.minimum.at(parent, np.maximum(pa, pb)[differ], np.minimum(pa, pb)[differ])
        while not np.array_equal(parent[parent], parent):
            parent = parent[parent]
    _, run_label = np.unique(parent, return_inverse=True)
    run_label = run_label.ravel() + 1
    count = run_label.max()
    lengths = ends - starts
    labels = np.zeros(height * width, np.int32)
    pixel_label, pixels = expand_ranges(run_label, rows * width + starts, lengths)
    labels[pixels] = pixel_label
    stats = np.zeros((count + 1, 5), np.int64)
    stats[:, 1], stats[:, 3] = height, width
    np.add.at(stats[:, 0], run_label, lengths)
    np.minimum.at(stats[:, 1], run_label, rows)
    np.maximum.at(stats[:, 2], run_label, rows + 1)
    np.minimum.at(stats[:, 3], run_label, starts)
    np.maximum.at(stats[:, 4], run_label, ends)
    return labels.reshape(height, width), stats[1:]


def expand_ranges(owner: np.ndarray, begin: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner repeated count times, begin + 0..count-1 for each): ranges without a Python loop."""
    offsets = np.cumsum(count) - count
    return np.repeat(owner, count), np.repeat(begin - offsets, count) + np.arange(count.sum())
