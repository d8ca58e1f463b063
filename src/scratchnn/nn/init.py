"""Weight initialisers: ``init(rng, shape, fan_in, fan_out) -> float32 array``.

fan_in is the number of inputs feeding one unit (D for a Dense W (D, M); C*KH*KW for a conv
kernel), fan_out the number of units one input feeds. Every initialiser takes an
``np.random.Generator``: no global random state.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError


def seed_uniform(rng: np.random.Generator, shape, fan_in: int, fan_out: int) -> np.ndarray:
    """U[-0.5, 0.5) whatever the layer size: the seed tutorial's ``rand(...) - 0.5``, from a Generator."""
    return rng.random(shape, dtype=np.float32) - np.float32(0.5)


def he_normal(rng: np.random.Generator, shape, fan_in: int, fan_out: int) -> np.ndarray:
    """N(0, 2 / fan_in): keeps the variance of ReLU activations constant through depth (He 2015)."""
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in))


def glorot_uniform(rng: np.random.Generator, shape, fan_in: int, fan_out: int) -> np.ndarray:
    """U[-a, a] with a = sqrt(6 / (fan_in + fan_out)), for tanh/sigmoid (Glorot & Bengio 2010)."""
    limit = np.float32(np.sqrt(6.0 / (fan_in + fan_out)))
    return rng.uniform(-limit, limit, shape).astype(np.float32)


def zeros(rng: np.random.Generator, shape, fan_in: int, fan_out: int) -> np.ndarray:
    """All zeros (the usual bias start; breaks symmetry only together with random weights)."""
    return np.zeros(shape, dtype=np.float32)


INITIALIZERS = {f.__name__: f for f in (seed_uniform, he_normal, glorot_uniform, zeros)}


def get_initializer(name: str):
    """Look an initialiser up by name; a clear error lists the known names."""
    try:
        return INITIALIZERS[name]
    except KeyError:
        raise ConfigError(f"unknown initialiser {name!r}; choose one of {', '.join(INITIALIZERS)}") from None
