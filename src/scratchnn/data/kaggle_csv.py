"""Kaggle "Digit Recognizer" CSV files: ``label,pixel0,...,pixel783``, one image per line.

The label is the class's number, 0..9 for digits; a file of more classes (up to 256: letters,
signs) numbers them 0, 1, 2... Kaggle's Fashion-MNIST and Sign Language MNIST files, which
count their pixels from 1 (``label,pixel1,...,pixel784``), read alike. The images are square,
28x28 as MNIST's or of any side from ``MIN_SIDE`` to ``MAX_SIDE`` (``pixel0..pixel63`` for 8x8):
the header, or the first line's number of values, gives the side.

The training file has the label column, the test file does not; either may be gzipped and
either may lack the header line. ``read_kaggle_test_csv`` insists on the test file's form, and
``write_submission`` writes the ``ImageId,Label`` file Kaggle scores. Every value is checked,
and an error names the line of the file it is on.

The file is read as a stream, line by line, and every line is bounded, so a hostile file costs
at most what a real one of the same number of images costs: a line may hold at most
``CHARS_PER_VALUE`` characters a value (the first line, before the side is known, as many as
a row of the largest side), a file at most ``MAX_ROWS`` images, ``MAX_VALUES`` values and
``MAX_BLANK_LINES`` blank lines. A gzip bomb or a 256 MB line is refused after reading one
line's worth.
"""
from __future__ import annotations

import gzip
import io
import itertools
import math
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from ..errors import DataError, ShapeError
from ..files import atomic_write_bytes
from .idx import GZIP_LEVEL, open_data

SIDE = 28  # MNIST's, the side the messages show
PIXELS = SIDE * SIDE
MIN_SIDE, MAX_SIDE = 8, 128  # 8x8: scikit-learn's digits; 128x128 = 16,384 pixels a line
WIDEST = MAX_SIDE ** 2 + 1  # values in a row of the largest side, with its label
HEADER_WITH_LABEL = ["label"] + [f"pixel{i}" for i in range(PIXELS)]
HEADER_WITHOUT_LABEL = HEADER_WITH_LABEL[1:]
# Kaggle's Fashion-MNIST and Sign Language MNIST files count their pixels from 1
HEADER_FROM_1 = ["label"] + [f"pixel{i}" for i in range(1, PIXELS + 1)]
MAX_LABEL = 255  # labels are stored as uint8: up to 256 classes (a digit file uses 0..9)
INTEGER = re.compile(r"[+-]?[0-9]+")  # what NumPy's loadtxt accepts as an integer (no "1_0", no "1.0")
NUMBERS = [str(value) for value in range(256)]
CHUNK_VALUES = 1000 * (PIXELS + 1)  # values per loadtxt call (1,000 lines of 28x28): the text in memory stays small
# Limits that keep a hostile file bounded (a real file is far below each):
CHARS_PER_VALUE = 32  # a line of 28x28 may hold 25,120 characters; "9,255,...,255" needs 3,138
# images: 1.4x EMNIST ByClass's 697,932 as a CSV, 2.7x Kaggle's A-Z handwritten letters (372,450 rows;
# 300,000, the bound until labels past 9 were read, refused it), 24x Digit Recognizer's 42,000 (785 MB as uint8)
MAX_ROWS = 1_000_000
MAX_VALUES = MAX_ROWS * (PIXELS + 1)  # bigger images, fewer rows: 190,000 of 64x64, 48,000 of 128x128
MAX_BLANK_LINES = 10_000
SHOWN = 60  # characters of a bad line or value echoed in a message
SEPARATORS = {";": "';'-separated", "\t": "tab-separated", "|": "'|'-separated", " ": "space-separated"}
UNDECODABLE = re.compile("[\udc80-\udcff]")  # bytes that are not UTF-8, as surrogateescape keeps them


def read_kaggle_csv(path) -> tuple[np.ndarray, np.ndarray | None]:
    """Images uint8 (N, side, side) and labels uint8 (N,), or None when the file has no label column.

    The header is optional: without one, a first line of 785 integers means label + pixels of
    28x28, 784 integers means pixels only (and so for any square side: 65 or 64 for 8x8).
    Blank lines are skipped; LF, CRLF and CR-only (old Mac) line ends are all fine.
    """
    path = Path(path)
    with open_data(path) as stream:
        # -sig: drop the BOM Excel writes; newline=None: LF, CRLF and CR all end a line
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline=None)
        lines = _Lines(path, text, values=WIDEST)
        first = next(lines, None)
        if first is None:
            raise DataError(f"{path}: empty file; expected a header 'label,pixel0,...,pixel783' and one "
                            "image per line")
        side, has_label, is_data = _read_header(path, *first)
        lines.values = side * side + has_label  # the side is known: a row's worth
        values = _parse(path, itertools.chain([first] if is_data else [], lines), side * side, has_label)
        if values is None:
            raise DataError(f"{path}: no images after the header on line {first[0]}")
        text.detach()  # the stream is closed by open_data, not by the wrapper
    images = values[:, has_label:].reshape(-1, side, side)
    return np.ascontiguousarray(images), (values[:, 0].copy() if has_label else None)


