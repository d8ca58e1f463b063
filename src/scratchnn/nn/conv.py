"""Convolution and pooling over images x (N, C, H, W): Conv2D, MaxPool2D, AvgPool2D.

Every layer here maps (N, C, H, W) to (N, F or C, OH, OW) with
    OH = (H + 2·padding − KH) // stride + 1,   OW = (W + 2·padding − KW) // stride + 1
(pooling has no padding). See ``im2col`` for how windows become rows of a matrix.

NOTE on memory layout: outputs have the (N, C, H, W) shape but pixel-major memory (they are
x.transpose(2, 3, 0, 1) views of (H, W, N, C) arrays; see ``im2col`` for why). A GEMM over
im2col rows ordered (oh, ow, n) produces exactly that layout, so no layer ever transposes a
whole activation; elementwise layers (ReLU) keep it. Any memory order is accepted as input;
the answer is the same, only the speed differs.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError, ModelFileError, ShapeError
from . import winograd, winograd4
from .base import Layer
from .check_inputs import distinct_values
from .im2col import (
    as_pair,
    col2im,
    conv_output_shape,
    from_pixel_major,
    im2col,
    kernel_from_matrix,
    kernel_matrix,
    pixel_major,
)
from .init import get_initializer
from .schema import MAX_SAMPLE, initializer, one_of, optional, units, window

ALGORITHMS = ("im2col", "winograd", "winograd4", "auto")
WINOGRAD = {"winograd": winograd, "winograd4": winograd4}  # the algorithm's module: F(2x2, 3x3), F(4x4, 3x3)
# "auto" runs F(4x4, 3x3) for a 3x3 stride-1 convolution with at least 32 input channels, or 16
# with outputs at least 24 a side. Measured (benchmarks/conv_benchmark.py --grid --cpu-time:
# C, F in 8..64, N=128, forward + backward, one BLAS thread), its time over im2col's:
#   C >= 32: 11x11 outputs 0.63-0.82, 14x14 0.64-0.81, 28x28 0.48-0.60
#   C = 16:  28x28 0.51-0.66; 11x11 and 14x14 0.71-1.12     C = 8: 0.68-1.64     C = 1: ~7
# F(2x2, 3x3) was 0-10% quicker than F(4x4, 3x3) at 14x14 with C >= 32 on one thread, but 8-13%
# slower as the fast path's per-thread pipelines run them on two; at 28x28 and 11x11 it is slower.
AUTO_MIN_CHANNELS, AUTO_MIN_CHANNELS_SMALL, AUTO_MIN_SIDE_SMALL = 32, 16, 24


class Conv2D(Layer):
    """2-D convolution (cross-correlation, as in every framework): x (N, C, H, W) -> y (N, F, OH, OW).

        y[n, f, oh, ow] = b[f] + Σ_{c,kh,kw} W[f, c, kh, kw] · x_pad[n, c, oh·sh + kh, ow·sw + kw]

    with W (F, C, KH, KW), b (F,), x_pad = x with ``padding`` zeros around H and W. As matrices,
    with cols = im2col(x) (N·OH·OW, KH·KW·C) and Wm = kernel_matrix(W) (KH·KW·C, F):

        forward    Y = cols·Wm + b            (N·OH·OW, F): one GEMM, Y is y channels-last
        backward   dWm = colsᵀ·dY   db = Σ_rows dY   dcols = dY·Wmᵀ   dx = col2im(dcols)

    NOTE: the bias is the weight of an input that is always 1. cols gets a last column of ones
    and Wm a last row b, so the one GEMM [cols 1]·[Wm; b] adds the bias and [cols 1]ᵀ·dY gives
    [dWm; db]: no separate pass over Y or dY, which for the first layer are ~40x larger than cols.

    Args:
        in_channels, out_channels: C and F.
        kernel_size, stride, padding: ints, or (height, width) pairs.
        init, bias_init: initialiser names from ``scratchnn.nn.init``; fan_in = C·KH·KW,
            fan_out = F·KH·KW (one kernel entry feeds F outputs at KH·KW positions).
        algorithm: how the same convolution is computed. "im2col": the products above.
            "winograd" (3x3 kernels, stride 1): Winograd's F(2x2, 3x3), 16 multiplications per
            2x2 outputs instead of 36, paid for with additions that transform 4x4 input tiles
            and 4x4 product tiles (see ``nn/winograd.py``); equal to im2col up to float rounding.
            "winograd4" (3x3 kernels, stride 1): F(4x4, 3x3), 36 multiplications per 4x4 outputs
            instead of 144, with 6x6 tiles transformed by small matrix products (see
            ``nn/winograd4.py``); float32 rounding a little larger than F(2x2, 3x3)'s.
            "auto" (the default): F(4x4, 3x3) for 3x3 stride-1 layers with >= 32 input channels
            (or 16 on outputs >= 24 a side), where it was measured 18-52% faster; im2col
            elsewhere (see AUTO_MIN_CHANNELS for the measurements).
        rng: ``np.random.Generator`` (or an int seed) that draws the initial values.
    """

    # what a model file may say (see nn/schema.py)
    required_keywords = {"in_channels": units, "out_channels": units, "kernel_size": window(1)}
    optional_keywords = {"stride": window(1), "padding": window(0), "init": initializer, "bias_init": initializer,
                         "algorithm": one_of(ALGORITHMS)}

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, *,
                 init: str = "he_normal", bias_init: str = "zeros", algorithm: str = "auto",
                 rng: np.random.Generator | int | None = None):
        super().__init__()
        self.in_channels = _positive(in_channels, "in_channels")
        self.out_channels = _positive(out_channels, "out_channels")
        self.kernel_size = as_pair(kernel_size, "kernel_size")
        self.stride = as_pair(stride, "stride")
        self.padding = as_pair(padding, "padding", minimum=0)
        self.init, self.bias_init = init, bias_init
        self.algorithm = _check_algorithm(algorithm, self.kernel_size, self.stride)
        rng = np.random.default_rng(rng)
        c, f, (kh, kw) = self.in_channels, self.out_channels, self.kernel_size
        fan_in, fan_out = c * kh * kw, f * kh * kw
        self.params["W"] = get_initializer(init)(rng, (f, c, kh, kw), fan_in, fan_out)
        self.params["b"] = get_initializer(bias_init)(rng, (f,), fan_in, fan_out)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._scratch: dict[str, np.ndarray] = {}  # big work arrays kept between batches of one shape

    def forward(self, x, training=False):
        n, _, h, w = _check_images(self, x, self.in_channels)
        scheme = self.winograd_scheme(h, w)
        if scheme is not None:
            y, cache = scheme.forward(x, self.params["W"], self.params["b"], self.padding, self._buffer)
            self._cache = ("winograd", (scheme, cache))
            return y
        oh, ow = conv_output_shape(h, w, self.kernel_size, self.stride, self.padding)
        (kh, kw), c, f = self.kernel_size, self.in_channels, self.out_channels
        # NOTE: cols is rewritten by the next forward; backward only ever needs the latest one.
        # Few channels (the first layer's C = 1): Fortran order, so im2col copies runs of OW·N floats.
        order = "F" if c < ow else "C"
        k = kh * kw * c
        cols = self._buffer("cols", (oh * ow * n, k + 1), x.dtype, order)
        im2col(x, self.kernel_size, self.stride, self.padding, out=cols[:, :k])
        cols[:, k] = 1
        wm = np.concatenate([kernel_matrix(self.params["W"]), self.params["b"][None]])  # [Wm; b]
        y = cols @ wm  # (OH·OW·N, F) = (OH, OW, N, F) in memory
        self._cache = ("im2col", (x.shape, cols, wm))
        return from_pixel_major(y.reshape(oh, ow, n, f))

    def backward(self, dy, need_dx=True):
        algorithm, cache = self._take_cache()
        if algorithm == "winograd":
            scheme, cache = cache
            return scheme.backward(dy, cache, self.padding, self.grads, self._buffer, need_dx)
        x_shape, cols, wm = cache
        n, _, oh, ow = dy.shape
        (kh, kw), c, f = self.kernel_size, self.in_channels, self.out_channels
        dy_rows = dy.transpose(2, 3, 0, 1).reshape(oh * ow * n, f)  # a view when dy is pixel-major
        # [dWm; db] (KH·KW·C + 1, F) = [cols 1]ᵀ·dY. NOTE: transposes are views that BLAS reads
        # without a copy; OpenBLAS is ~20% faster at the transposed product dYᵀ·cols when cols
        # is row-major (C order), and at colsᵀ·dY when it is column-major (the first layer's).
        dwb = cols.T @ dy_rows if cols.flags.f_contiguous else (dy_rows.T @ cols).T
        kernel_from_matrix(dwb[:-1], self.params["W"].shape, out=self.grads["W"])
        self.grads["b"][...] = dwb[-1]
        if not need_dx:
            return None
        wm = wm[:-1]  # the kernel rows only: the bias has no input to pass a gradient to
        # dcols = dY·Wmᵀ computed as KH·KW products dY·W_kᵀ (OH·OW·N, C), one per kernel offset
        # (one batched matmul call): in that kernel-offset-major memory col2im adds contiguous
        # runs of OW·N·C floats; dY·Wmᵀ in one product is ~3x slower to scatter back.
        dtype = np.result_type(dy_rows, wm)
        dcols = self._buffer("dcols", (kh * kw, oh * ow * n, c), dtype)
        np.matmul(dy_rows, wm.reshape(kh * kw, c, f).transpose(0, 2, 1), out=dcols)
        blocks = dcols.reshape(kh, kw, oh, ow, n, c).transpose(2, 3, 4, 0, 1, 5)  # (OH, OW, N, KH, KW, C)
        return col2im(blocks, x_shape, self.kernel_size, self.stride, self.padding)

    def winograd_scheme(self, height: int, width: int):
        """The Winograd module (``nn.winograd`` or ``nn.winograd4``) a forward on (height, width)
        images runs, or None for im2col: the one named, or for "auto" F(4x4, 3x3) where it was
        measured faster (see AUTO_MIN_CHANNELS)."""
        if self.algorithm != "auto" or (self.kernel_size, self.stride) != ((3, 3), (1, 1)):
            return WINOGRAD.get(self.algorithm)
        side = min(conv_output_shape(height, width, 3, 1, self.padding))
        faster = self.in_channels >= AUTO_MIN_CHANNELS or (
            self.in_channels >= AUTO_MIN_CHANNELS_SMALL and side >= AUTO_MIN_SIDE_SMALL)
        return winograd4 if faster else None

    def uses_winograd(self, height: int, width: int) -> bool:
        """Whether a forward on (height, width) images runs a Winograd algorithm."""
        return self.winograd_scheme(height, width) is not None

    def may_use_winograd(self) -> bool:
        """Whether a forward on some input size runs Winograd (``uses_winograd`` for some sides)."""
        if self.algorithm != "auto" or (self.kernel_size, self.stride) != ((3, 3), (1, 1)):
            return self.algorithm in WINOGRAD
        return self.in_channels >= AUTO_MIN_CHANNELS_SMALL

    def _buffer(self, name: str, shape: tuple[int, ...], dtype, order: str = "C") -> np.ndarray:
        """A scratch array of this shape, dtype and order, reused while batches keep their shape."""
        buffer = self._scratch.get(name)
        if buffer is None or buffer.shape != shape or buffer.dtype != dtype or \
                not buffer.flags[f"{order}_CONTIGUOUS"]:
            buffer = self._scratch[name] = np.empty(shape, dtype, order=order)
        return buffer

    def config(self):
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": _unpair(self.kernel_size), "stride": _unpair(self.stride),
                "padding": _unpair(self.padding), "init": self.init, "bias_init": self.bias_init,
                **({} if self.algorithm == "auto" else {"algorithm": self.algorithm})}

    def output_shape(self, input_shape):
        c, h, w = _check_sample(self, input_shape, self.in_channels)
        return (self.out_channels, *conv_output_shape(h, w, self.kernel_size, self.stride, self.padding))

    def work_floats(self, input_shape):
        """The im2col matrix: OH·OW rows of KH·KW·C numbers and the ones column, per sample;
        for Winograd its work arrays (``winograd.work_floats``)."""
        _, oh, ow = self.output_shape(input_shape)
        scheme = self.winograd_scheme(*input_shape[1:])
        if scheme is not None:
            return scheme.work_floats(input_shape, self.out_channels, self.padding)
        kh, kw = self.kernel_size
        return oh * ow * (kh * kw * self.in_channels + 1)

    @classmethod
    def config_shapes(cls, args, shape, where):
        c, f, kernel = args["in_channels"], args["out_channels"], args["kernel_size"]
        algorithm = args.get("algorithm")
        if algorithm in WINOGRAD and (kernel, args.get("stride", (1, 1))) != ((3, 3), (1, 1)):
            raise ModelFileError(f"{where}: algorithm {algorithm!r} needs a 3x3 kernel with stride 1")
        sides = _window_sides(shape, c, kernel, args.get("stride", (1, 1)), args.get("padding", (0, 0)), where)
        work = sides[0] * sides[1] * (kernel[0] * kernel[1] * c + 1)  # the im2col matrix
        if work > MAX_SAMPLE:
            raise ModelFileError(f"{where} would need a work matrix of {work:,} numbers a sample "
                                 f"(at most {MAX_SAMPLE:,})")
        return (f, *sides), {"W": (f, c, *kernel), "b": (f,)}

    @classmethod
    def gradcheck_cases(cls, rng):
        return [(cls(2, 3, 3, bias_init="glorot_uniform", rng=rng), rng.standard_normal((2, 2, 5, 4))),
                (cls(2, 3, 3, stride=2, padding=1, bias_init="glorot_uniform", rng=rng),
                 rng.standard_normal((2, 2, 5, 6))),
                # Winograd: odd sides (a last tile half outside), padding
                (cls(2, 3, 3, padding=(1, 0), bias_init="glorot_uniform", algorithm="winograd", rng=rng),
                 rng.standard_normal((2, 2, 5, 6))),
                (cls(2, 3, 3, padding=(1, 0), bias_init="glorot_uniform", algorithm="winograd4", rng=rng),
                 rng.standard_normal((2, 2, 7, 6)))]


class _Pool2D(Layer, register=False):
    """What the pooling layers share: a KH×KW window moved by a stride (default: the window size)."""

    optional_keywords = {"size": window(1), "stride": optional(window(1))}  # see nn/schema.py

    def __init__(self, size=2, stride=None):
        super().__init__()
        self.size = as_pair(size, "size")
        self.stride = self.size if stride is None else as_pair(stride, "stride")

    def config(self):
        return {"size": _unpair(self.size), "stride": _unpair(self.stride)}

    def output_shape(self, input_shape):
        c, h, w = _check_sample(self, input_shape)
        return (c, *conv_output_shape(h, w, self.size, self.stride))

    @classmethod
    def config_shapes(cls, args, shape, where):
        size = args.get("size", (2, 2))  # __init__'s default
        stride = args.get("stride") or size
        return (shape[0], *_window_sides(shape, shape[0], size, stride, (0, 0), where)), {}


class MaxPool2D(_Pool2D):
    """Maximum of each KH×KW window, per channel: x (N, C, H, W) -> y (N, C, OH, OW).

        OH = (H − KH) // stride + 1, OW likewise; stride defaults to the window size (windows tile
        the image; leftover rows and columns are dropped, as in PyTorch).

    Backward routes each dy to the argmax of its window, the rest of dx is 0; where windows
    overlap, the routed gradients add. NOTE: on ties the first maximum in row-major window order
    wins alone (an all-zero window after a ReLU has 4 tied maxima; the gradient goes to one).

    2×2 windows with stride 2 (the usual case) take a fast path: reshapes and two elementwise
    maxima (of each window row's two pixels, then of the two rows). Other windows use im2col.
    """

    def forward(self, x, training=False):
        n, c, h, w = _check_images(self, x)
        oh, ow = conv_output_shape(h, w, self.size, self.stride)
        if self.size == self.stride == (2, 2):
            return self._forward_2x2(x, oh, ow)
        cols = im2col(x, self.size, self.stride).reshape(oh * ow * n, -1, c)  # (M, KH·KW, C)
        winner = cols.argmax(axis=1)[:, None]  # (M, 1, C): the first maximum of each window
        y = np.take_along_axis(cols, winner, axis=1)
        self._cache = ("windows", x.shape, winner)
        return from_pixel_major(y.reshape(oh, ow, n, c))

    def backward(self, dy, need_dx=True):
        cache = self._take_cache()
        if not need_dx:
            return None
        if cache[0] == "2x2":
            return self._backward_2x2(dy, *cache[1:])
        _, x_shape, winner = cache
        n, c, oh, ow = dy.shape
        dcols = np.zeros((oh * ow * n, self.size[0] * self.size[1], c), dy.dtype)
        np.put_along_axis(dcols, winner, pixel_major(dy).reshape(oh * ow * n, 1, c), axis=1)
        return col2im(dcols, x_shape, self.size, self.stride)

    def _forward_2x2(self, x, oh, ow):
        n, c = x.shape[:2]
        # (2·OH, OW, 2, N·C): the two pixels of each window row side by side, every pixel a run
        # of N·C floats; a view of a pixel-major x (odd H or W drop their last row/column).
        cols = pixel_major(x)[:2 * oh, :2 * ow].reshape(2 * oh, ow, 2, n * c)
        row_max = np.maximum(cols[:, :, 0], cols[:, :, 1])  # (2·OH, OW, N·C)
        pairs = row_max.reshape(oh, 2, ow, n * c)
        y = np.maximum(pairs[:, 0], pairs[:, 1])  # (OH, OW, N·C)
        # Backward finds the winners from these two (so forwards for evaluation never do).
        self._cache = ("2x2", x.shape, cols, row_max)
        return from_pixel_major(y.reshape(oh, ow, n, c))

    @staticmethod
    def _backward_2x2(dy, x_shape, cols, row_max):
        n, c, h, w = x_shape
        oh, ow = dy.shape[2:]
        dtype = np.result_type(dy, cols)
        # Route to the top or bottom row (top wins ties), then within it to the left or right
        # pixel (left wins ties): the first maximum in row-major order. dy − dy·1 = 0 and
        # dy − dy·0 = dy exactly, so each dy lands in exactly one place.
        pairs = row_max.reshape(oh, 2, ow, n * c)
        dy = pixel_major(dy).reshape(oh, ow, n * c)
        d_rows = np.empty((oh, 2, ow, n * c), dtype)
        np.multiply(dy, pairs[:, 0] >= pairs[:, 1], out=d_rows[:, 0])
        np.subtract(dy, d_rows[:, 0], out=d_rows[:, 1])
        d_rows = d_rows.reshape(2 * oh, ow, n * c)
        dx = np.empty(cols.shape, dtype)  # (2·OH, OW, 2, N·C)
        np.multiply(d_rows, cols[:, :, 0] >= cols[:, :, 1], out=dx[:, :, 0])
        np.subtract(d_rows, dx[:, :, 0], out=dx[:, :, 1])
        dx = dx.reshape(2 * oh, 2 * ow, n, c)
        if (2 * oh, 2 * ow) != (h, w):  # the dropped last row/column gets no gradient
            dx = np.pad(dx, ((0, h - 2 * oh), (0, w - 2 * ow), (0, 0), (0, 0)))
        return from_pixel_major(dx)

    @classmethod
    def gradcheck_cases(cls, rng):
        # distinct values: no window has a tie that a step of ±h could flip
        return [(cls(2), distinct_values(rng, (2, 2, 4, 5))), (cls(3, stride=2), distinct_values(rng, (2, 2, 5, 6)))]


class AvgPool2D(_Pool2D):
    """Mean of each KH×KW window, per channel: x (N, C, H, W) -> y (N, C, OH, OW).

        y = Σ_window x / (KH·KW)       dx = col2im(dy / (KH·KW) copied to every window position)
        OH = (H − KH) // stride + 1, OW likewise; stride defaults to the window size.
    """

    def forward(self, x, training=False):
        n, c, h, w = _check_images(self, x)
        oh, ow = conv_output_shape(h, w, self.size, self.stride)
        y = im2col(x, self.size, self.stride).reshape(oh * ow * n, -1, c).mean(axis=1)  # (M, C)
        self._cache = x.shape
        return from_pixel_major(y.reshape(oh, ow, n, c))

    def backward(self, dy, need_dx=True):
        x_shape = self._take_cache()
        if not need_dx:
            return None
        n, c, oh, ow = dy.shape
        area = self.size[0] * self.size[1]
        share = pixel_major(dy).reshape(oh * ow * n, 1, c) / area
        return col2im(np.broadcast_to(share, (oh * ow * n, area, c)), x_shape, self.size, self.stride)

    @classmethod
    def gradcheck_cases(cls, rng):
        return [(cls(2), rng.standard_normal((2, 2, 4, 5)))]


def _window_sides(shape, channels: int, kernel, stride, padding, where: str) -> list[int]:
    """[OH, OW] for one sample of ``shape`` (from a model file), which must be (channels, H, W)."""
    if len(shape) != 3 or shape[0] != channels:
        raise ModelFileError(f"{where} takes images ({channels}, H, W) but the layer before gives {shape}")
    sides = [(shape[1 + i] + 2 * padding[i] - kernel[i]) // stride[i] + 1 for i in (0, 1)]
    if min(sides) < 1:
        raise ModelFileError(f"{where}: a {kernel[0]}x{kernel[1]} window does not fit a "
                             f"{shape[1]}x{shape[2]} input with padding {padding[0]}x{padding[1]}")
    return sides


def _check_images(layer: Layer, x: np.ndarray, channels: int | None = None) -> tuple[int, int, int, int]:
    """x.shape, after checking that x is (N, C, H, W) with C = ``channels`` when given."""
    if x.ndim != 4 or (channels is not None and x.shape[1] != channels):
        want = "C" if channels is None else channels
        raise ShapeError(f"{layer!r} expects images of shape (N, {want}, H, W), got {x.shape}")
    return x.shape


def _check_sample(layer: Layer, shape, channels: int | None = None) -> tuple[int, int, int]:
    shape = tuple(shape)
    if len(shape) != 3 or (channels is not None and shape[0] != channels):
        want = "C" if channels is None else channels
        raise ShapeError(f"{layer!r} expects samples of shape ({want}, H, W), got {shape}; "
                         "give the model input_shape=(channels, height, width)")
    return shape


def _check_algorithm(algorithm, kernel_size, stride) -> str:
    if algorithm not in ALGORITHMS:
        raise ConfigError(f"algorithm must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}")
    if algorithm in WINOGRAD and (kernel_size, stride) != ((3, 3), (1, 1)):
        raise ConfigError(f"algorithm {algorithm!r} needs a 3x3 kernel with stride 1, got kernel_size "
                          f"{kernel_size} and stride {stride}; use 'im2col' or 'auto'")
    return algorithm


def _positive(value, name: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _unpair(pair: tuple[int, int]):
    """(3, 3) -> 3 for square sizes, else [h, w]: the config stays as short as the call."""
    return pair[0] if pair[0] == pair[1] else list(pair)
