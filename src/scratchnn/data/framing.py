"""How big the ink is in a set of images, so that a photo can be framed the way they were.

MNIST fitted each digit into a 20x20 box of its 28x28 field; other sets frame theirs otherwise
(Fashion-MNIST's clothes fill the field). A model learns the size it was shown, so a photo is
best prepared at the size of the model's training images: ``ink_box`` measures it, as the
median over the images of the longer side of the box around every pixel brighter than
``FAINT``. The model file keeps it, and ``photos.preprocess`` fits a photo's ink into it.
"""
from __future__ import annotations

import numpy as np

MNIST_BOX = 20  # the box of a model file from before the box was kept, and of MNIST itself
MIN_BOX, FIELD = 8, 28  # a photo's box: smaller leaves too few pixels to read; the field is 28x28
FAINT = 25  # uint8: the grey edges a photo's crop keeps (preprocess.FAINT, 0.1 of the ink)
SAMPLE = 10_000  # images measured at most: a median settles long before


def ink_box(images: np.ndarray) -> int:
    """The median longer side, in pixels, of the ink's bounding box in uint8 images (N, H, W);
    MNIST_BOX when no image has ink.

    >>> digits = np.zeros((3, 28, 28), np.uint8); digits[:, 4:24, 10:18] = 255
    >>> ink_box(digits)
    20
    """
    images = np.asarray(images)[:SAMPLE]
    ink = images > FAINT
    rows, cols = ink.any(axis=2), ink.any(axis=1)
    inked = rows.any(axis=1)
    if not inked.any():
        return MNIST_BOX
    side = np.maximum(_extent(rows[inked]), _extent(cols[inked]))
    return int(np.median(side))


def photo_box(metadata: dict) -> int:
    """The box a photo's ink is fitted into for a model whose file's metadata is ``metadata``:
    its training images' ``ink_box`` (MNIST_BOX for a file without one), within MIN_BOX..FIELD."""
    box = metadata.get("ink_box", MNIST_BOX)
    return min(max(box, MIN_BOX), FIELD) if isinstance(box, int) and not isinstance(box, bool) else MNIST_BOX


def _extent(mask: np.ndarray) -> np.ndarray:
    """Per row of ``mask`` (N, L) with some True: last True - first True + 1."""
    first = mask.argmax(axis=1)
    last = mask.shape[1] - 1 - mask[:, ::-1].argmax(axis=1)
    return last - first + 1
