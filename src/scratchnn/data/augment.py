"""On-the-fly augmentation of digit images: random shifts, rotations, scaling, shear, elastic
distortion (and, for clothes, left-right mirrors).

Every image of a batch gets its own random transform, applied by inverse mapping: for each
output pixel q = (row, col) we compute where it comes from in the input, then read the input
there by bilinear interpolation, with zeros outside the image. With c the image centre,

    s(q) = c + A (q − c) + o + d(q)             out[q] = bilinear(x, s(q))

The affine part moves the content as q = c + F (p − c) + t with F = scale · R(angle) · Shear,
so A = F⁻¹ and o = −F⁻¹ t. det F = scale² > 0: a digit is never mirrored (a mirrored 2 is not a 2).
The elastic part d is Simard et al. (2003): per image and per axis a field of U(−1, 1) noise,
smoothed by a Gaussian of width sigma and scaled by alpha (pixels).

Everything is vectorised over the batch: the coordinates are (N, H, W) arrays, the Gaussian
smoothing is two stacks of small matrix products (see ``smoothing_matrix``), the bilinear read is
four ``take``s from the zero-padded batch. NumPy only; a batch of 128 28x28 images takes ~2 ms.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, ShapeError, names_in_message

FLOATS = (np.float32, np.float64)


@dataclass(frozen=True)
class Augmentation:
    """Random per-image transforms for a batch x (N, 784), (N, H, W) or (N, 1, H, W) in [0, 1].

    Each image, with probability ``p``, is moved by a shift uniform in [−shift, shift] px per
    axis, rotated by an angle uniform in [−rotate, rotate] degrees (about the image centre),
    scaled by a factor uniform in [1 − scale, 1 + scale], slanted by a shear angle uniform in
    [−shear, shear] degrees (rows slide sideways, like handwriting leaning), and distorted by an
    elastic field of strength ``elastic_alpha`` px and smoothness ``elastic_sigma`` px. Zero
    switches a part off; the defaults change nothing. ``DIGITS`` is the preset for MNIST.

    ``aug(x, rng)`` returns a new array of x's shape and dtype; x is never modified. The same
    generator state gives bit-identical output. Variants: ``dataclasses.replace(DIGITS, shear=0)``.

    >>> aug = Augmentation(shift=2, rotate=10)
    >>> x = np.zeros((5, 784), np.float32)
    >>> aug(x, np.random.default_rng(0)).shape
    (5, 784)
    >>> Augmentation(rotate=-5)
    Traceback (most recent call last):
    scratchnn.errors.ConfigError: rotate must be between 0 and 180 degrees, got -5
    """

    shift: float = 0.0  # pixels
    rotate: float = 0.0  # degrees
    scale: float = 0.0  # fraction: 0.1 means ±10 %
    shear: float = 0.0  # degrees
    elastic_alpha: float = 0.0  # pixels
    elastic_sigma: float = 4.0  # pixels; used only when elastic_alpha > 0
    flip: float = 0.0  # probability of a left-right mirror (clothes, never digits: a mirrored 2 is no 2)
    p: float = 1.0  # probability that an image is augmented at all

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise ConfigError(f"augmentation {field.name} must be a number, got {value!r}")
            object.__setattr__(self, field.name, float(value))  # frozen: set once, here
        self.validate()

    def validate(self) -> Augmentation:
        """Raise ConfigError naming the first invalid value; returns self."""
        for name in ("shift", "rotate", "scale", "shear", "elastic_alpha", "elastic_sigma", "flip", "p"):
            if not math.isfinite(getattr(self, name)):
                raise ConfigError(f"augmentation {name} must be a finite number, got {getattr(self, name):g}")
        if self.shift < 0:
            raise ConfigError(f"shift must be >= 0 pixels, got {self.shift:g}")
        if not 0 <= self.rotate <= 180:
            raise ConfigError(f"rotate must be between 0 and 180 degrees, got {self.rotate:g}")
        if not 0 <= self.scale < 1:
            raise ConfigError(f"scale must be in [0, 1) (0.1 means sizes from 90% to 110%), got {self.scale:g}")
        if not 0 <= self.shear <= 45:
            raise ConfigError(f"shear must be between 0 and 45 degrees, got {self.shear:g}")
        if self.elastic_alpha < 0:
            raise ConfigError(f"elastic_alpha must be >= 0 pixels (0 turns elastic distortion off), "
                              f"got {self.elastic_alpha:g}")
        if self.elastic_sigma < 0 or (self.elastic_alpha > 0 and self.elastic_sigma == 0):
            raise ConfigError(f"elastic_sigma must be > 0 pixels (the smoothing width; ~4 for 28x28 "
                              f"digits), got {self.elastic_sigma:g}")
        if not 0 <= self.flip <= 1:
            raise ConfigError(f"flip is the probability of mirroring an image left to right, in [0, 1]; "
                              f"got {self.flip:g}")
        if not 0 <= self.p <= 1:
            raise ConfigError(f"p is the probability that an image is augmented, in [0, 1]; got {self.p:g}")
        return self

    @property
    def is_identity(self) -> bool:
        """True when no image can change (p = 0 or every strength 0)."""
        return self.p == 0 or not (self.shift or self.rotate or self.scale or self.shear or self.elastic_alpha
                                   or self.flip)

    def describe(self) -> str:
        """'shifts ±2 px, turns ±12°, sizes ±10%, slants ±8°, elastic 20 px (sigma 4), 80% of images'."""
        parts = [f"shifts ±{self.shift:g} px" * bool(self.shift), f"turns ±{self.rotate:g}°" * bool(self.rotate),
                 f"sizes ±{self.scale:.0%}" * bool(self.scale), f"slants ±{self.shear:g}°" * bool(self.shear),
                 f"elastic {self.elastic_alpha:g} px (sigma {self.elastic_sigma:g})" * bool(self.elastic_alpha),
                 f"mirrors {self.flip:.0%} of the time" * bool(self.flip)]
        text = ", ".join(part for part in parts if part) or "nothing"
        return text + ("" if self.p == 1 else f", {self.p:.0%} of images")

    def to_dict(self) -> dict[str, float]:
        """Plain floats by field name, for a TOML/JSON training config."""
        return dataclasses.asdict(self)

    @staticmethod
    def record(augmentation: Augmentation | None) -> dict | None:
        """What a model file or checkpoint keeps of a run's augmentation (None: none)."""
        return None if augmentation is None else augmentation.to_dict()

    @classmethod
    def from_record(cls, values) -> Augmentation | None:
        """The inverse of ``record``: None for None, else ``from_dict`` (ConfigError when invalid)."""
        return None if values is None else cls.from_dict(values)

    @classmethod
    def text_of(cls, values) -> str:
        """``describe()`` of a record ('none' for None), or 'not readable (why)' for a bad one."""
        try:
            return "none" if values is None else cls.from_dict(values).describe()
        except ConfigError as error:
            return f"not readable ({error})"

    @classmethod
    def from_dict(cls, values: dict) -> Augmentation:
        """The inverse of ``to_dict``; missing keys keep their defaults, unknown keys are an error."""
        if not isinstance(values, dict):
            raise ConfigError(f"augmentation settings must be a table of name = value, got {type(values).__name__}")
        known = [field.name for field in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"unknown augmentation setting(s) {names_in_message(unknown)}; "
                              f"known: {', '.join(known)}")
        return cls(**values)

    def __call__(self, x, rng: np.random.Generator) -> np.ndarray:
        """x (N, D) with D = H·W, (N, H, W) or (N, 1, H, W), floats in [0, 1] -> a new array, same shape."""
        if not isinstance(rng, np.random.Generator):
            raise ConfigError(f"rng must be a numpy Generator (np.random.default_rng(seed)), "
                              f"got {type(rng).__name__}")
        images, shape = _as_images(x)
        n, h, w = images.shape
        if self.is_identity or n == 0:
            return images.reshape(shape).copy()
        if self.shift >= min(h, w) / 2:
            raise ConfigError(f"shift of {self.shift:g} px would move a {h}x{w} image out of its frame; "
                              f"use less than {min(h, w) / 2:g}")
        # NOTE: every draw happens whatever p is, so the stream position depends only on N
        applied = rng.random(n) < self.p
        angle = rng.uniform(-self.rotate, self.rotate, n) * applied
        scale = 1 + rng.uniform(-self.scale, self.scale, n) * applied
        shear = rng.uniform(-self.shear, self.shear, n) * applied
        shift = rng.uniform(-self.shift, self.shift, (n, 2)) * applied[:, None]
        matrix, offset = _inverse_affine(angle, scale, shear, shift)
        field = None
        if self.elastic_alpha > 0:
            field = elastic_field(n, (h, w), self.elastic_alpha, self.elastic_sigma, rng)
            field[~applied] = 0
        out = _sample(images, matrix, offset, field)
        if self.flip > 0:  # drawn only when used, so the streams of the other settings stay as they were
            mirrored = applied & (rng.random(n) < self.flip)
            out[mirrored] = out[mirrored, :, ::-1]
        return out.reshape(shape)


