"""Kaggle "Digit Recognizer" CSV files: ``label,pixel0,...,pixel783``, one image per line.

The label is the class's number, 0..9 for digits; a file of more classes (up to 256: letters,
signs) numbers them 0, 1, 2... Kaggle's Fashion-MNIST and Sign Language MNIST files, which
count their pixels from 1 (``label,pixel1,...,pixel784``), read alike.

The training file has the label column, the test file does not; either may be gzipped and
either may lack the header line. ``read_kaggle_test_csv`` insists on the test file's form, and
``write_submission`` writes the ``ImageId,Label`` file Kaggle scores. Every value is checked,
and an error names the line of the file it is on.

The file is read as a stream, line by line, and every line is bounded, so a hostile file costs
at most what a real one of the same number of images costs: a line may hold at most
``MAX_LINE_CHARS`` characters, a file at most ``MAX_ROWS`` images and ``MAX_BLANK_LINES``
blank lines. A gzip bomb or a 256 MB line is refused after reading one line's worth.
"""
from __future__ import annotations

import gzip
import io
import itertools
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from ..errors import DataError, ShapeError
from ..files import atomic_write_bytes
from .idx import GZIP_LEVEL, open_data

SIDE = 28
PIXELS = SIDE * SIDE
HEADER_WITH_LABEL = ["label"] + [f"pixel{i}" for i in range(PIXELS)]
HEADER_WITHOUT_LABEL = HEADER_WITH_LABEL[1:]
# Kaggle's Fashion-MNIST and Sign Language MNIST files count their pixels from 1
HEADER_FROM_1 = ["label"] + [f"pixel{i}" for i in range(1, PIXELS + 1)]
MAX_LABEL = 255  # labels are stored as uint8: up to 256 classes (a digit file uses 0..9)
INTEGER = re.compile(r"[+-]?[0-9]+")  # what NumPy's loadtxt accepts as an integer (no "1_0", no "1.0")
NUMBERS = [str(value) for value in range(256)]
CHUNK = 1000  # lines per loadtxt call: the text in memory at once stays small
# Limits that keep a hostile file bounded (a real file is far below each):
MAX_LINE_CHARS = 32 * (PIXELS + 1)  # 25,120: 32 characters a value; "9,255,...,255" needs 3,138
# images: 1.4x EMNIST ByClass's 697,932 as a CSV, 2.7x Kaggle's A-Z handwritten letters (372,450 rows;
# 300,000, the bound until labels past 9 were read, refused it), 24x Digit Recognizer's 42,000 (785 MB as uint8)
MAX_ROWS = 1_000_000
MAX_BLANK_LINES = 10_000
SHOWN = 60  # characters of a bad line or value echoed in a message
SEPARATORS = {";": "';'-separated", "\t": "tab-separated", "|": "'|'-separated", " ": "space-separated"}
UNDECODABLE = re.compile("[\udc80-\udcff]")  # bytes that are not UTF-8, as surrogateescape keeps them


def read_kaggle_csv(path) -> tuple[np.ndarray, np.ndarray | None]:
    """Images uint8 (N, 28, 28) and labels uint8 (N,), or None when the file has no label column.

    The header is optional: without one, a first line of 785 integers means label + pixels,
    784 integers means pixels only. Blank lines are skipped; LF, CRLF and CR-only (old Mac)
    line ends are all fine.
    """
    path = Path(path)
    with open_data(path) as stream:
        # -sig: drop the BOM Excel writes; newline=None: LF, CRLF and CR all end a line
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline=None)
        lines = _lines(path, text)
        first = next(lines, None)
        if first is None:
            raise DataError(f"{path}: empty file; expected a header 'label,pixel0,...,pixel783' and one "
                            "image per line")
        has_label, is_data = _read_header(path, *first)
        values = _parse(path, itertools.chain([first] if is_data else [], lines), has_label)
        if values is None:
            raise DataError(f"{path}: no images after the header on line {first[0]}")
        text.detach()  # the stream is closed by open_data, not by the wrapper
    images = values[:, has_label:].reshape(-1, SIDE, SIDE)
    return np.ascontiguousarray(images), (values[:, 0].copy() if has_label else None)


def read_kaggle_test_csv(path, *, ignore_labels: bool = False) -> np.ndarray:
    """Images uint8 (N, 28, 28) of a label-less Kaggle test file (``pixel0,...,pixel783``).

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
    counted from 1 in the order of the test file; predictions (N,) are the class indices 0..9.

    >>> import tempfile; folder = tempfile.mkdtemp()
    >>> write_submission(Path(folder) / "submission.csv", np.array([7, 2])).read_text()
    'ImageId,Label\\n1,7\\n2,2\\n'
    """
    predictions = np.asarray(predictions)
    if predictions.ndim != 1:
        raise ShapeError(f"predictions must be one class index per image (N,), got shape {predictions.shape}")
    _check_integers(predictions, 9, "predictions")
    lines = ["ImageId,Label"] + [f"{k},{label}" for k, label in enumerate(predictions.tolist(), 1)]
    return atomic_write_bytes(Path(path), ("\n".join(lines) + "\n").encode())


