"""Arrays that are views tiling one flat array: how a packed model's parameters are stored.

``Sequential.pack_parameters`` makes them (the parameters in one flat array, the gradients in
another); an optimizer that finds them updates all parameters with one NumPy call per operation.
"""
from __future__ import annotations

import numpy as np


def tiled_base(arrays: list[np.ndarray]) -> np.ndarray | None:
    """The 1-D array that ``arrays``, in order, are C-contiguous views covering exactly, or None.

    >>> flat = np.arange(6.0)
    >>> tiled_base([flat[:2].reshape(2, 1), flat[2:]]) is flat
    True
    >>> tiled_base([flat[2:], flat[:2]]) is None  # out of order
    True
    """
    base = arrays[0].base if arrays else None
    if base is None or base.ndim != 1 or not base.flags.c_contiguous:
        return None
    address, end = base.__array_interface__["data"][0], 0
    for a in arrays:
        if a.base is not base or not a.flags.c_contiguous or \
                a.__array_interface__["data"][0] != address + end * base.itemsize:
            return None
        end += a.size
    return base if end == base.size else None
