"""Writing Kaggle's files: ``write_kaggle_csv`` (images and labels in the "Digit Recognizer"
CSV format that ``kaggle_csv`` reads) and ``write_submission`` (``ImageId,Label``). Both write
atomically, after checking every value fits the format."""
from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np

from ..errors import ShapeError
from ..files import atomic_write_bytes
from .idx import GZIP_LEVEL
from .kaggle_csv import MAX_LABEL, MAX_SIDE, MIN_SIDE, pixel_names, square_side

NUMBERS = [str(value) for value in range(256)]


def write_submission(path, predictions: np.ndarray) -> Path:
    """Write Kaggle's submission format atomically: ``ImageId,Label``, one line per image, ImageId
    counted from 1 in the order of the test file; predictions (N,) are the class numbers (0..9 for
    digits).

    >>> import tempfile; folder = tempfile.mkdtemp()
    >>> write_submission(Path(folder) / "submission.csv", np.array([7, 2])).read_text()
    'ImageId,Label\\n1,7\\n2,2\\n'
    """
    predictions = np.asarray(predictions)
    if predictions.ndim != 1:
        raise ShapeError(f"predictions must be one class index per image (N,), got shape {predictions.shape}")
    _check_integers(predictions, MAX_LABEL, "predictions")
    lines = ["ImageId,Label"] + [f"{k},{label}" for k, label in enumerate(predictions.tolist(), 1)]
    return atomic_write_bytes(Path(path), ("\n".join(lines) + "\n").encode())


def write_kaggle_csv(path, images: np.ndarray, labels: np.ndarray | None = None) -> Path:
    """Write square images (N, 28, 28) or (N, 784) (any side from MIN_SIDE to MAX_SIDE) with pixels
    0..255, and labels (N,) in 0..255, as a Kaggle CSV with its header, gzipped when the name ends
    in .gz. The write is atomic."""
    images = np.asarray(images)
    side = square_side(math.prod(images.shape[1:])) if images.ndim in (2, 3) else 0
    if not side or images.ndim == 3 and images.shape[1] != images.shape[2]:
        raise ShapeError(f"Kaggle CSV images must be square, (N, 28, 28) or (N, 784) (sides {MIN_SIDE} to "
                         f"{MAX_SIDE}), got {images.shape}")
    pixels = images.reshape(len(images), side * side)
    _check_integers(pixels, 255, "pixels")
    header = pixel_names(side)  # pixel0, pixel1, ...
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (len(pixels),):
            raise ShapeError(f"labels must have shape ({len(pixels)},) to match the images, got {labels.shape}")
        _check_integers(labels, MAX_LABEL, "labels")
        pixels = np.column_stack([labels, pixels])
        header = ["label", *header]
    # a lookup table of the 256 spellings is ~3x faster than np.savetxt's per-value formatting
    text = [",".join(header)] + [",".join([NUMBERS[v] for v in row]) for row in pixels.tolist()]
    data = ("\n".join(text) + "\n").encode()
    path = Path(path)
    if path.name.endswith(".gz"):
        data = gzip.compress(data, GZIP_LEVEL, mtime=0)
    return atomic_write_bytes(path, data)


def _check_integers(values: np.ndarray, top: int, what: str) -> None:
    if values.dtype.kind not in "ui":
        raise ShapeError(f"{what} must be integers 0..{top}, got dtype {values.dtype}")
    if values.size and (values.min() < 0 or values.max() > top):
        raise ShapeError(f"{what} must be in 0..{top}, got {values.min()}..{values.max()}")