def read_kaggle_test_csv(path, *, ignore_labels: bool = False) -> np.ndarray:
    """Images uint8 (N, side, side) of a label-less Kaggle test file (``pixel0,...,pixel783``).

    Read with the same bounds and checks as ``read_kaggle_csv``. A file with a label column is
    refused (a training file given by mistake) unless ``ignore_labels``, which drops it.
    """
    images, labels = read_kaggle_csv(path)
    if labels is not None and not ignore_labels:
        raise DataError(f"{path}: has a label column (a training file?); Kaggle's test.csv has none. Pass "
                        "--ignore-labels to predict its images anyway")
    return images


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


class _Lines:
    """(1-based number, text without its line end) of every non-blank line of ``text``, each read
    with a limit of CHARS_PER_VALUE characters for each of ``values`` values (lowered once the
    header tells how wide a row is)."""

    def __init__(self, path: Path, text: io.TextIOBase, values: int):
        self.path, self.text, self.values = path, text, values
        self.number = self.blank = 0

    def __iter__(self) -> Iterator[tuple[int, str]]:
        return self

    def __next__(self) -> tuple[int, str]:
        while True:
            self.number += 1
            most = CHARS_PER_VALUE * self.values
            line = self.text.readline(most + 2)  # + 2: the line end, and one character too many
            if not line:
                raise StopIteration
            line = line.removesuffix("\n")
            if len(line) > most:
                raise DataError(f"{self.path}: line {self.number} {self._too_long(line)}; the file is damaged or "
                                "not a Kaggle Digit Recognizer CSV")
            if not line.isascii() and UNDECODABLE.search(line):
                raise DataError(f"{self.path}: line {self.number}: not a text CSV file (bytes that are not "
                                "UTF-8); pass a Kaggle Digit Recognizer CSV")
            if line.strip():
                return self.number, line
            self.blank += 1
            if self.blank > MAX_BLANK_LINES:
                raise DataError(f"{self.path}: more than {MAX_BLANK_LINES:,} blank lines (line {self.number}); "
                                "the file is damaged or not a Kaggle Digit Recognizer CSV")

    def _too_long(self, line: str) -> str:
        """What is wrong with a line past the limit: too many values, or too many characters."""
        if line.count(",") >= self.values:
            width = (f"a label and {MAX_SIDE}x{MAX_SIDE} pixels, the widest row scratchnn reads"
                     if self.values == WIDEST else "the width of this file's rows")
            return f"holds more than {self.values:,} comma-separated values, {width}"
        return (f"is longer than {CHARS_PER_VALUE * self.values:,} characters ({CHARS_PER_VALUE} for each value "
                "of a row)")


def _read_header(path: Path, number: int, line: str) -> tuple[int, bool, bool]:
    """(side, has_label, whether this first non-blank line is already an image) from line ``number``."""
    fields = [field.strip().strip('"') for field in line.split(",")]
    has_label = fields[0] == "label"
    names = fields[has_label:]
    side = _square_side(len(names))
    if side and names[0] in ("pixel0", "pixel1") and names == _pixel_names(side, int(names[0] == "pixel1")):
        return side, has_label, False
    if all(INTEGER.fullmatch(f) for f in fields):  # no header: this line is the first image
        side, labelled = _square_side(len(fields)), _square_side(len(fields) - 1)
        if side or labelled:
            return side or labelled, bool(labelled), True
    where = f"{path}: line {number}"
    separated = _other_separator(line)
    if separated:
        raise DataError(f"{where}: looks like {separated}; scratchnn reads comma-separated files (header "
                        f"'label,pixel0,...,pixel783'): save it with commas. The line starts {_shorten(line)}")
    raise DataError(f"{where}: header must be 'label,pixel0,...,pixel783' (train) or 'pixel0,...,pixel783' "
                    f"(test), or the line must hold 785 or 784 integers (28x28; as many for another square "
                    f"side from {MIN_SIDE} to {MAX_SIDE}); got {_shorten(line)} ({len(fields)} columns)")


def _square_side(pixels: int) -> int:
    """The side of a square image of ``pixels`` pixels between MIN_SIDE and MAX_SIDE, else 0."""
    side = math.isqrt(pixels)
    return side if side * side == pixels and MIN_SIDE <= side <= MAX_SIDE else 0


def _pixel_names(side: int, first: int = 0) -> list[str]:
    """The pixel columns' header names of a side x side image, counted from ``first``."""
    return [f"pixel{i}" for i in range(first, first + side * side)]


