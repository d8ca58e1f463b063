"""Shuffle and hold out a dev set, scale pixels to floats, and walk through mini-batches."""
from __future__ import annotations

import math
import operator
from collections.abc import Iterator

import numpy as np

from ..errors import ConfigError, DataError, ShapeError

FLOAT32_MAX = float(np.finfo(np.float32).max)  # floats past it are not pixels of any scale


def train_dev_split(images: np.ndarray, labels: np.ndarray, dev_size: int, rng: np.random.Generator):
    """(train_images, train_labels, dev_images, dev_labels) from images (N, ...) and labels (N,).

    The rows are shuffled with ``rng.permutation`` and the first ``dev_size`` shuffled rows
    become the dev set, as in the seed tutorial (shuffle, hold out the first 1,000).

    >>> x, y = np.arange(10).reshape(5, 2), np.arange(5)
    >>> [a.shape for a in train_dev_split(x, y, 2, np.random.default_rng(0))]
    [(3, 2), (3,), (2, 2), (2,)]
    """
    if not isinstance(rng, np.random.Generator):
        raise ConfigError(f"rng must be a numpy Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
    n = len(images)
    if len(labels) != n:
        raise DataError(f"{n} images but {len(labels)} labels; they must come in pairs")
    dev_size = check_dev_size(dev_size, n)
    order = rng.permutation(n)
    dev, train = order[:dev_size], order[dev_size:]
    return images[train], labels[train], images[dev], labels[dev]


def check_dev_size(dev_size: int, n: int) -> int:
    """``dev_size`` if it leaves at least one of ``n`` images to train on, else a ConfigError."""
    dev_size = _whole(dev_size, "dev size")
    if not 0 <= dev_size < n:
        raise ConfigError(f"dev size must be between 0 and {n - 1} (the data has {n} images, and at least "
                          f"one must be left to train on), got {dev_size}")
    return dev_size


def seeded_generators(seed: int, split_seed: int | None = None) -> dict[str, np.random.Generator]:
    """Independent generators for the split, the initial weights, the batch order, random
    layers (dropout) and data augmentation, all from one seed: the dev split depends on the seed
    alone, so evaluate can rebuild it exactly. ``split_seed`` draws the split from another seed
    (ensemble members: different weights, one shared dev set)."""
    names = ("split", "init", "order", "layers", "augment")  # append only: spawn(k) keeps the first ones
    gens = {name: np.random.default_rng(child) for name, child in zip(names, np.random.SeedSequence(seed).spawn(len(names)))}
    if split_seed is not None and split_seed != seed:
        gens["split"] = seeded_generators(split_seed)["split"]
    return gens


def refuse_non_real(x: np.ndarray, what: str = "input") -> None:
    """A ShapeError unless ``x`` holds real numbers (bool, integers or floats): strings and objects
    cannot be multiplied, and complex pixels lost their imaginary part in the cast to float32."""
    if x.dtype.kind not in "biuf":
        raise ShapeError(f"{what} must be real numbers (pixels scaled to 0..1), got dtype {x.dtype}")


def refuse_non_finite(x: np.ndarray, dtype, what: str) -> None:
    """A ShapeError when ``x`` holds NaN or infinite values, or values too large for ``dtype``
    (float64 1e39 is infinite in float32): the network's arithmetic would be NaN from there on."""
    if x.dtype.kind not in "fc":
        return
    bad = np.count_nonzero(~np.isfinite(x))
    if bad:
        raise ShapeError(f"{what} contains {bad:,} NaN or infinite value(s); clean the data first")
    largest = float(np.finfo(dtype).max)
    # NOTE: float() first: float16's max compared with a Python float casts that float to float16 (NumPy 2),
    # and float32's max overflows there: a stray "overflow encountered in cast" for every float16 input
    if x.size and float(np.finfo(x.dtype).max) > largest and float(np.abs(x).max()) > largest:
        raise ShapeError(f"{what} holds values up to {float(np.abs(x).max()):.3g}, beyond {np.dtype(dtype).name}'s "
                         f"range (±{largest:.3g}), which the network reads as infinite; scale the inputs to 0..1")


def refuse_raw_pixels(x: np.ndarray, what: str = "input", whole_floats: bool = False) -> None:
    """A ShapeError for raw pixels 0..255 (or a 16-bit image's 0..65535), which a network trained
    on 0..1 reads as 255 times too bright (the loss explodes, or a prediction is sure of anything):
    uint8, or integers above 1 (pandas reads a CSV's pixels as int64), or with ``whole_floats``
    (predictions) floats that are whole numbers above 1 (``x.astype("float32")`` without the
    / 255) or that are none below 0 and some above 2 (0..255 or 0..65535 images blurred or resized
    as floats: no 0..1 image gets there; the numerics audit: x * 65535 was read at 100% confidence,
    a third of it wrong). Training still takes such floats: the break-it lab feeds them on purpose,
    and the doctor names them ([unscaled-inputs])."""
    x = np.asarray(x)
    if x.size == 0:  # nothing to look at (np.zeros((0, 784), np.uint8).max() is a ValueError)
        return
    integers, floats = x.dtype.kind in "ui", whole_floats and x.dtype.kind == "f"
    top = x.max()  # integers up to a 16-bit image's 65535; floats to float32's largest (refuse_non_finite's past it)
    raw = x.dtype == np.uint8 or ((integers and 1 < top <= 65535) or (floats and 1 < top <= FLOAT32_MAX and (
        bool(np.all(np.mod(x, 1) == 0)) or (top > 2 and x.min() >= 0))))
    if raw and top > 255 and floats:  # a 0..255 image resized as floats overshoots 255 (the review), 16 bits too
        raise ShapeError(f"{what} is {x.dtype} with values up to {x.max():g}, unscaled pixels by the look of it; "
                         "scale it to 0..1 first: x / 255 for 8-bit pixels (a resize may overshoot 255: clip after), "
                         "x / 65535 for 16 bits")
    if raw and top > 255:  # a 16-bit image (uint16, 0..65535) went through when this stopped at 255
        raise ShapeError(f"{what} is {x.dtype} with values up to {x.max():g}, unscaled pixels by the look of it "
                         "(0..65535 in a 16-bit image); scale it to 0..1 first: x / 65535 for 16 bits")
    if raw:
        raise ShapeError(f"{what} is {x.dtype} with values up to {x.max():g}, raw pixels 0..255 by the look of it; "
                         "scale it to 0..1 first: x / 255, or from scratchnn.data import scale_pixels; "
                         "scale_pixels(x, model.input_shape)")


def scale_pixels(images: np.ndarray, input_shape=(784,)) -> np.ndarray:
    """uint8 images (N, H, W) -> float32 x (N, *input_shape) = pixel / 255 in [0, 1], C-contiguous.

    (784,) feeds an MLP; (1, 28, 28) feeds a CNN as (N, 1, 28, 28).

    >>> scale_pixels(np.full((2, 28, 28), 255, np.uint8)).shape
    (2, 784)
    >>> scale_pixels(np.zeros((3, 28, 28), np.uint8), (1, 28, 28)).shape
    (3, 1, 28, 28)
    """
    images = np.asarray(images)
    input_shape = tuple(input_shape)
    if images.dtype.kind not in "ui":
        raise ShapeError(f"expected integer pixels 0..255 (uint8), got dtype {images.dtype}; "
                         "pass the raw images, not already-scaled ones")
    if images.dtype != np.uint8 and images.size and (images.min() < 0 or images.max() > 255):
        raise ShapeError(f"pixels must be in 0..255, got {images.min()}..{images.max()}")
    size = math.prod(input_shape)
    if images.ndim < 1 or math.prod(images.shape[1:]) != size:
        raise ShapeError(f"images of shape {images.shape[1:]} have {math.prod(images.shape[1:])} pixels, "
                         f"the model input {input_shape} needs {size}")
    x = images.reshape(len(images), *input_shape).astype(np.float32, order="C")
    x /= np.float32(255)  # in place on the fresh copy: exactly pixel / 255, rounded once
    return x


def batch_indices(n: int, batch_size: int | None = None,
                  rng: np.random.Generator | None = None) -> Iterator[np.ndarray | slice]:
    """Row indices that cover 0..n-1 exactly once, in batches of ``batch_size`` (the last may be
    smaller), in ``rng``'s shuffled order when given.

    ``batch_size`` None or >= n yields ``slice(None)`` once: the full batch, indexed without a
    copy. It is not shuffled: the order of rows does not change a full-batch gradient.

    >>> [b.tolist() for b in batch_indices(5, 2)]
    [[0, 1], [2, 3], [4]]
    >>> list(batch_indices(5, None))
    [slice(None, None, None)]
    """
    if batch_size is not None and _whole(batch_size, "batch size") <= 0:
        raise ConfigError(f"batch size must be positive (or None for the full batch), got {batch_size}")
    if n == 0:
        return
    if batch_size is None or batch_size >= n:
        yield slice(None)
        return
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def _whole(value, what: str) -> int:
    """``value`` as an int (NumPy integers too); ConfigError for floats, strings, bools."""
    try:
        if isinstance(value, bool):
            raise TypeError
        return operator.index(value)
    except TypeError:
        raise ConfigError(f"{what} must be a whole number, got {value!r}") from None