# Strengths for 28x28 handwritten digits, checked by eye on MNIST (benchmarks/augment_preview.py).
# Elastic: Simard et al. 2003 used alpha = 34, sigma = 4 on its own (per-axis std ~1.4 px inside
# the image); Ciresan et al. 2011 used alpha = 36, sigma = 6. On top of the affine part those bend
# 7s into '>' and knot 8s, so we keep sigma = 4 and halve the strength (alpha = 20, std ~0.8 px).
# Affine: shifts ±2 px, rotations ±12°, sizes ±10 % and a ±8° slant are the usual MNIST ranges.
# One digit in five is left as it is (p = 0.8). A moved digit is read back between pixels, and a
# bilinear read mixes neighbours (weights 1 − t and t): every augmented digit is a little blurred
# (variance t(1 − t), 1/6 px² on average, per axis). With p = 1 a network never saw a sharp
# digit, then was asked about sharp ones: nine cnn-best runs, each on its own 1,000 dev digits,
# made 46 mistakes on the digits as they are and 33 on the same digits blurred (Gaussian,
# sigma 0.5 px). Trained with p = 0.8 on the same nine splits: 33 on the digits as they are
# (p = 0.9: 40; p = 0.5, on six of the splits: 37 against 0.8's 28).
DIGITS = Augmentation(shift=2.0, rotate=12.0, scale=0.1, shear=8.0, elastic_alpha=20.0, elastic_sigma=4.0, p=0.8)
# Clothes (Fashion-MNIST) are photographed upright and centred: rotating, slanting or bending a
# shirt makes images the test set never has, and even sub-pixel shifts blur the fabric's texture
# (bilinear reads). A shirt mirrored is still a shirt, and a mirror is exact. With the cnn preset,
# seed 0: digit augmentation reached 87% dev by epoch 6 (vs 89% without it); shifts of ±2 px and
# mirrors gave 92.1% test, mirrors alone 92.5%.
CLOTHES = Augmentation(flip=0.5)
AUGMENTATIONS = {"fashion-mnist": CLOTHES}  # by dataset name; any other data gets DIGITS


