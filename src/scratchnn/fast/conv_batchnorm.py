"""The first convolution and the batch norm after it (then a ReLU), in training, as one product:
batch norm folded into the convolution's weights, its passes over the pixels never run.

NOTE: an im2col convolution is y = X̃·W̃, X̃ = [cols 1] (R, K+1) the image's windows (R = N·OH·OW
rows) and W̃ = [Wm; b] (K+1, F): linear in X̃. So batch norm's statistics over the R rows follow
from the windows' own, the (K+1)² Gram matrix C = X̃ᵀX̃ (its last row is R·x̄, the column means):

    μ = x̄ᵀW̃,   σ² = diag(W̃ᵀ Σ W̃),   Σ = C/R − x̄x̄ᵀ (the windows' covariance)

and the normalised output is one product with folded weights:

    y_bn = (X̃W̃ − μ)·γ/σ + β = X̃·W',   W' = W̃·γ/σ, with β − μ·γ/σ added to its bias row.

Going back, the network's first layer needs no input gradient, so batch norm's dx (R, F) need
never exist. With G = X̃ᵀ·dy_bn (the product the convolution's weight gradient makes anyway) and
Gc = G − x̄·dβ (= Σ_r (X̃_r − x̄)·dy_bn_r):

    dβ = G's last row (Σ dy_bn),   dγ = Σₖ W̃ₖ·Gcₖ / σ,   dW̃ = X̃ᵀ·dx_bn = γ/σ · (Gc − Σ W̃·dγ/σ)

(dW̃'s bias row is 0 in exact arithmetic: batch norm removes the bias). Arithmetic on (K+1)-square
matrices replaces batch norm's ~14 passes over the R·F outputs; what is left is the two products,
the ReLU and its mask. The statistics come from sums of window products rather than of outputs,
finished in float64 on the small matrices: on a trained cnn-best's first layer and 128 MNIST
digits in float32, y is 8e-7 from the float64 textbook's (the float32 textbook's 2e-6).

Evaluation, a convolution that runs Winograd, and a batch of one pixel run the layers in turn;
asked for the input gradient, it makes batch norm's dx after all and the convolution's of it
(``Conv2D.input_gradient``).
"""
from __future__ import annotations

import numpy as np

from ..nn.base import Layer
from ..nn.conv import Conv2D
from ..nn.im2col import conv_output_shape, from_pixel_major, kernel_from_matrix, kernel_matrix
from .relu import relu_gradient
from .threads import Blocks, chunks


