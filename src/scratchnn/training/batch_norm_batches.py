"""Batch sizes batch norm can train with: every batch must hold 2 or more numbers per channel.

Batch norm divides each batch by its own standard deviation; a batch of one image in a dense
layer (or over a 1x1 map) has none. Checked before the first step, and before ``train`` makes
its run folder, with the nearest batch size that works.
"""
from __future__ import annotations

import math

from ..errors import ShapeError
from ..model import Sequential
from ..nn import BatchNorm1d, BatchNorm2d


def check_batches(model: Sequential, n: int, batch_size: int | None) -> None:
    """Batch norm divides by each batch's variance, over 2 or more numbers per channel: refuse,
    before the first step, a batch that would hold one (batches of 1 image, or a last batch of 1
    image, 9,001 in 128s, for BatchNorm1d or a BatchNorm2d over 1x1 maps)."""
    check_batch_norm_batches([type(layer) for layer in model.layers], [model.input_shape, *model.output_shapes()],
                             n, batch_size)


def check_batch_norm_batches(kinds: list[type], shapes: list[tuple], n: int, batch_size: int | None) -> None:
    """``check_batches`` for a network not built yet: its layers' classes and their input shapes."""
    per_image = [math.prod(shape[1:]) for kind, shape in zip(kinds, shapes)
                 if issubclass(kind, (BatchNorm1d, BatchNorm2d))]  # 1, or a map's H·W
    smallest = n if not batch_size or batch_size >= n else n % batch_size or batch_size
    if not per_image or min(per_image) > 1 or smallest > 1:
        return
    if n == 1:
        raise ShapeError("batch norm needs 2 or more training images to normalise a batch, got 1")
    if batch_size == 1:
        raise ShapeError("batches of 1 image leave batch norm nothing to normalise by (a batch of one has no "
                         "variance); use --batch-size 2 or more")
    near = next(b for d in range(1, n) for b in (batch_size - d, batch_size + d) if 1 < b <= n and n % b != 1)
    raise ShapeError(f"{n:,} training images in batches of {batch_size} leave a last batch of 1 image, which "
                     f"batch norm cannot normalise (it has no variance); use --batch-size {near}")
