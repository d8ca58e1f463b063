"""What the image layers (Conv2D and the pools) check about their inputs and model files."""
from __future__ import annotations

import numpy as np

from ..errors import ModelFileError, ShapeError
from .base import Layer
from .im2col import conv_output_shape
from .schema import images_in


def window_sides(shape, channels: int, kernel, stride, padding, where: str) -> list[int]:
    """[OH, OW] for one sample of ``shape`` (from a model file), which must be (channels, H, W)."""
    images_in(shape, channels, where)
    try:
        return list(conv_output_shape(shape[1], shape[2], kernel, stride, padding))
    except ShapeError:
        raise ModelFileError(f"{where}: a {kernel[0]}x{kernel[1]} window does not fit a "
                             f"{shape[1]}x{shape[2]} input with padding {padding[0]}x{padding[1]}") from None


def check_images(layer: Layer, x: np.ndarray, channels: int | None = None) -> tuple[int, int, int, int]:
    """x.shape, after checking that x is (N, C, H, W) with C = ``channels`` when given."""
    if x.ndim != 4 or (channels is not None and x.shape[1] != channels):
        want = "C" if channels is None else channels
        raise ShapeError(f"{layer!r} expects images of shape (N, {want}, H, W), got {x.shape}")
    return x.shape


def check_sample(layer: Layer, shape, channels: int | None = None) -> tuple[int, int, int]:
    """One sample's shape (C, H, W), after checking it has 3 axes and C = ``channels`` when given."""
    shape = tuple(shape)
    if len(shape) != 3 or (channels is not None and shape[0] != channels):
        want = "C" if channels is None else channels
        raise ShapeError(f"{layer!r} expects samples of shape ({want}, H, W), got {shape}; "
                         "give the model input_shape=(channels, height, width)")
    return shape


def unpair(pair: tuple[int, int]):
    """(3, 3) -> 3 for square sizes, else [h, w]: the config stays as short as the call."""
    return pair[0] if pair[0] == pair[1] else list(pair)
