"""Packed parameters: every parameter a view into one flat array, every gradient into another.

An optimizer then updates all parameters with one NumPy call per operation instead of one per
parameter (Adam makes ~12 calls, not ~70, for a 3-layer MLP: ~5% of its step); see flat_optim.
The values and the names ("0.W") stay as they were; only where the numbers live changes.

NOTE: packing replaces the arrays in ``layer.params`` and ``layer.grads`` by views, so an array
taken from ``layer.params`` before packing (fit packs, with ``fast=True``) is no longer the
model's; take it again after.
"""
from __future__ import annotations

import numpy as np


def pack_parameters(model) -> tuple[np.ndarray, np.ndarray] | None:
    """Move ``model``'s parameters into one flat array and the gradients into another, each layer
    keeping views of its part; return (flat params, flat grads), or None when they cannot be
    packed: no parameters, more than one dtype, or one array serving two parameters (tied
    weights must stay tied). Packing a packed model returns its arrays and moves nothing.
    """
    slots = [(layer, key) for layer in model.layers for key in layer.params]
    params = [layer.params[key] for layer, key in slots]
    if not params or len({id(p) for p in params}) < len(params) or len({p.dtype for p in params}) > 1:
        return None
    grads = [layer.grads[key] for layer, key in slots]
    packed = tiled_base(params), tiled_base(grads)
    if packed[0] is not None and packed[1] is not None:
        return packed
    size = sum(p.size for p in params)
    flat_params, flat_grads = np.empty(size, params[0].dtype), np.empty(size, params[0].dtype)
    start = 0
    for layer, key in slots:
        end = start + layer.params[key].size
        for flat, arrays in ((flat_params, layer.params), (flat_grads, layer.grads)):
            view = flat[start:end].reshape(arrays[key].shape)
            view[...] = arrays[key]
            arrays[key] = view
        start = end
    return flat_params, flat_grads


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