def _other_separator(line: str) -> str | None:
    """'tab-separated' (etc.) when ``line`` splits into a row's worth of fields on another character."""
    if line.count(",") >= MIN_SIDE ** 2 - 1:
        return None
    for separator, name in SEPARATORS.items():
        if len(line.strip().split(separator)) >= MIN_SIDE ** 2:
            return name
    return None


def _shorten(text: str) -> str:
    """``text`` quoted for a one-line message: at most SHOWN characters, control characters escaped."""
    return repr(text if len(text) <= SHOWN else text[:SHOWN] + "...")


def _parse(path: Path, lines: Iterable[tuple[int, str]], pixels: int, has_label: bool) -> np.ndarray | None:
    """uint8 (N, columns) from the numbered data lines, or None when there are none.

    NumPy's C parser reads a chunk of lines at a time; loadtxt with dtype uint8 rejects anything
    that is not an integer in 0..255, so one call checks a whole chunk, and only when it fails
    are that chunk's lines checked one by one to name the first bad one.
    """
    columns = pixels + has_label
    most = min(MAX_ROWS, MAX_VALUES // columns)
    chunks, rows = [], 0
    while chunk := list(itertools.islice(lines, max(1, CHUNK_VALUES // columns))):
        rows += len(chunk)
        if rows > most:
            raise DataError(f"{path}: more than {most:,} images (line {chunk[most - rows][0]}), the most "
                            f"scratchnn reads from one CSV of {pixels} pixels an image; split the file or use "
                            "a smaller one")
        values = _fast_parse([line for _, line in chunk], columns)
        if values is None:
            for number, line in chunk:
                _check_line(path, number, line, pixels, has_label)
            raise DataError(f"{path}: lines {chunk[0][0]} to {chunk[-1][0]} could not be parsed as "
                            "comma-separated integers")
        chunks.append(values)
    return np.concatenate(chunks) if chunks else None


def _fast_parse(rows: list[str], columns: int) -> np.ndarray | None:
    """uint8 (N, columns), or None if any row is malformed or any value is outside 0..255."""
    try:
        values = np.loadtxt(rows, delimiter=",", dtype=np.uint8, comments=None, ndmin=2)
    except ValueError:
        return None
    return values if values.shape[1] == columns else None


def _check_line(path: Path, number: int, line: str, pixels: int, has_label: bool) -> None:
    """Raise a DataError if line ``number`` (1-based) is not (a label and) ``pixels`` integers in range."""
    fields = line.split(",")
    where = f"{path}: line {number}"
    columns = pixels + has_label
    if len(fields) != columns:
        kind = f"label + {pixels} pixels" if has_label else f"{pixels} pixels"
        separated = _other_separator(line)
        hint = f"; it looks like {separated}, scratchnn reads comma-separated files" if separated else ""
        raise DataError(f"{where}: expected {columns} comma-separated values ({kind}), got {len(fields)}{hint}")
    for column, field in enumerate(fields):
        name = "label" if has_label and column == 0 else f"pixel{column - has_label}"
        text = field.strip()
        if not INTEGER.fullmatch(text):
            raise DataError(f"{where}: {name} = {_shorten(text)} is not an integer")
        shown = text if len(text) <= SHOWN else text[:SHOWN] + "..."
        if name == "label" and not _in_range(text, MAX_LABEL):
            raise DataError(f"{where}: label {shown} is outside 0..{MAX_LABEL} (the classes are numbered 0, 1, 2...)")
        if name != "label" and not _in_range(text, 255):
            raise DataError(f"{where}: {name} = {shown} is outside 0..255")


def _in_range(integer: str, top: int) -> bool:
    """Whether the integer written ``integer`` is in 0..top, without int() on thousands of digits
    (which Python refuses past 4,300)."""
    digits = integer.lstrip("+-").lstrip("0")
    if not digits:
        return True  # 0, -0, +000
    return not integer.startswith("-") and len(digits) <= len(str(top)) and int(digits) <= top


def write_kaggle_csv(path, images: np.ndarray, labels: np.ndarray | None = None) -> Path:
    """Write square images (N, 28, 28) or (N, 784) (any side from MIN_SIDE to MAX_SIDE) with pixels
    0..255, and labels (N,) in 0..255, as a Kaggle CSV with its header, gzipped when the name ends
    in .gz. The write is atomic."""
    images = np.asarray(images)
    side = _square_side(math.prod(images.shape[1:])) if images.ndim in (2, 3) else 0
    if not side or images.ndim == 3 and images.shape[1] != images.shape[2]:
        raise ShapeError(f"Kaggle CSV images must be square, (N, 28, 28) or (N, 784) (sides {MIN_SIDE} to "
                         f"{MAX_SIDE}), got {images.shape}")
    pixels = images.reshape(len(images), side * side)
    _check_integers(pixels, 255, "pixels")
    header = _pixel_names(side)
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
