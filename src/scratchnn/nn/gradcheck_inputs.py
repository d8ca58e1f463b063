"""Inputs for finite-difference checks that stay clear of the places a derivative jumps.

Central differences step ±h around every entry; where a layer has a kink (ReLU at 0) or a tie
(two equal values in a max-pool window) the two sides disagree and the check reports an error
that backward did not make. Layers build their ``gradcheck_cases`` inputs from these.
"""
from __future__ import annotations

import numpy as np


def away_from_zero(rng: np.random.Generator, shape, margin: float = 0.1) -> np.ndarray:
    """Random values with |v| in [margin, 1]: finite differences never straddle a kink at 0."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(margin, 1.0, size=shape)


def distinct_values(rng: np.random.Generator, shape) -> np.ndarray:
    """Values in [-1, 1) at least 2/size apart: no max-pool window has a tie within ±h."""
    size = int(np.prod(shape))
    return (rng.permutation(size).reshape(shape) - size / 2) * (2 / size)
