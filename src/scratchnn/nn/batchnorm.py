"""Batch normalisation over the batch dimension of (N, D) features."""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError, ShapeError
from .base import Layer, check_features
from .schema import check_number, features_in, units


class BatchNorm1d(Layer):
    """y = γ·x̂ + β with x̂ = (x − μ)/σ, per feature; x (N, D), γ and β (D,), y (N, D).

    Training normalises with the batch statistics, per feature d:
        μ = Σₙ x / N      v = Σₙ (x − μ)² / N (biased)      σ = √(v + eps)
    and updates the buffers (as PyTorch does: the running variance takes the unbiased v·N/(N − 1)):
        running_mean ← (1 − momentum)·running_mean + momentum·μ
        running_var  ← (1 − momentum)·running_var  + momentum·v·N/(N − 1)
    Evaluation uses μ = running_mean, σ = √(running_var + eps), so a sample's output does not
    depend on the rest of its batch.

    Backward, for upstream dy (N, D):
        dγ = Σₙ dy·x̂      dβ = Σₙ dy
        training:  dx = (γ/σ)/N · (N·dy − Σₙ dy − x̂·Σₙ(dy·x̂))   (μ and σ depend on every row)
        eval:      dx = dy·γ/σ                                   (μ and σ are constants)

    Args:
        features: D, the width of the input.
        momentum: weight of the newest batch in the running statistics, in [0, 1].
        eps: added to the variance so a constant feature does not divide by 0.
    """

    buffer_names = ("running_mean", "running_var")

    required_keywords = {"features": units}  # what a model file may say (see nn/schema.py)
    optional_keywords = {"momentum": lambda v, w: check_number(v, w, 0, 1),
                         "eps": lambda v, w: check_number(v, w, 0, 1, open_low=True)}

    def __init__(self, features: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        if int(features) != features or features < 1:
            raise ConfigError(f"BatchNorm1d features must be a positive integer, got {features!r}")
        if not 0 <= momentum <= 1:
            raise ConfigError(f"BatchNorm1d momentum must be in [0, 1], got {momentum}")
        if not eps > 0:
            raise ConfigError(f"BatchNorm1d eps must be > 0, got {eps}")
        self.features, self.momentum, self.eps = int(features), float(momentum), float(eps)
        d = self.features
        self.params = {"gamma": np.ones(d, np.float32), "beta": np.zeros(d, np.float32)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.buffers = {"running_mean": np.zeros(d, np.float32), "running_var": np.ones(d, np.float32)}

    def forward(self, x, training=False):
        check_features(self, x, self.features)
        if training:
            n = len(x)
            if n < 2:
                raise ShapeError(f"{self!r} needs at least 2 samples per batch in training mode "
                                 f"(a batch of {n} has no variance); change the batch size")
            mean = x.mean(axis=0)
            x_hat = x - mean
            var = np.einsum("nd,nd->d", x_hat, x_hat) / n  # Σₙ (x − μ)² without a temporary
            inv_std = 1 / np.sqrt(var + self.eps)
            x_hat *= inv_std
            m = self.momentum
            # In place, so arrays handed out by state_dict() stay the layer's buffers.
            running_mean, running_var = self.buffers["running_mean"], self.buffers["running_var"]
            running_mean *= 1 - m
            running_mean += m * mean
            running_var *= 1 - m
            running_var += (m * n / (n - 1)) * var
        else:
            inv_std = 1 / np.sqrt(self.buffers["running_var"] + self.eps)
            x_hat = (x - self.buffers["running_mean"]) * inv_std
        self._cache = (x_hat, inv_std, training)
        y = x_hat * self.params["gamma"]
        y += self.params["beta"]
        return y

    def backward(self, dy, need_dx=True):
        x_hat, inv_std, training = self._take_cache()
        dbeta = dy.sum(axis=0)
        dgamma = np.einsum("nd,nd->d", dy, x_hat)
        self.grads["beta"][...] = dbeta
        self.grads["gamma"][...] = dgamma
        if not need_dx:
            return None
        scale = self.params["gamma"] * inv_std  # γ/σ (D,)
        if not training:
            return dy * scale
        # (γ/σ)/N · (N·dy − Σdy − x̂·Σ(dy·x̂)), as γ/σ · (dy − (Σdy + x̂·Σ(dy·x̂))/N) in place
        n = len(dy)
        dx = x_hat * (dgamma / n)
        dx += dbeta / n
        np.subtract(dy, dx, out=dx)
        dx *= scale
        return dx

    def config(self):
        return {"features": self.features, "momentum": self.momentum, "eps": self.eps}

    @classmethod
    def config_shapes(cls, args, shape, where):
        features_in(shape, args["features"], where)
        return shape, {name: shape for name in ("gamma", "beta", "running_mean", "running_var")}

    @classmethod
    def gradcheck_cases(cls, rng):
        return [(batchnorm_with_random_affine(6, rng), 2 + 3 * rng.standard_normal((8, 6)))]


def batchnorm_with_random_affine(features: int, rng: np.random.Generator) -> BatchNorm1d:
    """A BatchNorm1d whose γ, β and running statistics are random rather than the 1s and 0s
    they start at, so a check would notice a backward that drops γ or confuses the statistics."""
    layer = BatchNorm1d(features)
    layer.params["gamma"][...] = rng.uniform(0.5, 2.0, features)
    layer.params["beta"][...] = rng.standard_normal(features)
    layer.buffers["running_mean"][...] = rng.standard_normal(features)
    layer.buffers["running_var"][...] = rng.uniform(0.5, 2.0, features)
    return layer
