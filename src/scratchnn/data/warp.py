"""Moving a batch of images by inverse mapping: the geometry under augmentation and TTA.

For each output pixel q = (row, col) we compute where it comes from in the input, then read the
input there by bilinear interpolation, with zeros outside the image. With c the image centre,

    s(q) = c + A (q − c) + o + d(q)             out[q] = bilinear(x, s(q))

An affine move q = c + F (p − c) + t, with F = scale · R(angle) · Shear, is read back with
A = F⁻¹ and o = −F⁻¹ t (``inverse_affine``). d is an elastic field (Simard et al. 2003): per
image and per axis U(−1, 1) noise, smoothed by a Gaussian of width sigma and scaled by alpha
pixels (``elastic_field``).

Everything is vectorised over the batch: the coordinates are (N, H, W) arrays, the Gaussian
smoothing is two stacks of small matrix products (see ``smoothing_matrix``), the bilinear read is
four ``take``s from the zero-padded batch. NumPy only; a batch of 128 28x28 images takes ~2 ms.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from ..errors import ConfigError, ShapeError

FLOATS = (np.float32, np.float64)


def affine(x, *, shift=(0.0, 0.0), rotate=0.0, scale=1.0, shear=0.0) -> np.ndarray:
    """Apply one given transform to every image of x (N, D), (N, H, W) or (N, 1, H, W).

    ``shift = (down, right)`` in pixels; ``rotate`` in degrees counter-clockwise as displayed
    (rows going down), like ``np.rot90``; ``scale`` a factor about the centre; ``shear`` a slant
    in degrees. Each may also be given per image: (N,) arrays, or (N, 2) for ``shift``.

    >>> img = np.zeros((1, 3, 3), np.float32); img[0, 0, 0] = 1
    >>> affine(img, shift=(1, 2))[0]
    array([[0., 0., 0.],
           [0., 0., 1.],
           [0., 0., 0.]], dtype=float32)
    """
    images, shape = as_images(x)
    n = len(images)
    angle, factor, slant = (np.broadcast_to(np.asarray(v, np.float64), (n,)) for v in (rotate, scale, shear))
    for name, value in (("shift", shift), ("rotate", angle), ("scale", factor), ("shear", slant)):
        if not np.isfinite(np.asarray(value, np.float64)).all():
            raise ConfigError(f"{name} must be finite numbers, got {value}")
    if not np.all(factor > 0):
        raise ConfigError(f"scale must be a factor > 0, got {scale}")
    matrix, offset = inverse_affine(angle, factor, slant, np.broadcast_to(np.asarray(shift, np.float64), (n, 2)))
    return bilinear_read(images, matrix, offset, None).reshape(shape)


def warp(x, matrix, offset, displacement=None) -> np.ndarray:
    """out[n, q] = x[n] read at c + matrix[n] (q − c) + offset[n] + displacement[n, :, q] (bilinear).

    x (N, D), (N, H, W) or (N, 1, H, W); matrix (N, 2, 2) and offset (N, 2) act on (row, col)
    coordinates, c = ((H − 1)/2, (W − 1)/2) is the centre; displacement (N, 2, H, W) or None.
    Points outside the image read 0. This is the inverse (pull-back) map: to move content by t,
    pass offset −t. Returns a new array shaped like x.
    """
    images, shape = as_images(x)
    n, h, w = images.shape
    matrix, offset = np.asarray(matrix, np.float64), np.asarray(offset, np.float64)
    if matrix.shape != (n, 2, 2) or offset.shape != (n, 2):
        raise ShapeError(f"warp needs matrix (N, 2, 2) and offset (N, 2) for N = {n} images, got "
                         f"{matrix.shape} and {offset.shape}")
    if not (np.isfinite(matrix).all() and np.isfinite(offset).all()):
        raise ShapeError("warp needs a finite matrix and offset; they hold NaN or infinite values")
    if displacement is not None:
        displacement = np.asarray(displacement)
        if displacement.shape != (n, 2, h, w):
            raise ShapeError(f"displacement must be (N, 2, H, W) = {(n, 2, h, w)}, got {displacement.shape}")
        if not np.isfinite(displacement).all():
            raise ShapeError("the displacement holds NaN or infinite values")
        displacement = displacement.astype(np.float32)  # a copy: bilinear_read writes into it
    return bilinear_read(images, matrix, offset, displacement).reshape(shape)


def elastic_field(n: int, shape: tuple[int, int], alpha: float, sigma: float,
                  rng: np.random.Generator) -> np.ndarray:
    """(N, 2, H, W) float32 displacements d = alpha · (g_sigma ∗ u), u ~ U(−1, 1) per pixel and axis.

    g_sigma is a normalised Gaussian, applied as (H, H) and (W, W) smoothing matrices G:
    d = alpha · G_H (2U − 1) G_Wᵀ = 2·alpha · G_H U G_Wᵀ − alpha, since every row of G sums to 1.
    Typical |d| per axis for alpha = 34, sigma = 4 is ~1.4 px (std).
    """
    if not (alpha >= 0 and sigma > 0):
        raise ConfigError(f"elastic distortion needs alpha >= 0 and sigma > 0 pixels, got {alpha} and {sigma}")
    h, w = shape
    noise = rng.random((2 * n, h, w), dtype=np.float32)  # U[0, 1)
    rows = smoothing_matrix(h, sigma) * np.float32(2 * alpha)
    # NOTE: stacked small products (one GEMM per image) instead of one tall GEMM: on a busy
    # 2-core machine OpenBLAS's threaded tall GEMM can stall for milliseconds
    field = np.matmul(np.matmul(rows, noise), _transposed_smoothing(w, sigma))
    field -= np.float32(alpha)
    return field.reshape(n, 2, h, w)


@functools.lru_cache(maxsize=16)
def smoothing_matrix(size: int, sigma: float) -> np.ndarray:
    """(size, size) float32 G with G @ v = the Gaussian smoothing of v (size,), borders mirrored.

    Row i holds the taps g_k = exp(−k²/(2 sigma²)) / Σ g, k = −r..r with r = round(4 sigma)
    (SciPy's truncation), at columns i + k reflected as in d c b a | a b c d | d c b a; so every
    row sums to 1 and smoothing a constant returns it. Cached and read-only.
    """
    radius = max(1, int(4 * sigma + 0.5))
    taps = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    kernel /= kernel.sum()
    rows = np.broadcast_to(np.arange(size)[:, None], (size, len(taps)))
    cols = np.mod(rows + taps, 2 * size)  # the mirrored signal repeats every 2·size samples
    cols = np.where(cols >= size, 2 * size - 1 - cols, cols)
    matrix = np.zeros((size, size))
    np.add.at(matrix, (rows, cols), np.broadcast_to(kernel, rows.shape))
    matrix = matrix.astype(np.float32)
    matrix.flags.writeable = False
    return matrix


@functools.lru_cache(maxsize=16)
def _transposed_smoothing(size: int, sigma: float) -> np.ndarray:
    """smoothing_matrix(size, sigma).T, C-contiguous (a transposed view makes BLAS slower)."""
    matrix = np.ascontiguousarray(smoothing_matrix(size, sigma).T)
    matrix.flags.writeable = False
    return matrix


def inverse_affine(angle, scale, shear, shift) -> tuple[np.ndarray, np.ndarray]:
    """A (N, 2, 2) and o (N, 2) of the pull-back of q = c + F (p − c) + t, in (row, col) order.

    F = scale · R · H with R = [[cos, −sin], [sin, cos]] (counter-clockwise on screen, rows
    pointing down) and H = [[1, 0], [k, 1]], k = tan(shear) (col += k · row). Then
    A = F⁻¹ = H⁻¹ Rᵀ / scale = [[cos, sin], [−k cos − sin, cos − k sin]] / scale, o = −A t.
    """
    theta, k = np.deg2rad(angle), np.tan(np.deg2rad(shear))
    cos, sin = np.cos(theta), np.sin(theta)
    matrix = np.empty((len(theta), 2, 2))
    matrix[:, 0, 0], matrix[:, 0, 1] = cos, sin
    matrix[:, 1, 0], matrix[:, 1, 1] = -k * cos - sin, cos - k * sin
    matrix /= np.asarray(scale)[:, None, None]
    return matrix, -np.einsum("nij,nj->ni", matrix, shift)


def bilinear_read(images: np.ndarray, matrix: np.ndarray, offset: np.ndarray, field) -> np.ndarray:
    """Bilinear read of images (N, H, W) at s(q) = c + A (q − c) + o + d(q); zeros outside.

    The batch is copied into a zero frame one pixel wide on top/left and two on bottom/right;
    coordinates are clipped into [−1, H] x [−1, W], where every neighbour read is either a real
    pixel or a zero of the frame, so no mask is needed. ``field`` (N, 2, H, W) float32 is
    overwritten (it becomes the coordinates).
    """
    n, h, w = images.shape
    stride, plane = w + 3, (h + 3) * (w + 3)
    frame = np.zeros((n, h + 3, w + 3), images.dtype)
    frame[:, 1:h + 1, 1:w + 1] = images
    gy, gx = _centred_grid(h, w)
    a, o = matrix.astype(np.float32), offset.astype(np.float32)
    o += np.array([(h - 1) / 2 + 1, (w - 1) / 2 + 1], np.float32)  # centre, +1 for the frame
    # the flat index y0·stride + x0 + n·plane is built in floats (exact below 2^24), converted once
    exact = np.float32 if n * plane < 2 ** 24 else np.float64
    index = (np.arange(n) * plane).astype(exact)[:, None, None]
    weights = []
    for axis, limit, step in ((0, h + 1, stride), (1, w + 1, 1)):
        # (N, H, 1) + (N, 1, W): the affine part costs one full-size add per axis
        from_row = a[:, axis, 0, None, None] * gy + o[:, axis, None, None]
        from_col = a[:, axis, 1, None, None] * gx
        if field is None:
            s = from_row + from_col
        else:
            s = field[:, axis]
            s += from_row
            s += from_col
        np.clip(s, 0, limit, out=s)  # frame coordinates: row −1 of the image is row 0 here
        floor = np.floor(s).astype(exact, copy=False)  # s >= 0: the top/left neighbour
        s -= floor  # now the weight of the bottom/right neighbour
        weights.append(s)
        floor *= step
        floor += index
        index = floor
    wy, wx = weights
    flat, index = frame.ravel(), index.astype(np.intp)
    top_left, top_right = flat.take(index), flat[1:].take(index)
    bottom_left, out = flat[stride:].take(index), flat[stride + 1:].take(index)
    top_right -= top_left  # top = tl + wx (tr − tl), bottom likewise, out = top + wy (bottom − top)
    top_right *= wx
    top_right += top_left
    out -= bottom_left
    out *= wx
    out += bottom_left
    out -= top_right
    out *= wy
    out += top_right
    # NOTE: no clip needed: a + w (b − a) with 0 <= w < 1 stays within [min(a, b), max(a, b)] in
    # floating point too (checked on millions of float32 triples), so values stay in [0, 1]
    return out


@functools.lru_cache(maxsize=16)
def _centred_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column offsets from the centre: (H, 1) and (1, W) float32, read-only."""
    gy = (np.arange(h, dtype=np.float32) - np.float32((h - 1) / 2))[:, None]
    gx = (np.arange(w, dtype=np.float32) - np.float32((w - 1) / 2))[None, :]
    gy.flags.writeable = gx.flags.writeable = False
    return gy, gx


def as_images(x) -> tuple[np.ndarray, tuple[int, ...]]:
    """(images (N, H, W), x.shape) for x (N, H·W) with square images, (N, H, W) or (N, 1, H, W)."""
    x = np.asarray(x)
    if x.dtype not in FLOATS:
        raise ShapeError(f"augmentation needs float images in [0, 1] (float32), got dtype {x.dtype}; "
                         "scale uint8 pixels first with scale_pixels")
    if x.ndim == 2:
        side = math.isqrt(x.shape[1])
        if side * side != x.shape[1] and x.shape[0] == x.shape[1]:  # one square image, not N flat ones
            raise ShapeError(f"got one {x.shape[0]}x{x.shape[1]} image; augmentation takes a batch: pass x[None]")
        if side * side != x.shape[1] or side == 0:
            raise ShapeError(f"flat images (N, D) must be square, D = H·W, got D = {x.shape[1]}; "
                             "pass (N, H, W) for other sizes")
        h = w = side
    elif x.ndim == 3:
        h, w = x.shape[1:]
    elif x.ndim == 4 and x.shape[1] == 1:
        h, w = x.shape[2:]
    else:
        raise ShapeError(f"augmentation expects (N, H·W), (N, H, W) or (N, 1, H, W) grayscale images, "
                         f"got shape {x.shape}")
    if x.size and not (x.min() >= 0 and x.max() <= 1):
        raise ShapeError(f"pixel values must be in [0, 1], got {x.min():g}..{x.max():g}; "
                         "scale them with scale_pixels (pixel / 255)")
    return x.reshape(len(x), h, w), x.shape
