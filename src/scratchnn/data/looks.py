"""What a file's images look like, where that would mislead training without a word: dark digits
on a light page, images stored column by column, dev images that are copies of training ones.

Each check returns the note to print (or None): the data may be meant so (clothes are wider than
tall, a teacher may duplicate on purpose), so these are notes, never errors. Measured on the
10,000 MNIST test digits: the mean pixel of a 2-pixel frame is 0.001 of white (inverted: 0.999;
Fashion-MNIST 0.09); 4% of digits have ink at least 3 pixels wider than tall (turned over the
diagonal: 68%; clothes 33%, turned 61%).
"""
from __future__ import annotations

import numpy as np

FRAME = 2  # pixels: the border whose mean says what the background is
LIGHT_BACKGROUND = 0.5  # a frame brighter than this (of white) is a light page
INK = 0.25  # of white: a pixel this bright is part of the digit
WIDER = 3  # pixels: ink this much wider than tall is a wide image
WIDE_SHARE = 0.5  # more than this share of wide images: stored column by column?
SAMPLE = 2000  # images looked at (evenly spaced): enough for a share, cheap for 60,000
COPIES_SHARE = 0.01  # dev images that are copies of training ones worth a note (a few happen)
FAINT = 64  # images whose brightest pixel is under this (of 255) were stored on a smaller scale


def _sample(images: np.ndarray) -> np.ndarray:
    return images[::max(1, len(images) // SAMPLE)]


def dark_on_light(images: np.ndarray, name: str) -> str | None:
    """A note when the images' border is mostly light: digits written dark on a page, which
    MNIST, ``predict`` and ``serve`` hold light on dark (a photo is turned so before it is read)."""
    x = _sample(images)
    if x.ndim != 3 or min(x.shape[1:]) <= 2 * FRAME:
        return None
    inner = x[:, FRAME:-FRAME, FRAME:-FRAME]
    frame = (x.astype(np.float64).sum(axis=(1, 2)) - inner.sum(axis=(1, 2))) / (x[0].size - inner[0].size)
    light = float(frame.mean()) / 255
    if light <= LIGHT_BACKGROUND:
        return None
    return (f"Note: {name}: the images' borders are light ({light:.0%} of white on average): dark digits on a light "
            "page? MNIST's digits are light on dark, and predict and serve turn photos so: a model trained on one "
            "misreads the other; turn them with 255 - pixel")


def faint(images: np.ndarray, name: str) -> str | None:
    """A note when no pixel is brighter than a quarter of white: pixels stored on another scale
    (scikit-learn's digits are 0..16), which divided by 255 are nearly black. Batch norm hides it
    in training (it rescales every unit), but photos and the page feed the model 0..1 images."""
    top = int(images.max(initial=0))
    if not 0 < top < FAINT:
        return None
    return (f"Note: {name}: the brightest pixel is {top} of 255: pixels stored on a smaller scale (scikit-learn's "
            "digits are 0..16)? Pixels are divided by 255, so the network learns from nearly black images and then "
            f"misreads photos, drawings and files of 0..255; scale them to 0..255 first (pixel * 255 // {top})")


def wider_than_tall(images: np.ndarray, name: str, transposed: bool = False) -> str | None:
    """A note when most images' ink is wider than tall: MNIST's digits are taller than wide (a
    20-pixel box, 19.7 tall and 15.1 wide on average), so mostly wide ones were likely stored
    column by column, as EMNIST's are; ``--transpose`` turns them over the diagonal. Images it
    has ``transposed`` already that are mostly wide were upright before. "Wider" is by WIDER
    pixels of 28, in proportion for other sides (the shapes audit: 3 pixels of 8 never fired)."""
    x = _sample(images)
    if x.ndim != 3 or x.shape[1] != x.shape[2]:  # a 28x56 pair of digits is wide by design
        return None
    margin = max(1, round(WIDER * x.shape[1] / 28))
    ink = x > INK * 255
    height, width = _span(ink.any(axis=2)), _span(ink.any(axis=1))
    drawn = height > 0
    share = float(np.mean(width[drawn] >= height[drawn] + margin)) if drawn.any() else 0.0
    if share <= WIDE_SHARE:
        return None
    if transposed:
        return (f"Note: {name}: turned by --transpose, {share:.0%} of the images are at least {margin} pixel"
                f"{'s' * (margin != 1)} wider than tall, where MNIST's digits are taller than wide: were they "
                "stored upright already? If so, leave out --transpose")
    return (f"Note: {name}: {share:.0%} of the images are at least {margin} pixel{'s' * (margin != 1)} wider than "
            "tall, where MNIST's digits are taller than wide: stored column by column (as EMNIST's files are)? If "
            "they are digits or letters, --transpose turns each over its diagonal")


def _span(filled: np.ndarray) -> np.ndarray:
    """For each row of a boolean (N, L) array, the length from its first True to its last (0: none)."""
    first = filled.argmax(axis=1)
    last = filled.shape[1] - 1 - filled[:, ::-1].argmax(axis=1)
    return np.where(filled.any(axis=1), last - first + 1, 0)


def copies_of_training(train_images: np.ndarray, dev_images: np.ndarray) -> str | None:
    """A note when over COPIES_SHARE of the dev images are pixel for pixel training images (the
    same file joined to itself, each image saved several times): the network has seen those
    answers, so the dev accuracy counts them as read and overstates what it does on new images."""
    if not len(dev_images) or not len(train_images):
        return None
    dev, train = dev_images.reshape(len(dev_images), -1), train_images.reshape(len(train_images), -1)
    # only training rows whose pixel sum a dev row has can equal one: a set of the dev rows (not of
    # the training ones: 245 MB for 300,000 images) and a few percent of the training rows hashed
    sums = train.sum(axis=1, dtype=np.int64)
    candidates = train[np.isin(sums, dev.sum(axis=1, dtype=np.int64))]
    found = {row.tobytes() for row in candidates} & {row.tobytes() for row in dev}
    copies = sum(row.tobytes() in found for row in dev)
    if copies <= COPIES_SHARE * len(dev_images):
        return None
    return (f"Note: {copies:,} of the {len(dev_images):,} dev images are copies of training images, pixel for pixel: "
            "the dev accuracy counts them as read, so it overstates what the network does on new images; remove "
            "the duplicates from the data (np.unique(images, axis=0, return_index=True) finds them)")
