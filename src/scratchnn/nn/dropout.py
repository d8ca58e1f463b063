"""Dropout: randomly zero units while training, as a regulariser."""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .base import Layer, generator
from .schema import fraction

_IDENTITY = "identity"  # cached by an eval-mode forward: backward passes dy straight through
MAX_P = 0.9999  # the highest p taken: float32's draws are 2⁻²⁴ apart, so the share kept is within 0.1% of 1 − p


class Dropout(Layer):
    """Inverted dropout; ``p`` is the probability of *dropping* a unit (PyTorch's meaning).

    Training, with a fresh mask m of 0/1 entries, each 0 with probability p:
        y = x · m / (1 − p)        dx = dy · m / (1 − p)
    Dividing by 1 − p while training keeps E[y] = x, so evaluation is the identity (y = x, no
    copy) and needs no rescaling. x (N, ...) and y have the same shape.

    The mask comes from ``self.rng``: a Sequential model hands its generator to the layer, so one
    seed drives every mask; a standalone layer draws from ``rng`` (a Generator or an int seed).
    """

    uses_rng = True
    trains_differently = True
    optional_keywords = {"p": fraction}  # what a model file may say (see nn/schema.py)

    def __init__(self, p: float = 0.5, *, rng: np.random.Generator | int | None = None):
        super().__init__()
        try:
            p = float(p)
        except (TypeError, ValueError):
            raise ConfigError(f"dropout probability p must be a number in [0, 1), got {p!r}") from None
        if not 0 <= p < 1:
            raise ConfigError(f"dropout probability p must be in [0, 1) (p is the chance of dropping "
                              f"a unit; p = 0 turns dropout off), got {p}")
        if p > MAX_P:  # the mask compares float32 draws with p: 0.99999999 is 1 there, and dropped every unit
            raise ConfigError(f"dropout probability p {p:.10g} keeps fewer than one unit in {1 / (1 - MAX_P):,.0f}, "
                              f"too few to learn from (and to draw in float32): use p <= {MAX_P:g}")
        self.p = p
        self.rng = generator(rng)

    def forward(self, x, training=False):
        if not training or self.p == 0:
            self._cache = _IDENTITY
            return x
        # One float32 draw (the cheapest), turned into the mask in place and pre-scaled by
        # 1/(1 − p), so forward and backward are one multiply each.
        mask = self.rng.random(x.shape, dtype=np.float32)
        mask = np.greater_equal(mask, self.p, out=mask).astype(x.dtype, copy=False)
        mask *= x.dtype.type(1 / (1 - self.p))
        self._cache = mask
        return x * mask

    def backward(self, dy, need_dx=True):
        mask = self._take_cache()
        if not need_dx:
            return None
        return dy if mask is _IDENTITY else dy * mask

    def config(self):
        return {"p": self.p}

    @classmethod
    def gradcheck_cases(cls, rng):
        # its own generator: the check rewinds it before every forward, so each sees one mask
        return [(cls(0.3, rng=rng.spawn(1)[0]), rng.standard_normal((5, 7)))]
