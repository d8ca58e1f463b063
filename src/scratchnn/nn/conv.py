"""Convolution over images x (N, C, H, W): Conv2D (the pools are in ``pool.py``).

Conv2D maps (N, C, H, W) to (N, F, OH, OW) with
    OH = (H + 2·padding − KH) // stride + 1,   OW = (W + 2·padding − KW) // stride + 1
See ``im2col`` for how windows become rows of a matrix.

NOTE on memory layout: outputs have the (N, C, H, W) shape but pixel-major memory (they are
x.transpose(2, 3, 0, 1) views of (H, W, N, C) arrays; see ``im2col`` for why). A GEMM over
im2col rows ordered (oh, ow, n) produces exactly that layout, so no layer ever transposes a
whole activation; elementwise layers (ReLU) keep it. Any memory order is accepted as input;
the answer is the same, only the speed differs.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError, ModelFileError
from . import winograd
from .winograd4 import F4
from .winograd5 import F5
from .winograd7 import F7
from .base import Layer, generator, whole_units
from .im2col import (
    as_pair,
    col2im,
    conv_output_shape,
    from_pixel_major,
    im2col,
    kernel_from_matrix,
    kernel_matrix,
)
from .image_shapes import check_images, check_sample, unpair, window_sides
from .init import get_initializer
from .schema import MAX_SAMPLE, initializer, one_of, units, window

ALGORITHMS = ("im2col", "winograd", "winograd4", "winograd5", "winograd7", "auto")
# the algorithm's scheme: F(2x2, 3x3) (a module), F(m x m, 3x3) for m = 4, 5, 7 (winograd4.MatrixTiles)
WINOGRAD = {"winograd": winograd, "winograd4": F4, "winograd5": F5, "winograd7": F7}
# "auto" runs Winograd on a 3x3 stride-1 convolution with at least 32 input channels, or 8 when its outputs
# are at least 14 a side: there it measured faster than im2col (docs/speed-log.md, "Convolution algorithms"),
# in the tiling, F(4x4), F(5x5) or F(7x7), that needs the fewest products (the smaller tile on a tie).
# Elsewhere, im2col: with few channels the tile transforms cost more than the products they save.
AUTO_MIN_CHANNELS, AUTO_MIN_CHANNELS_SMALL, AUTO_MIN_SIDE_SMALL = 32, 8, 14
AUTO_RULE = (AUTO_MIN_CHANNELS, AUTO_MIN_CHANNELS_SMALL, AUTO_MIN_SIDE_SMALL)  # scratchnn.fast has its own


def scheme_for(algorithm: str, kernel_size: tuple, stride: tuple, padding: tuple, in_channels: int,
               height: int, width: int, rule: tuple[int, int, int] = AUTO_RULE):
    """``Conv2D.winograd_scheme`` from the layer's settings (pairs), with no layer built."""
    if algorithm != "auto" or (tuple(kernel_size), tuple(stride)) != ((3, 3), (1, 1)):
        return WINOGRAD.get(algorithm)
    min_channels, min_channels_large, min_side = rule
    side = min(conv_output_shape(height, width, 3, 1, padding))
    if not (in_channels >= min_channels or (in_channels >= min_channels_large and side >= min_side)):
        return None
    return min((F4, F5, F7), key=lambda scheme: scheme.products(height, width, padding))


