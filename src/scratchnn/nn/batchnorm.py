"""Batch normalisation: BatchNorm1d over the batch of (N, D) features, BatchNorm2d per channel
of (N, C, H, W) images. Both are one computation on a matrix of rows (M, C): each column is
normalised with the statistics of its M numbers. For BatchNorm1d the rows are the N samples;
for BatchNorm2d they are the N·H·W pixels of every image (the statistics axes (0, 2, 3) of x).

A bias just before a batch norm does nothing: the mean subtraction removes it (x + b − μ(x + b)
= x − μ(x)), so its true gradient is exactly 0 and β does its job. The presets keep it anyway
(``Dense`` and ``Conv2D`` always have one); Adam divides by √v̂ + ε, and ε = 1e-8 is only ~10x
the gradient's float rounding (~1e-9), so that rounding still takes steps about a tenth of the
usual size: such a bias drifts (to ~0.01 in 3 epochs) and the normalisation takes it out again
(the running mean follows it). PyTorch users write ``bias=False`` there; here
it costs one number per unit.

The fast path (``scratchnn.fast``) runs these layers with sums along wider views of memory, an
evaluation in two passes, on threads, and fused with the layers around them (fast/batchnorm*.py).
"""
from __future__ import annotations

import warnings

import numpy as np

from ..errors import ConfigError, OtherConvention, ShapeError
from .base import Layer, check_features, whole_units
from .im2col import from_pixel_major, pixel_major
from .schema import check_number, features_in, images_in, units


KERAS_LIKE = 0.5  # a momentum above this is most likely Keras's (0.99: 1 - PyTorch's), said in a warning


