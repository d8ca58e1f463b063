"""Test-time augmentation (TTA): ask the model about a few slightly moved copies of each image
and average its answers.

    p_TTA(x) = 1/N · Σ_{k<N} softmax(f(T_k x)),     T_0 = identity

A digit shifted by a pixel or turned by a few degrees is still the same digit, so where the
model hesitates on the original, its answers on the neighbours often tip the balance. The
views should be ones the model learnt from, the ones its training augmentation made
(``augment.augmentation_for``), so there are two fixed lists:

- ``"digits"``: the first seven are chosen by hand (one-pixel shifts in the four directions,
  ±8° rotations), the rest are drawn once, here, from a generator with a fixed seed (shifts
  within ±1 px, rotations within ±8°, sizes within ±5 %).
- ``"clothes"`` (Fashion-MNIST, trained on mirrored images): the original and its mirror, then
  whole-pixel shifts of both (a sub-pixel read would blur the fabric). Turning a shirt makes an
  image the test set never has: with the digits' views TTA x8 gained three cnn-best models on
  Fashion-MNIST's test set +0.04, -0.01 and -0.09 point; with these, +0.56, +0.46 and +0.35.

``tta=N`` takes the first N of a list, so the same N gives the same transforms on every call,
and no global random state is touched.

Each transform is one ``warp.affine`` call (bilinear reads, zeros outside the frame), so
inputs must be grayscale images with pixels in [0, 1], as ``scale_pixels`` makes them: an MLP's
(N, H·W) rows and a CNN's (N, 1, H, W) maps are viewed as (N, H, W) images and back.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, ShapeError
from .warp import affine

MAX_TTA = 16  # transforms per image: the identity and 15 others
SEED = 18  # the drawn transforms' generator (issue 18); changing it changes every N > 7


@dataclass(frozen=True)
class View:
    """One fixed transform: move by ``shift`` = (down, right) px, turn by ``rotate`` degrees
    (counter-clockwise as displayed), scale by ``scale`` about the centre."""

    shift: tuple[float, float] = (0.0, 0.0)
    rotate: float = 0.0
    scale: float = 1.0
    mirror: bool = False  # left-right, before the rest

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """images (N, H, W) floats in [0, 1] -> a new (N, H, W) array (the identity copies nothing)."""
        if self.mirror:
            images = np.ascontiguousarray(images[:, :, ::-1])
        if dataclasses.replace(self, mirror=False) == IDENTITY:
            return images
        return affine(images, shift=self.shift, rotate=self.rotate, scale=self.scale)


IDENTITY = View()


def _digit_views() -> tuple[View, ...]:
    chosen = [IDENTITY, View(shift=(0, 1)), View(shift=(0, -1)), View(shift=(1, 0)), View(shift=(-1, 0)),
              View(rotate=8), View(rotate=-8)]
    rng = np.random.default_rng(SEED)
    drawn = [View(shift=(round(float(dy), 3), round(float(dx), 3)), rotate=round(float(angle), 2),
                  scale=round(float(size), 3))
             for dy, dx, angle, size in zip(rng.uniform(-1, 1, MAX_TTA), rng.uniform(-1, 1, MAX_TTA),
                                            rng.uniform(-8, 8, MAX_TTA), rng.uniform(0.95, 1.05, MAX_TTA))]
    return tuple(chosen + drawn)[:MAX_TTA]


def _clothes_views() -> tuple[View, ...]:
    shifts = [(0, 0), (0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (-1, -1), (1, -1)]
    return tuple(View(shift=shift, mirror=mirror) for shift in shifts for mirror in (False, True))


VIEW_LISTS = {"digits": _digit_views(), "clothes": _clothes_views()}
VIEW_KINDS = {"digits": "shifts, turns and sizes", "clothes": "mirrors and whole-pixel shifts"}  # for people
VIEWS = VIEW_LISTS["digits"]
TTA_VIEWS = {"fashion-mnist": "clothes"}  # by dataset name, as augment.AUGMENTATIONS; any other: digits


def views_for(dataset: str, augmentation: dict | None = None) -> str:
    """The view list that suits a model: what its training ``augmentation`` (the table a model file
    records) taught it to ignore, mirrors ("clothes") or else shifts and turns ("digits"); for a
    model trained without one, what suits its named dataset ("clothes" for fashion-mnist)."""
    if isinstance(augmentation, dict):
        flip = augmentation.get("flip", 0)
        return "clothes" if isinstance(flip, (int, float)) and flip > 0 else "digits"
    return TTA_VIEWS.get(dataset, "digits")


def check_views(views) -> str:
    """``views`` if it names a view list, else a ConfigError."""
    if views not in VIEW_LISTS:
        raise ConfigError(f"views must be one of {', '.join(map(repr, VIEW_LISTS))}, got {views!r}")
    return views


def check_tta(n) -> int:
    """``n`` as an int in 1..MAX_TTA (1 = the original image only), else a ConfigError."""
    if isinstance(n, (bool, float)) or not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_TTA:
        raise ConfigError(f"tta is the number of views of each image averaged, a whole number from 1 "
                          f"(no augmentation) to {MAX_TTA}; got {n!r}")
    return int(n)


def tta_views(n, views: str = "digits") -> tuple[View, ...]:
    """The first ``n`` views (1 <= n <= MAX_TTA) of a list; ``tta_views(n)[0]`` is the identity.

    >>> [v.shift for v in tta_views(3)]
    [(0.0, 0.0), (0, 1), (0, -1)]
    >>> [(v.shift, v.mirror) for v in tta_views(3, "clothes")]
    [((0, 0), False), ((0, 0), True), ((0, 1), False)]
    """
    return VIEW_LISTS[check_views(views)][:check_tta(n)]


def image_shape_for(input_shape: tuple[int, ...], image_shape=None) -> tuple[int, int]:
    """The (H, W) images behind a model input: a CNN's (1, H, W), or an MLP's (D,) with D = H·W
    (``image_shape`` when given, else square). ShapeError when neither fits."""
    input_shape = tuple(input_shape)
    if len(input_shape) == 3:
        if input_shape[0] != 1:
            raise ShapeError(f"test-time augmentation moves grayscale images; the model takes {input_shape[0]} "
                             "channels")
        shape = input_shape[1:]
        if image_shape is not None and tuple(image_shape) != shape:
            raise ShapeError(f"image shape {tuple(image_shape)} does not fit the model input {input_shape}")
        return shape
    if len(input_shape) == 1 and image_shape is not None:
        shape = tuple(int(s) for s in image_shape)
        if len(shape) != 2 or math.prod(shape) != input_shape[0]:
            raise ShapeError(f"image shape {shape} does not hold the model's {input_shape[0]} inputs")
        return shape
    side = math.isqrt(input_shape[0]) if len(input_shape) == 1 else 0
    if side == 0 or side * side != input_shape[0]:
        raise ShapeError(f"test-time augmentation needs images; the model input {input_shape} is not a square "
                         "image: give image_shape=(H, W)")
    return side, side


def view_probas(proba: Callable[[np.ndarray], np.ndarray], x: np.ndarray, n: int,
                image_shape: tuple[int, int] | None, views: str = "digits") -> np.ndarray:
    """proba(T_k x) for each of the first n views T_k of the ``views`` list: (n, B, C) for
    x (B, *input_shape) and ``proba`` -> (B, C); row 0 is proba(x) (T_0 is the identity).

    ``proba`` sees the n views stacked, one batch of n·B rows (so pass B <= batch size / n): for
    one drawn digit, one pass of 8 images instead of 8 passes of one.
    """
    transforms = tta_views(n, views)
    if n == 1:
        return proba(x)[None]
    images = x.reshape(len(x), *image_shape)
    stacked = np.concatenate([x, *(transform(images).reshape(x.shape) for transform in transforms[1:])])
    return proba(stacked).reshape(n, len(x), -1)


def mean_of_views(probas: np.ndarray) -> np.ndarray:
    """The TTA probabilities (N, C) from the views' (n, N, C): their mean, summed in float64,
    returned in the views' dtype."""
    return probas[0] if len(probas) == 1 else probas.mean(axis=0, dtype=np.float64).astype(probas.dtype)