class Conv2D(Layer):
    """2-D convolution (cross-correlation, as in every framework): x (N, C, H, W) -> y (N, F, OH, OW).

        y[n, f, oh, ow] = b[f] + Σ_{c,kh,kw} W[f, c, kh, kw] · x_pad[n, c, oh·sh + kh, ow·sw + kw]

    with W (F, C, KH, KW), b (F,), x_pad = x with ``padding`` zeros around H and W. As matrices,
    with cols = im2col(x) (OH·OW·N, KH·KW·C), rows ordered (oh, ow, n), and Wm = kernel_matrix(W) (KH·KW·C, F):

        forward    Y = cols·Wm + b            (OH·OW·N, F): one GEMM, Y is y channels-last
        backward   dWm = colsᵀ·dY   db = Σ_rows dY   dcols = dY·Wmᵀ   dx = col2im(dcols)

    NOTE: the bias is the weight of an input that is always 1. cols gets a last column of ones
    and Wm a last row b, so the one GEMM [cols 1]·[Wm; b] adds the bias and [cols 1]ᵀ·dY gives
    [dWm; db]: no separate pass over Y or dY (F numbers a row, 32x the one column of ones that
    replaces it in the presets' first layer).

    Args:
        in_channels, out_channels: C and F.
        kernel_size, stride, padding: ints, or (height, width) pairs.
        init, bias_init: initialiser names from ``scratchnn.nn.init``; fan_in = C·KH·KW,
            fan_out = F·KH·KW (one input value feeds each of the F output channels at KH·KW positions).
        algorithm: how the same convolution is computed. "im2col": the products above.
            "winograd" (3x3 kernels, stride 1): Winograd's F(2x2, 3x3), 16 multiplications per
            2x2 outputs instead of 36, paid for with additions that transform 4x4 input tiles
            and 4x4 product tiles (see ``nn/winograd.py``); equal to im2col up to float rounding.
            "winograd4" (3x3 kernels, stride 1): F(4x4, 3x3), 36 multiplications per 4x4 outputs
            instead of 144, with 6x6 tiles transformed by small matrix products (see
            ``nn/winograd4.py``); float32 rounding a little larger than F(2x2, 3x3)'s.
            "winograd5", "winograd7": F(5x5, 3x3) and F(7x7, 3x3), 49 and 81 multiplications
            per 5x5 and 7x7 outputs; fewer products where their tiles cover the map better
            (F(7x7): 28x28 and 14x14 exactly; see ``nn/winograd5.py``, ``nn/winograd7.py``).
            "auto" (the default): Winograd for 3x3 stride-1 layers with >= 32 input channels
            (or 8 on outputs >= 14 a side), where it was measured faster, in whichever of
            F(4x4), F(5x5) and F(7x7) needs the fewest products; im2col elsewhere (see
            AUTO_MIN_CHANNELS).
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
        self.in_channels = whole_units(in_channels, "in_channels")
        self.out_channels = whole_units(out_channels, "out_channels")
        self.kernel_size = as_pair(kernel_size, "kernel_size")
        self.stride = as_pair(stride, "stride")
        self.padding = as_pair(padding, "padding", minimum=0)
        self.init, self.bias_init = init, bias_init
        self.algorithm = _check_algorithm(algorithm, self.kernel_size, self.stride)
        rng = generator(rng)
        c, f, (kh, kw) = self.in_channels, self.out_channels, self.kernel_size
        fan_in, fan_out = c * kh * kw, f * kh * kw
        self.params["W"] = get_initializer(init)(rng, (f, c, kh, kw), fan_in, fan_out)
        self.params["b"] = get_initializer(bias_init)(rng, (f,), fan_in, fan_out)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._scratch: dict[str, np.ndarray] = {}  # big work arrays kept between batches of one shape

    def forward(self, x, training=False):
        n, _, h, w = check_images(self, x, self.in_channels)
        scheme = self.winograd_scheme(h, w)
        if scheme is not None:
            y, cache = winograd.forward(x, self.params["W"], self.params["b"], self.padding, self.work_array, scheme)
            self._cache = ("winograd", (scheme, cache))
            return y
        oh, ow = conv_output_shape(h, w, self.kernel_size, self.stride, self.padding)
        cols = self.columns(x)
        wm = np.concatenate([kernel_matrix(self.params["W"]), self.params["b"][None]])  # [Wm; b]
        y = cols @ wm  # (OH·OW·N, F) = (OH, OW, N, F) in memory
        self._cache = ("im2col", (x.shape, cols))
        return from_pixel_major(y.reshape(oh, ow, n, self.out_channels))

    def columns(self, x: np.ndarray) -> np.ndarray:
        """[cols 1] (OH·OW·N, KH·KW·C + 1): im2col's rows of x (N, C, H, W) and a column of ones.

        NOTE: a work array that the next call rewrites; backward only ever needs the latest one.
        Few channels (the first layer's C = 1): Fortran order, so im2col copies runs of OW·N floats.
        """
        n, _, h, w = x.shape
        oh, ow = conv_output_shape(h, w, self.kernel_size, self.stride, self.padding)
        k = self.kernel_size[0] * self.kernel_size[1] * self.in_channels
        cols = self.work_array("cols", (oh * ow * n, k + 1), x.dtype, "F" if self.in_channels < ow else "C")
        im2col(x, self.kernel_size, self.stride, self.padding, out=cols[:, :k])
        cols[:, k] = 1
        return cols

    def backward(self, dy, need_dx=True):
        algorithm, cache = self._take_cache()
        if algorithm == "winograd":
            scheme, cache = cache
            return winograd.backward(dy, cache, self.padding, self.grads, self.work_array, need_dx, scheme)
        x_shape, cols = cache
        n, f, oh, ow = dy.shape
        dy_rows = dy.transpose(2, 3, 0, 1).reshape(oh * ow * n, f)  # a view when dy is pixel-major
        # [dWm; db] (KH·KW·C + 1, F) = [cols 1]ᵀ·dY. NOTE: transposes are views that BLAS reads
        # without a copy; OpenBLAS is ~20% faster at the transposed product dYᵀ·cols when cols
        # is row-major (C order), and at colsᵀ·dY when it is column-major (the first layer's).
        dwb = cols.T @ dy_rows if cols.flags.f_contiguous else (dy_rows.T @ cols).T
        kernel_from_matrix(dwb[:-1], self.params["W"].shape, out=self.grads["W"])
        self.grads["b"][...] = dwb[-1]
        if not need_dx:
            return None
        return self.input_gradient(dy_rows, x_shape)

    def input_gradient(self, dy_rows: np.ndarray, x_shape: tuple[int, int, int, int]) -> np.ndarray:
        """dx (N, C, H, W) = col2im(dY·Wmᵀ) for dY (OH·OW·N, F), rows in im2col's (oh, ow, n) order,
        of an im2col forward on x of shape ``x_shape``. Wm's kernel rows only: the bias has no input."""
        dcols = dy_rows @ kernel_matrix(self.params["W"]).T  # (OH·OW·N, KH·KW·C)
        return col2im(dcols, x_shape, self.kernel_size, self.stride, self.padding)

    def winograd_scheme(self, height: int, width: int, rule: tuple[int, int, int] = AUTO_RULE):
        """The Winograd scheme (``nn.winograd``, or ``F4``, ``F5``, ``F7`` of ``nn.winograd4/5/7``)
        a forward on (height, width) images runs, or None for im2col: the one named, or for
        "auto" Winograd where it was measured faster: ``rule`` = (C from which always, C from
        which on outputs of at least this side, that side; see AUTO_MIN_CHANNELS), in the
        tiling with the fewest products (a tie goes to the smaller tile)."""
        return scheme_for(self.algorithm, self.kernel_size, self.stride, self.padding, self.in_channels,
                          height, width, rule)

    def may_use_winograd(self, rule: tuple[int, int, int] = AUTO_RULE) -> bool:
        """Whether a forward on some input size runs Winograd (``winograd_scheme`` for some sides)."""
        if self.algorithm != "auto" or (self.kernel_size, self.stride) != ((3, 3), (1, 1)):
            return self.algorithm in WINOGRAD
        return self.in_channels >= min(rule[0], rule[1])

    def release_cache(self) -> None:
        super().release_cache()
        self._scratch.clear()  # the work arrays too: the next batch may have another shape anyway

    def __getstate__(self) -> dict:
        return {**super().__getstate__(), "_scratch": {}}  # nor the work arrays: the next forward makes its own

    def work_array(self, name: str, shape: tuple[int, ...], dtype, order: str = "C") -> np.ndarray:
        """A scratch array of this shape, dtype and order, reused while batches keep their shape
        (im2col's matrix, the Winograd schemes' tiles; the fast path's pipelines take theirs here too)."""
        buffer = self._scratch.get(name)
        if buffer is None or buffer.shape != shape or buffer.dtype != dtype or \
                not buffer.flags[f"{order}_CONTIGUOUS"]:
            buffer = self._scratch[name] = np.empty(shape, dtype, order=order)
        return buffer

    def config(self):
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": unpair(self.kernel_size), "stride": unpair(self.stride),
                "padding": unpair(self.padding), "init": self.init, "bias_init": self.bias_init,
                **({} if self.algorithm == "auto" else {"algorithm": self.algorithm})}

    def output_shape(self, input_shape):
        c, h, w = check_sample(self, input_shape, self.in_channels)
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
        sides = window_sides(shape, c, kernel, args.get("stride", (1, 1)), args.get("padding", (0, 0)), where)
        work = sides[0] * sides[1] * (kernel[0] * kernel[1] * c + 1)  # the im2col matrix
        if work > MAX_SAMPLE:
            raise ModelFileError(f"{where} would need a work matrix of {work:,} numbers a sample "
                                 f"(at most {MAX_SAMPLE:,})")
        return (f, *sides), {"W": (f, c, *kernel), "b": (f,)}

    @classmethod
    def gradcheck_cases(cls, rng):
        return [(cls(2, 3, 3, bias_init="glorot_uniform", algorithm="im2col", rng=rng),
                 rng.standard_normal((2, 2, 5, 4))),
                (cls(2, 3, 3, stride=2, padding=1, bias_init="glorot_uniform", algorithm="im2col", rng=rng),
                 rng.standard_normal((2, 2, 5, 6))),
                # height and width apart: a kernel, stride and padding that differ between them
                (cls(2, 3, (3, 2), stride=(2, 1), padding=(0, 1), bias_init="glorot_uniform", algorithm="im2col",
                     rng=rng), rng.standard_normal((2, 2, 6, 5))),
                # Winograd: odd sides (a last tile half outside), padding
                (cls(2, 3, 3, padding=(1, 0), bias_init="glorot_uniform", algorithm="winograd", rng=rng),
                 rng.standard_normal((2, 2, 5, 6))),
                (cls(2, 3, 3, padding=(1, 0), bias_init="glorot_uniform", algorithm="winograd4", rng=rng),
                 rng.standard_normal((2, 2, 7, 6))),
                (cls(2, 3, 3, padding=(1, 0), bias_init="glorot_uniform", algorithm="winograd5", rng=rng),
                 rng.standard_normal((2, 2, 9, 8))),
                (cls(2, 3, 3, padding=(0, 1), bias_init="glorot_uniform", algorithm="winograd7", rng=rng),
                 rng.standard_normal((2, 2, 11, 9)))]


def _check_algorithm(algorithm, kernel_size, stride) -> str:
    if algorithm not in ALGORITHMS:
        raise ConfigError(f"algorithm must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}")
    if algorithm in WINOGRAD and (kernel_size, stride) != ((3, 3), (1, 1)):
        raise ConfigError(f"algorithm {algorithm!r} needs a 3x3 kernel with stride 1, got kernel_size "
                          f"{kernel_size} and stride {stride}; use 'im2col' or 'auto'")
    return algorithm