class ConvBatchNorm(Layer, register=False):
    """``conv`` (a Conv2D on im2col, the network's first layer) then ``norm`` (a BatchNorm2d, a
    RowBatchNorm of one or a BlockBatchNorm2d, maybe applying the ReLU after it) as one layer;
    shares their params, grads and buffers. x (N, C, H, W) -> y (N, F, OH, OW)."""

    def __init__(self, conv: Conv2D, norm: Layer):
        super().__init__()
        self.conv, self.norm = conv, norm
        self.bn, self.relu = getattr(norm, "bn", norm), getattr(norm, "relu", None)
        self.blocks = getattr(norm, "blocks", Blocks(1))
        self._share()

    def _share(self) -> None:
        """params and grads: the convolution's (W, b) and the batch norm's (gamma, beta) arrays."""
        self.params, self.grads = {**self.conv.params, **self.bn.params}, {**self.conv.grads, **self.bn.grads}
        self.buffers = self.bn.buffers

    def astype(self, dtype) -> ConvBatchNorm:
        self.conv.astype(dtype)
        self.bn.astype(dtype)
        self._share()
        return self

    def forward(self, x, training=False):
        conv = self.conv
        if not self._folds(x, training):
            self._cache = ("layers",)
            return self.norm.forward(conv.forward(x, training), training)
        n, _, h, w = x.shape
        oh, ow = conv_output_shape(h, w, conv.kernel_size, conv.stride, conv.padding)
        rows = oh * ow * n
        cols = conv.columns(x)  # X̃
        gram = (cols.T @ cols).astype(np.float64)  # C = X̃ᵀX̃
        col_mean = gram[-1] / rows  # x̄
        cov = gram / rows - np.outer(col_mean, col_mean)  # Σ
        wide = np.concatenate([kernel_matrix(conv.params["W"]), conv.params["b"][None]]).astype(np.float64)  # W̃
        mean = col_mean @ wide
        var = np.maximum(np.einsum("kf,kl,lf->f", wide, cov, wide), 0)  # ≥ 0 despite rounding
        inv_std = 1 / np.sqrt(var + self.bn.eps)
        self.bn.update_running_statistics(mean, var, rows)
        scale = self.bn.params["gamma"] * inv_std  # γ/σ
        folded = wide * scale
        folded[-1] += self.bn.params["beta"] - mean * scale
        y = cols @ folded.astype(cols.dtype)  # (OH·OW·N, F) = (OH, OW, N, F) in memory
        if self.relu is not None:
            self.blocks.run(lambda a, b: [np.maximum(y[i:j], 0, out=y[i:j]) for i, j in chunks(a, b, y.shape[1])],
                            len(y), y.size)
        self._cache = ("folded", x.shape, cols, wide, col_mean, cov, inv_std, scale, y)
        return from_pixel_major(y.reshape(oh, ow, n, conv.out_channels))

    def backward(self, dy, need_dx=True):
        cache = self._take_cache()
        if cache[0] == "layers":
            return self.conv.backward(self.norm.backward(dy), need_dx)
        _, x_shape, cols, wide, col_mean, cov, inv_std, scale, y = cache
        n, f, oh, ow = dy.shape
        dy = dy.transpose(2, 3, 0, 1).reshape(oh * ow * n, f)  # a view when dy is pixel-major
        if self.relu is not None:
            d_bn = np.empty(y.shape, np.result_type(dy, y))
            self.blocks.run(lambda a, b: [relu_gradient(dy[i:j], y[i:j], d_bn[i:j]) for i, j in chunks(a, b, f)],
                            len(y), y.size)
        else:
            d_bn = dy
        g = (cols.T @ d_bn).astype(np.float64)  # G = X̃ᵀ·dy_bn
        dbeta = g[-1]
        centred = g - np.outer(col_mean, dbeta)  # Gc
        dgamma = np.einsum("kf,kf->f", wide, centred) * inv_std
        self.bn.grads["beta"][...] = dbeta
        self.bn.grads["gamma"][...] = dgamma
        dwide = scale * (centred - (cov @ wide) * (dgamma * inv_std))
        kernel_from_matrix(dwide[:-1], self.conv.params["W"].shape, out=self.conv.grads["W"])
        self.conv.grads["b"][...] = dwide[-1]
        if not need_dx:
            return None
        # the input gradient: batch norm's dx after all (rows in im2col's order), then the convolution's
        rows = len(y)
        x_hat = (cols @ wide.astype(cols.dtype) - col_mean @ wide) * inv_std
        dx_bn = (scale * (d_bn - dbeta / rows - x_hat * (dgamma / rows))).astype(d_bn.dtype)
        return self.conv.input_gradient(dx_bn, x_shape)

    def _folds(self, x, training: bool) -> bool:
        """Whether this batch runs as one product (see the module's note)."""
        conv = self.conv
        if not (training and x.ndim == 4 and x.shape[1] == conv.in_channels and conv.out_channels == self.bn.size):
            return False
        oh, ow = conv_output_shape(*x.shape[2:], conv.kernel_size, conv.stride, conv.padding)
        return conv.winograd_scheme(*x.shape[2:]) is None and len(x) * oh * ow >= 2

    def output_shape(self, input_shape):
        return self.norm.output_shape(self.conv.output_shape(input_shape))

    def __repr__(self):
        return f"ConvBatchNorm({self.conv!r}, {self.norm!r})"
