"""Checkers for what a model file may say about a layer, before anything is built or allocated.

Each layer class declares its keywords in its own file, each with a checker from here:

    required_keywords = {"in_features": units, "out_features": units}
    optional_keywords = {"init": initializer, "bias_init": initializer}

A checker takes ``(value, where)`` and returns the checked value (a window side as a
(height, width) pair), or raises ``ModelFileError`` naming ``where`` and the allowed range.
``scratchnn.model_schema`` chains the layers of a whole architecture and bounds the totals.

Bounds (far above any MNIST-sized network, far below what would exhaust a machine):
    MAX_UNITS       units, features or channels of one layer, and one side of an input
    MAX_WINDOW      kernel, pooling window, stride and padding sides
    MAX_SAMPLE      numbers in one sample at any layer (input, output, a convolution's or pool's work matrix)
"""
from __future__ import annotations

import re

from ..errors import ModelFileError
from .init import INITIALIZERS

MAX_UNITS = 2**22  # 4,194,304
MAX_WINDOW = 4096
MAX_SAMPLE = 2**26  # 67,108,864


def show(value, limit: int = 40) -> str:
    """repr(value) cut to ``limit`` characters, so an error message stays one short line."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def is_int(value) -> bool:
    """A JSON integer: not a bool (True is an int in Python), not a float such as 512.0."""
    return type(value) is int


def is_number(value) -> bool:
    return type(value) in (int, float)


def check_int(value, where: str, low: int = 0, high: int = 2**62) -> int:
    if not is_int(value) or not low <= value <= high:
        raise ModelFileError(f"{where} must be an integer from {low:,} to {high:,}, got {show(value)}")
    return value


def check_number(value, where: str, low: float, high: float, *, open_high: bool = False,
                 open_low: bool = False) -> float:
    inside = is_number(value) and (low < value if open_low else low <= value) and \
        (value < high if open_high else value <= high)
    if not inside:
        interval = f"{'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"
        raise ModelFileError(f"{where} must be a number in {interval}, got {show(value)}")
    return value


# --- keyword checkers the layers use: (value, where) -> checked value

def units(value, where):
    """Units, features or channels: an integer from 1 to MAX_UNITS."""
    return check_int(value, where, 1, MAX_UNITS)


def window(minimum: int):
    """A checker of window sides: an integer from ``minimum`` to MAX_WINDOW, or a [height, width]
    pair of them; returns the (height, width) pair."""
    def check(value, where):
        pair = value if type(value) is list else [value, value]
        if len(pair) != 2 or not all(is_int(v) and minimum <= v <= MAX_WINDOW for v in pair):
            raise ModelFileError(f"{where} must be an integer from {minimum} to {MAX_WINDOW:,} or a "
                                 f"[height, width] pair of them, got {show(value)}")
        return tuple(pair)
    return check


def optional(check):
    """``check`` that also lets None (the layer's default) through."""
    return lambda value, where: None if value is None else check(value, where)


def one_of(names: tuple[str, ...]):
    """A checker of a name from ``names`` (Conv2D's algorithm)."""
    def check(value, where):
        if type(value) is not str or value not in names:
            raise ModelFileError(f"{where} must be one of {', '.join(names)}, got {show(value)}")
        return value
    return check


def initializer(value, where):
    """The name of an initialiser in ``scratchnn.nn.init``."""
    if type(value) is not str or value not in INITIALIZERS:
        raise ModelFileError(f"{where} must be one of {', '.join(INITIALIZERS)}, got {show(value)}")
    return value


def fraction(value, where):
    """A number in [0, 1): Dropout's p, LeakyReLU's alpha."""
    return check_number(value, where, 0, 1, open_high=True)


def features_in(shape: tuple[int, ...], width: int, where: str) -> None:
    """Refuse an input sample that is not ``width`` features, as a layer on (N, D) rows would."""
    if shape != (width,):
        raise ModelFileError(f"{where} takes ({width},) features but {_giver(where)} gives {shape}")


def images_in(shape: tuple[int, ...], channels: int, where: str) -> None:
    """Refuse an input sample that is not images (``channels``, H, W), as a layer on (N, C, H, W) would."""
    if len(shape) != 3 or shape[0] != channels:
        raise ModelFileError(f"{where} takes images ({channels}, H, W) but {_giver(where)} gives {shape}")


def _giver(where: str) -> str:
    """What feeds the layer ``where`` names ("layer 0 (Dense)": the model's input)."""
    return "the input" if re.search(r"\blayer 0 \(", where) else "the layer before"
