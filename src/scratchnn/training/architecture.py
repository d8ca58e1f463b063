"""The network a TrainConfig describes: its layers worked out on paper and checked, then built.

``layer_specs`` turns the options (``--hidden``, ``--conv``, ``--batchnorm``, ``--dropout``...)
into (layer class, keyword arguments) pairs by arithmetic alone, and ``network_shapes`` checks
them against the bounds every model file obeys, so a network too big to save (or whose
pooling does not fit its images) is refused before any weight is drawn. ``build_model`` makes
the layers.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError, ModelFileError
from ..model import Sequential
from ..model_schema import checked_shapes
from ..nn import (AvgPool2D, BatchNorm1d, BatchNorm2d, Conv2D, Dense, Dropout, Flatten, LeakyReLU, MaxPool2D, ReLU,
                  Sigmoid, Tanh)

ACTIVATIONS = {"relu": ReLU, "leaky-relu": LeakyReLU, "sigmoid": Sigmoid, "tanh": Tanh}
POOLS = {"max": MaxPool2D, "avg": AvgPool2D}


def build_model(config, rng: np.random.Generator, image_shape=(28, 28), num_classes: int = 10,
                layer_rng: np.random.Generator | None = None) -> Sequential:
    """The network for images of ``image_shape`` (H, W) and ``num_classes`` classes.

    An MLP (no ``conv``) reads x (N, H·W); a CNN reads x (N, 1, H, W) through its conv
    blocks, then Flatten and the same dense part. ``rng`` draws the initial weights;
    ``layer_rng`` drives dropout masks during training. The layers are first worked out
    on paper (``layer_specs``): a network too big to save is refused before it is built.
    """
    input_shape, specs = layer_specs(config, image_shape, num_classes)
    layers = [kind(**args, rng=rng) if kind in (Conv2D, Dense) else kind(**args) for kind, args in specs]
    return Sequential(layers, input_shape, rng=layer_rng)


def layer_specs(config, image_shape=(28, 28), num_classes: int = 10) -> tuple[tuple, list[tuple[type, dict]]]:
    """(input shape, [(layer class, its keyword arguments), ...]) of ``build_model``'s network,
    by arithmetic alone, checked against the bounds every model file obeys (model_schema):
    a ConfigError names what is too big (``--hidden 1000000000`` would need 2.9 TiB)."""
    height, width = image_shape
    input_shape = (1, height, width) if config.conv else (height * width,)
    specs, features = [], height * width
    if config.input_dropout:
        specs.append((Dropout, {"p": config.input_dropout}))
    weights = {"init": config.init, "bias_init": config.bias_init}
    if config.conv:
        channels, paddings = 1, config.padding or [0] * len(config.conv)
        for out_channels, padding in zip(config.conv, paddings):
            for _ in range(config.conv_repeat):  # conv -> [BN] -> activation, then one pooling per block
                specs.append((Conv2D, {"in_channels": channels, "out_channels": out_channels,
                                       "kernel_size": config.kernel_size, "padding": padding, **weights}))
                if config.batchnorm:
                    specs.append((BatchNorm2d, {"channels": out_channels}))
                specs.append((ACTIVATIONS[config.activation], {}))
                channels = out_channels
            specs.append((POOLS[config.pool], {"size": 2}))
            if config.conv_dropout:
                specs.append((Dropout, {"p": config.conv_dropout}))
        specs.append((Flatten, {}))
        (features,) = network_shapes(input_shape, specs, window_fix=_window_fix(config, image_shape))[1][-1]
    for size in config.hidden:
        specs.append((Dense, {"in_features": features, "out_features": size, **weights}))
        if config.batchnorm:
            specs.append((BatchNorm1d, {"features": size}))
        specs.append((ACTIVATIONS[config.activation], {}))
        if config.dropout:
            specs.append((Dropout, {"p": config.dropout}))
        features = size
    specs.append((Dense, {"in_features": features, "out_features": num_classes, **weights}))
    network_shapes(input_shape, specs)
    return input_shape, specs


def network_shapes(input_shape: tuple, specs: list[tuple[type, dict]],
                   window_fix: str = "") -> tuple[dict, list[tuple]]:
    """model_schema.checked_shapes of the network ``specs`` describe (its parameters' and
    buffers' shapes, each layer's output shape), its ModelFileError a ConfigError (``window_fix``:
    what to change when a window no longer fits the image, ``_window_fix``'s words)."""
    architecture = {"input_shape": list(input_shape),
                    "layers": [{"type": kind.__name__, "config": args} for kind, args in specs]}
    try:
        return checked_shapes(architecture)
    except ModelFileError as error:
        window = window_fix or "use fewer --conv blocks or a smaller --kernel-size"
        smaller = "use fewer or smaller layers (--hidden, --conv, --conv-repeat)"
        fix = window if "window does not fit" in str(error) else smaller
        raise ConfigError(f"this network cannot be built: {error}; {fix}") from None


def blocks_that_fit(side: int, paddings: list[int], kernel: int, repeat: int) -> int:
    """How many conv blocks, padded by ``paddings``, images ``side`` pixels wide go through: each
    block's ``repeat`` convolutions take ``kernel - 1 - 2 * padding`` pixels, its 2x2 pooling halves."""
    for block, padding in enumerate(paddings):
        side -= repeat * (kernel - 1 - 2 * padding)
        if side < 2:  # a convolution's window or the pooling's no longer fits
            return block
        side //= 2
    return len(paddings)


def _window_fix(config, image_shape) -> str:
    """What to change when the image shrinks below a window: padding, spelled for every block,
    where it makes the network fit, else how many blocks fit at all (the advice audit: five
    blocks on 28x28 digits were told --padding 1, refused as one value for five blocks, then
    refused again padded, since 28 halves to nothing after four poolings)."""
    side, kernel, blocks = min(image_shape), config.kernel_size, len(config.conv)
    same = kernel // 2  # the padding that keeps an odd window's image its size (an even one's a pixel larger)
    if kernel > side:
        return f"a {kernel}x{kernel} window is larger than the {side}-pixel images: use a smaller --kernel-size"
    most = blocks_that_fit(side, [same] * blocks, kernel, config.conv_repeat)
    if most == blocks:
        keeps = "its size" if kernel % 2 else "its size or a pixel larger"  # the review: 4x4 windows and padding 1
        pads = ",".join([str(same)] * blocks)
        return (f"pad each block (--padding {pads} keeps each {kernel}x{kernel} convolution's image {keeps}), or use "
                "fewer --conv blocks (each pooling halves the image)")
    return (f"{side}-pixel images go through at most {most} conv block(s) of {kernel}x{kernel} windows, even padded "
            f"(each pooling halves the image): give --conv {most} size(s)"
            + (f" with --padding {','.join([str(same)] * most)}" if most and same else ""))