class _BatchNorm(Layer, register=False):
    """y = γ·x̂ + β with x̂ = (x − μ)/σ per column of a matrix of rows x (M, C); γ, β (C,).

    Training normalises with the statistics of the M rows, per column c:
        μ = mean of x      v = mean of (x − μ)² (biased)      σ = √(v + eps)
    and updates the buffers (as PyTorch does: the running variance takes the unbiased v·M/(M − 1)):
        running_mean ← (1 − momentum)·running_mean + momentum·μ
        running_var  ← (1 − momentum)·running_var  + momentum·v·M/(M − 1)
    Evaluation uses μ = running_mean, σ = √(running_var + eps), so a sample's output does not
    depend on the rest of its batch.

    Backward, for upstream dy (M, C), means and sums over the M rows:
        dγ = Σ dy·x̂      dβ = Σ dy
        training:  dx = (γ/σ)·(dy − mean(dy) − x̂·mean(dy·x̂))   (μ and σ depend on every row)
        eval:      dx = (γ/σ)·dy                               (μ and σ are constants)
    The training dx is the chain rule through x̂ = (x − μ)/σ: dx̂ = γ·dy, and moving one x moves
    μ (the mean(dy) term) and σ (the x̂·mean(dy·x̂) term) for every row of its column.

    Subclasses name the width (``size_name``), say what a row is (``rows_are``) and turn their
    input into rows and back.
    """

    trains_differently = True  # batch statistics while training, running averages after

    size_name = "features"
    rows_are = "samples per batch"
    buffer_names = ("running_mean", "running_var")
    optional_keywords = {"momentum": lambda v, w: check_number(v, w, 0, 1),
                         "eps": lambda v, w: check_number(v, w, 0, 1, open_low=True)}

    def __init__(self, size: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        kind, name = type(self).__name__, self.size_name
        size = whole_units(size, f"{kind} {name}")
        if not 0 <= momentum <= 1:
            raise ConfigError(f"{kind} momentum must be in [0, 1], got {momentum}")
        if momentum == 0:  # the numerics audit: dev accuracy 0.69 where training's was 0.92, without a word
            warnings.warn(f"{kind} momentum 0 never updates the running statistics, so evaluation normalises with "
                          "mean 0 and variance 1 whatever the data (momentum is the newest batch's weight, "
                          "PyTorch's convention: 0.1 is the usual)", OtherConvention, stacklevel=3)
        if momentum > KERAS_LIKE:  # Keras's 0.99 keeps 99% of the old average; here it keeps 1%
            warnings.warn(f"{kind} momentum {momentum:g} weighs the newest batch {momentum:.0%} in the running "
                          f"statistics (PyTorch's convention): Keras's momentum={momentum:g} is momentum="
                          f"{1 - momentum:.2g} here", OtherConvention, stacklevel=3)
        if not eps > 0 or np.float32(eps) == 0:  # a constant channel (dead units) is then normalised by 0/0
            raise ConfigError(f"{kind} eps must be > 0 (and not 0 in float32: 1e-5 is the usual), got {eps}")
        self.size, self.momentum, self.eps = int(size), float(momentum), float(eps)
        c = self.size
        self.params = {"gamma": np.ones(c, np.float32), "beta": np.zeros(c, np.float32)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.buffers = {"running_mean": np.zeros(c, np.float32), "running_var": np.ones(c, np.float32)}

    def _normalise(self, x, training):
        """y (M, C) for rows x (M, C); caches x̂ and σ for ``_backward_rows``."""
        if training:
            self.check_rows(len(x))
            # NOTE: summed in float64: a float32 sum of 100,000 rows (a batch of 128 images of 28x28)
            # loses digits, and an offset input (1000 + noise) came out with a mean of -0.018, not 0
            mean = x.mean(axis=0, dtype=np.float64).astype(x.dtype)
            var = ((x - mean) ** 2).mean(axis=0, dtype=np.float64).astype(x.dtype)
            self.update_running_statistics(mean, var, len(x))
        else:
            mean, var = self.buffers["running_mean"], self.buffers["running_var"]
        std = np.sqrt(var + self.eps)
        x_hat = (x - mean) / std
        self._cache = (x_hat, std, training)
        return self.params["gamma"] * x_hat + self.params["beta"]

    def _backward_rows(self, dy, need_dx):
        """dx (M, C) for dy (M, C), or None; fills grads."""
        x_hat, std, training = self._take_cache()
        self.grads["gamma"][...] = (dy * x_hat).sum(axis=0)
        self.grads["beta"][...] = dy.sum(axis=0)
        if not need_dx:
            return None
        if not training:
            return self.params["gamma"] / std * dy
        return self.params["gamma"] / std * (dy - dy.mean(axis=0) - x_hat * (dy * x_hat).mean(axis=0))

    def check_rows(self, m: int) -> None:
        """A training batch of m rows must have a variance: ShapeError naming the fix if m < 2."""
        if m < 2:
            raise ShapeError(f"{self!r} needs at least 2 {self.rows_are} in training mode "
                             f"(a batch of {m} has no variance); change the batch size")

    def update_running_statistics(self, mean: np.ndarray, var: np.ndarray, m: int) -> None:
        """Fold one batch's μ and biased v (over m rows) into the running averages."""
        k = self.momentum
        # In place, so arrays handed out by state_dict() stay the layer's buffers.
        running_mean, running_var = self.buffers["running_mean"], self.buffers["running_var"]
        running_mean *= 1 - k
        running_mean += k * mean
        running_var *= 1 - k
        running_var += (k * m / (m - 1)) * var

    def config(self):
        return {self.size_name: self.size, "momentum": self.momentum, "eps": self.eps}


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of features: x (N, D) -> y (N, D), γ and β (D,); the rows are the N
    samples, so per feature d: μ = Σₙ x / N, and so on (the math is ``_BatchNorm``'s):

        y = γ·(x − μ)/σ + β
        dγ = Σₙ dy·x̂    dβ = Σₙ dy    dx = (γ/σ)·(dy − meanₙ(dy) − x̂·meanₙ(dy·x̂))  (training)

    Args:
        features: D, the width of the input.
        momentum: weight of the newest batch in the running statistics, in [0, 1].
        eps: added to the variance so a constant feature does not divide by 0.
    """

    required_keywords = {"features": units}  # what a model file may say (see nn/schema.py)

    def __init__(self, features: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__(features, momentum, eps)

    @property
    def features(self) -> int:
        return self.size

    def forward(self, x, training=False):
        check_features(self, x, self.size)
        return self._normalise(x, training)

    def backward(self, dy, need_dx=True):
        return self._backward_rows(dy, need_dx)

    @classmethod
    def config_shapes(cls, args, shape, where):
        features_in(shape, args["features"], where)
        return shape, {name: shape for name in ("gamma", "beta", "running_mean", "running_var")}

    @classmethod
    def gradcheck_cases(cls, rng):
        return [(batchnorm_with_random_affine(6, rng), 2 + 3 * rng.standard_normal((8, 6)))]


class BatchNorm2d(_BatchNorm):
    """Batch normalisation per channel of images: x (N, C, H, W) -> y (N, C, H, W), γ and β (C,).

    Each channel is normalised with the statistics of all its N·H·W numbers (the axes (0, 2, 3)),
    so every pixel of a feature map gets the same γ and β, as a convolution gives every pixel the
    same kernel. With M = N·H·W and sums over n, h, w, per channel c:

        μ = Σ x / M    v = Σ (x − μ)² / M    x̂ = (x − μ)/√(v + eps)    y = γ·x̂ + β
        dγ = Σ dy·x̂    dβ = Σ dy    dx = (γ/σ)·(dy − Σ dy/M − x̂·Σ(dy·x̂)/M)   (training)
        dx = dy·γ/σ with σ = √(running_var + eps)                           (eval)

    The running statistics follow PyTorch (``momentum``; unbiased variance v·M/(M − 1)). The
    work is BatchNorm1d's on the (H·W·N, C) matrix of pixel rows (``pixel_rows``), a view of a
    pixel-major x; the output is pixel-major too, like a convolution's.

    Args:
        channels: C, the number of feature maps.
        momentum: weight of the newest batch in the running statistics, in [0, 1].
        eps: added to the variance so a constant channel does not divide by 0.
    """

    size_name = "channels"
    rows_are = "numbers per channel (N·H·W)"
    required_keywords = {"channels": units}  # what a model file may say (see nn/schema.py)

    def __init__(self, channels: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__(channels, momentum, eps)

    @property
    def channels(self) -> int:
        return self.size

    def forward(self, x, training=False):
        if x.ndim != 4 or x.shape[1] != self.size:
            raise ShapeError(f"{self!r} expects images of shape (N, {self.size}, H, W), got {x.shape}")
        n, c, h, w = x.shape
        y = self._normalise(pixel_rows(x), training)
        return from_pixel_major(y.reshape(h, w, n, c))

    def backward(self, dy, need_dx=True):
        self._take_cache()  # the clear error when forward has not run, before dy's shape is read
        n, c, h, w = dy.shape
        dx = self._backward_rows(pixel_rows(dy), need_dx)
        return None if dx is None else from_pixel_major(dx.reshape(h, w, n, c))

    @classmethod
    def config_shapes(cls, args, shape, where):
        images_in(shape, args["channels"], where)
        return shape, {name: (shape[0],) for name in ("gamma", "beta", "running_mean", "running_var")}

    @classmethod
    def gradcheck_cases(cls, rng):
        # one input in (N, C, H, W) memory, one pixel-major as a convolution passes it on
        return [(batchnorm_with_random_affine(3, rng, cls), 2 + 3 * rng.standard_normal((2, 3, 3, 4))),
                (batchnorm_with_random_affine(2, rng, cls),
                 from_pixel_major(1 - 2 * rng.standard_normal((3, 2, 4, 2))))]


def pixel_rows(x: np.ndarray) -> np.ndarray:
    """x (N, C, H, W) as its pixels' rows (H·W·N, C), ordered (h, w, n): a view of a pixel-major x,
    the memory a convolution gives (see ``im2col``), so each row is one pixel's C channels."""
    n, c, h, w = x.shape
    return pixel_major(x).reshape(h * w * n, c)


def batchnorm_with_random_affine(size: int, rng: np.random.Generator, kind: type = BatchNorm1d) -> _BatchNorm:
    """A BatchNorm1d (or ``kind``) whose γ, β and running statistics are random rather than the
    1s and 0s they start at, so a check would notice a backward that drops γ or confuses the
    statistics."""
    layer = kind(size)
    layer.params["gamma"][...] = rng.uniform(0.5, 2.0, size)
    layer.params["beta"][...] = rng.standard_normal(size)
    layer.buffers["running_mean"][...] = rng.standard_normal(size)
    layer.buffers["running_var"][...] = rng.uniform(0.5, 2.0, size)
    return layer