def augmentation_for(dataset: str) -> Augmentation:
    """The augmentation that suits a named dataset: CLOTHES for fashion-mnist, else DIGITS."""
    return AUGMENTATIONS.get(dataset, DIGITS)


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
    images, shape = _as_images(x)
    n = len(images)
    angle, factor, slant = (np.broadcast_to(np.asarray(v, np.float64), (n,)) for v in (rotate, scale, shear))
    if not np.all(factor > 0):
        raise ConfigError(f"scale must be a factor > 0, got {scale}")
    matrix, offset = _inverse_affine(angle, factor, slant, np.broadcast_to(np.asarray(shift, np.float64), (n, 2)))
    return _sample(images, matrix, offset, None).reshape(shape)


def warp(x, matrix, offset, displacement=None) -> np.ndarray:
    """out[n, q] = x[n] read at c + matrix[n] (q − c) + offset[n] + displacement[n, :, q] (bilinear).

    x (N, D), (N, H, W) or (N, 1, H, W); matrix (N, 2, 2) and offset (N, 2) act on (row, col)
    coordinates, c = ((H − 1)/2, (W − 1)/2) is the centre; displacement (N, 2, H, W) or None.
    Points outside the image read 0. This is the inverse (pull-back) map: to move content by t,
    pass offset −t. Returns a new array shaped like x.
    """
    images, shape = _as_images(x)
    n, h, w = images.shape
    matrix, offset = np.asarray(matrix, np.float64), np.asarray(offset, np.float64)
    if matrix.shape != (n, 2, 2) or offset.shape != (n, 2):
        raise ShapeError(f"warp needs matrix (N, 2, 2) and offset (N, 2) for N = {n} images, got "
                         f"{matrix.shape} and {offset.shape}")
    if displacement is not None:
        displacement = np.asarray(displacement)
        if displacement.shape != (n, 2, h, w):
            raise ShapeError(f"displacement must be (N, 2, H, W) = {(n, 2, h, w)}, got {displacement.shape}")
        displacement = displacement.astype(np.float32)  # a copy: _sample writes into it
    return _sample(images, matrix, offset, displacement).reshape(shape)


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


def _inverse_affine(angle, scale, shear, shift) -> tuple[np.ndarray, np.ndarray]:
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


def _sample(images: np.ndarray, matrix: np.ndarray, offset: np.ndarray, field) -> np.ndarray:
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


def _as_images(x) -> tuple[np.ndarray, tuple[int, ...]]:
    """(images (N, H, W), x.shape) for x (N, H·W) with square images, (N, H, W) or (N, 1, H, W)."""
    x = np.asarray(x)
    if x.dtype not in FLOATS:
        raise ShapeError(f"augmentation needs float images in [0, 1] (float32), got dtype {x.dtype}; "
                         "scale uint8 pixels first with scale_pixels")
    if x.ndim == 2:
        side = math.isqrt(x.shape[1])
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