def _lines(path: Path, text: io.TextIOBase) -> Iterator[tuple[int, str]]:
    """(1-based number, text without its line end) of every non-blank line, each read with a limit."""
    blank = 0
    for number in itertools.count(1):
        line = text.readline(MAX_LINE_CHARS + 2)  # + 2: the line end, and one character too many
        if not line:
            return
        line = line.removesuffix("\n")
        if len(line) > MAX_LINE_CHARS:
            raise DataError(f"{path}: line {number} is longer than {MAX_LINE_CHARS:,} characters (a row of "
                            "785 values needs about 3,200); the file is damaged or not a Kaggle Digit "
                            "Recognizer CSV")
        if not line.isascii() and UNDECODABLE.search(line):
            raise DataError(f"{path}: line {number}: not a text CSV file (bytes that are not UTF-8); "
                            "pass a Kaggle Digit Recognizer CSV")
        if line.strip():
            yield number, line
            continue
        blank += 1
        if blank > MAX_BLANK_LINES:
            raise DataError(f"{path}: more than {MAX_BLANK_LINES:,} blank lines (line {number}); the file "
                            "is damaged or not a Kaggle Digit Recognizer CSV")


def _read_header(path: Path, number: int, line: str) -> tuple[bool, bool]:
    """(has_label, whether this first non-blank line is already an image) from line ``number``."""
    fields = [field.strip().strip('"') for field in line.split(",")]
    if fields in (HEADER_WITH_LABEL, HEADER_FROM_1):
        return True, False
    if fields in (HEADER_WITHOUT_LABEL, HEADER_FROM_1[1:]):
        return False, False
    if all(INTEGER.fullmatch(f) for f in fields) and len(fields) in (PIXELS, PIXELS + 1):
        return len(fields) == PIXELS + 1, True  # no header: this line is the first image
    where = f"{path}: line {number}"
    separated = _other_separator(line)
    if separated:
        raise DataError(f"{where}: looks like {separated}; scratchnn reads comma-separated files (header "
                        f"'label,pixel0,...,pixel783'): save it with commas. The line starts {_shorten(line)}")
    raise DataError(f"{where}: header must be 'label,pixel0,...,pixel783' (train) or "
                    f"'pixel0,...,pixel783' (test), or the line must hold 785 or 784 integers; "
                    f"got {_shorten(line)} ({len(fields)} columns)")


def _other_separator(line: str) -> str | None:
    """'tab-separated' (etc.) when ``line`` splits into a row's worth of fields on another character."""
    if line.count(",") >= PIXELS - 1:
        return None
    for separator, name in SEPARATORS.items():
        if len(line.strip().split(separator)) >= PIXELS:
            return name
    return None


def _shorten(text: str) -> str:
    """``text`` quoted for a one-line message: at most SHOWN characters, control characters escaped."""
    return repr(text if len(text) <= SHOWN else text[:SHOWN] + "...")


def _parse(path: Path, lines: Iterable[tuple[int, str]], has_label: bool) -> np.ndarray | None:
    """uint8 (N, columns) from the numbered data lines, or None when there are none.

    NumPy's C parser reads CHUNK lines at a time; loadtxt with dtype uint8 rejects anything that
    is not an integer in 0..255, so one call checks a whole chunk, and only when it fails are
    that chunk's lines checked one by one to name the first bad one.
    """
    columns = PIXELS + has_label
    chunks, rows = [], 0
    while chunk := list(itertools.islice(lines, CHUNK)):
        rows += len(chunk)
        if rows > MAX_ROWS:
            raise DataError(f"{path}: more than {MAX_ROWS:,} images (line {chunk[MAX_ROWS - rows][0]}), the "
                            "most scratchnn reads from one CSV; split the file or use a smaller one")
        values = _fast_parse([line for _, line in chunk], columns)
        if values is None:
            for number, line in chunk:
                _check_line(path, number, line, columns)
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


def _check_line(path: Path, number: int, line: str, columns: int) -> None:
    """Raise a DataError if line ``number`` (1-based) is not ``columns`` integers in range."""
    fields = line.split(",")
    where = f"{path}: line {number}"
    if len(fields) != columns:
        kind = "label + 784 pixels" if columns > PIXELS else "784 pixels"
        separated = _other_separator(line)
        hint = f"; it looks like {separated}, scratchnn reads comma-separated files" if separated else ""
        raise DataError(f"{where}: expected {columns} comma-separated values ({kind}), got {len(fields)}{hint}")
    for column, field in enumerate(fields):
        name = "label" if columns > PIXELS and column == 0 else f"pixel{column - (columns > PIXELS)}"
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
    """Write images (N, 28, 28) or (N, 784) with pixels 0..255 (and labels (N,) in 0..9) as a
    Kaggle CSV with its header, gzipped when the name ends in .gz. The write is atomic."""
    images = np.asarray(images)
    if images.shape[1:] not in ((SIDE, SIDE), (PIXELS,)):
        raise ShapeError(f"Kaggle CSV images must be (N, 28, 28) or (N, 784), got {images.shape}")
    pixels = images.reshape(len(images), PIXELS)
    _check_integers(pixels, 255, "pixels")
    header = HEADER_WITHOUT_LABEL
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (len(pixels),):
            raise ShapeError(f"labels must have shape ({len(pixels)},) to match the images, got {labels.shape}")
        _check_integers(labels, MAX_LABEL, "labels")
        pixels = np.column_stack([labels, pixels])
        header = HEADER_WITH_LABEL
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
