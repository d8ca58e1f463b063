"""The first layer's weights drawn as images: what each hidden unit or kernel looks for."""
from __future__ import annotations

import math

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from ..errors import ShapeError
from .common import grid_shape, mosaic, text_width


def first_layer_weights(model, image_shape=None) -> tuple[np.ndarray, str, str]:
    """(weights as images (K, H, W), what one image is, which layer) of the model's first layer with W.

    Dense W (D, M): column j, the weights into unit j, reshaped to the input image (H, W): the
    ``image_shape`` the model was trained on (its file's), else a square one;
    Conv2D W (F, C, KH, KW): each of the F kernels (averaged over C input channels when C > 1).
    Layers before it without weights (Dropout on the pixels) are skipped.
    """
    for index, layer in enumerate(model.layers):
        if "W" in layer.params:
            break
    else:
        raise ShapeError("the model has no layer with weights W to draw")
    W = np.asarray(layer.params["W"], dtype=float)
    name = type(layer).__name__
    if W.ndim == 4:
        count, channels, kh, kw = W.shape
        kernels = W.mean(axis=1)
        what = f"{kh}x{kw} kernels" + (f" (mean over {channels} input channels)" if channels > 1 else "")
        return kernels, what, f"{name} layer {index}"
    if W.ndim != 2:
        raise ShapeError(f"cannot draw weights of shape {W.shape} (layer {index}, {name}); "
                         "expected Dense (D, M) or Conv2D (F, C, KH, KW)")
    inputs, units = W.shape
    shape = tuple(model.input_shape)
    if int(np.prod(shape)) != inputs:
        shape = (inputs,)
    if len(shape) == 1 and image_shape is not None and math.prod(image_shape) == inputs:
        shape = tuple(image_shape)
    elif len(shape) == 1:
        side = math.isqrt(inputs)
        if side * side != inputs:
            raise ShapeError(f"cannot draw the first layer's weights as images: its {inputs} inputs are "
                             "not a square image, and the model's file does not say its image shape")
        shape = (side, side)
    # NOTE: x @ W with W (D, M): the weights into unit j are column j, hence the transpose
    images = W.T.reshape(units, *shape)
    if images.ndim == 4:  # (M, C, H, W): one image per unit, channels averaged
        images = images.mean(axis=1)
    what = f"units (the {inputs} weights into each, as {images.shape[-2]}x{images.shape[-1]})"
    return images, what, f"{name} layer {index}"


def first_layer_figure(model, max_units: int = 64, image_shape=None) -> Figure:
    """The first ``max_units`` weight images of the first layer with weights (see
    ``first_layer_weights``), tiled row by row from the top left, on one diverging colour scale
    centred on 0: red pixels excite the unit, blue ones inhibit it."""
    images, what, layer = first_layer_weights(model, image_shape)
    shown = images[:max_units]
    limit = float(np.abs(shown).max()) or 1.0
    part = f"the first {len(shown)} of {len(images)}" if len(shown) < len(images) else f"all {len(images)}"
    title = f"{layer}: {part} {what}"
    rows, columns = grid_shape(len(shown))
    height, width = shown.shape[1:]
    tiles = mosaic(shown, columns, gap=max(1, height // 10))
    cell = 1.0 if width >= 14 else 0.8  # inches per tile
    fig = Figure(figsize=(max(5.0, cell * columns + 1.3, text_width(title) + 0.4), cell * rows + 0.7),
                 layout="constrained")
    ax = fig.subplots()
    cmap = colormaps["RdBu_r"].with_extremes(bad="white")  # the NaN gaps between tiles
    image = ax.imshow(tiles, cmap=cmap, vmin=-limit, vmax=limit, interpolation="nearest")
    ax.set_axis_off()
    fig.colorbar(image, ax=ax, shrink=min(0.9, 0.45 + 0.1 * rows), label="weight")
    fig.suptitle(title)
    return fig
