"""Kaggle "Digit Recognizer" CSV files: ``label,pixel0,...,pixel783``, one image per line.

The label is the class's number, 0..9 for digits; a file of more classes (up to 256: letters,
signs) numbers them 0, 1, 2... Kaggle's Fashion-MNIST and Sign Language MNIST files, which
count their pixels from 1 (``label,pixel1,...,pixel784``), and the "MNIST in CSV" files that
name them by row and column (``label,1x1,1x2,...,28x28``), read alike. The images are square,
28x28 as MNIST's or of any side from ``MIN_SIDE`` to ``MAX_SIDE`` (``pixel0..pixel63`` for 8x8),
and a header may put the label last (``pixel0,...,pixel63,label``). A file without a header is
read as Kaggle's are, a label and then 28x28 pixels (or the pixels alone): a row of another
length has no known label column, so it asks for a header.

The training file has the label column, the test file does not; either may be gzipped and
either may lack the header line. ``read_kaggle_test_csv`` insists on the test file's form
(``kaggle_write`` writes both, and the ``ImageId,Label`` file Kaggle scores). Every value is
checked, and an error names the line of the file it is on.

The file is read as a stream, line by line, and every line is bounded, so a hostile file costs
at most what a real one of the same number of images costs: a line may hold at most
``CHARS_PER_VALUE`` characters a value (the first line, before the side is known, as many as
a row of the largest side), a file at most ``MAX_ROWS`` images, ``MAX_VALUES`` values and
``MAX_BLANK_LINES`` blank lines. A gzip bomb or a 256 MB line is refused after reading one
line's worth.
"""
from __future__ import annotations

import io
import itertools
import math
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from .idx import open_data

SIDE = 28  # MNIST's, the side the messages show
PIXELS = SIDE * SIDE
MIN_SIDE, MAX_SIDE = 8, 128  # 8x8: scikit-learn's digits; 128x128 = 16,384 pixels a line
WIDEST = MAX_SIDE ** 2 + 1  # values in a row of the largest side, with its label
MAX_LABEL = 255  # labels are stored as uint8: up to 256 classes (a digit file uses 0..9)
INTEGER = re.compile(r"[+-]?[0-9]+")  # what NumPy's loadtxt accepts as an integer (no "1_0", no "1.0")
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
    28x28, 784 integers means pixels only; images of another side need the header that names
    their columns. Blank lines are skipped; LF, CRLF and CR-only (old Mac) line ends are all fine.
    """
    path = Path(path)
    with open_data(path) as stream:
        # -sig: drop the BOM Excel writes; newline=None: LF, CRLF and CR all end a line
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline=None)
        lines = _Lines(path, text, values=WIDEST)
        first = next(lines, None)
        if first is None:
            raise DataError(f"{path}: empty file; expected a header 'label,pixel0,...,pixel783' (train) or "
                            "'pixel0,...,pixel783' (test) and one image per line")
        columns, is_data = _read_header(path, *first)
        lines.values = columns.count  # the side is known: a row's worth
        values = _parse(path, itertools.chain([first] if is_data else [], lines), columns)
        if values is None:
            raise DataError(f"{path}: no images after the header on line {first[0]}")
        text.detach()  # the stream is closed by open_data, not by the wrapper
    pixels = values if columns.label is None else values[:, 1:] if columns.label == 0 else values[:, :-1]
    if pixels.max() == 1:  # read as 0..255, every image would be black: a model says one class for all
        raise DataError(f"{path}: every pixel is 0 or 1 (black and white?); pixels are integers 0..255, as Kaggle's "
                        "files hold them: multiply them by 255 (pandas: cols = [c for c in df if c != 'label']; "
                        "df[cols] *= 255; df.to_csv(path, index=False))")
    images = np.ascontiguousarray(pixels).reshape(-1, columns.side, columns.side)
    return images, None if columns.label is None else values[:, columns.label].copy()


# A label past 255 near its line's number: a headerless file saved with pandas' index (a test file's
# 785 columns are then read as label + pixels). Up to 256 rows it cannot be told from a file of one
# image per class in order, so that is not refused.
COUNTS_ROWS = ("the first column counts the rows: an id, or pandas' index saved with the file, not labels? Drop it "
               "(pandas: df.to_csv(path, index=False)); a file without labels holds only the pixels")


def has_header(path) -> bool:
    """Whether the CSV's first line names its columns (else it is the first image): a file without
    one is read with its first column as the label, whatever that column holds."""
    path = Path(path)
    with open_data(path) as stream:
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline=None)
        first = next(_Lines(path, text, values=WIDEST), None)
        header = first is not None and not _read_header(path, *first)[1]
        text.detach()
    return header


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
            if self.number == 1 and line.startswith(("\udcff\udcfe", "\udcfe\udcff")):  # a UTF-16 BOM (Excel's
                raise DataError(f"{self.path}: saved as UTF-16: save it as UTF-8 (a Kaggle "  # "Unicode text")
                                "Digit Recognizer CSV)")
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


@dataclass(frozen=True)
class _Columns:
    """What a row holds: ``side`` x ``side`` pixels, and the label in column ``label`` (0, the
    last, or None for none)."""
    side: int
    label: int | None

    @property
    def count(self) -> int:
        return self.side * self.side + (self.label is not None)

    def name(self, column: int) -> str:
        """The header name of ``column`` (0-based), as messages show it: label or pixelK."""
        return "label" if column == self.label else f"pixel{column - (self.label == 0)}"

    def describe(self) -> str:
        pixels = f"{self.side * self.side} pixels"
        return pixels if self.label is None else f"label + {pixels}" if self.label == 0 else f"{pixels} + label"


def _read_header(path: Path, number: int, line: str) -> tuple[_Columns, bool]:
    """(the columns, whether this first non-blank line is already an image) from line ``number``."""
    fields = [field.strip().strip('"') for field in line.split(",")]
    if columns := _named_columns(fields):
        return columns, False
    where = f"{path}: line {number}"
    rest = _named_columns(fields[1:]) if len(fields) > 1 else None
    if rest and (rest.label is not None or fields[0].lower() in ("", "id", "imageid", "index", "unnamed: 0")):
        first = _shorten(fields[0]) if fields[0] else "with no name"
        raise DataError(f"{where}: the header has an extra first column ({first}: an id, or pandas' index saved with "
                        "the file); drop that column (pandas: df.to_csv(path, index=False))")
    if all(INTEGER.fullmatch(f) for f in fields):  # no header: this line is the first image
        if len(fields) in (PIXELS, PIXELS + 1):
            return _Columns(SIDE, 0 if len(fields) > PIXELS else None), True
        if len(fields) == PIXELS + 2:  # df.to_csv(path, header=False) keeps pandas' index
            raise DataError(f"{where}: {len(fields)} integers and no header, one more than a label and 28x28 pixels: "
                            f"an id, or pandas' index saved with the file ({_shorten(fields[0])} here)? Drop that "
                            "column (pandas: df.to_csv(path, index=False))")
        side = square_side(len(fields) - 1) or square_side(len(fields))
        if side:
            raise DataError(f"{where}: {len(fields)} integers and no header: without one scratchnn reads 785 "
                            f"(a label, then 28x28 pixels) or 784. For {side}x{side} images add a header line "
                            f"naming the columns, 'label,pixel0,...,pixel{side * side - 1}' (or with label last)")
    separated = _other_separator(line)
    if separated:
        raise DataError(f"{where}: looks like {separated}; scratchnn reads comma-separated files (header "
                        f"'label,pixel0,...,pixel783'): save it with commas. The line starts {_shorten(line)}")
    side = square_side(len(fields) - 1) or square_side(len(fields)) or SIDE
    last = side * side - 1
    others = [f for f in fields if not f.lower().startswith("pixel") and f.lower() != "label"]
    hint = (f"; name the label column 'label' (here {_shorten(others[0])}) and put it first or last"
            if len(others) == 1 and square_side(len(fields) - 1) else "")
    raise DataError(f"{where}: header must be 'label,pixel0,...,pixel{last}' (train) or 'pixel0,...,pixel{last}' "
                    f"(test), for any square side from {MIN_SIDE} to {MAX_SIDE}, or the line must hold 785 or "
                    f"784 integers; got {_shorten(line)} ({len(fields)} columns){hint}")


def _named_columns(fields: list[str]) -> _Columns | None:
    """The columns a header's ``fields`` name: a square image's pixels, with 'label' first, last or
    not at all; None for any other header."""
    label = 0 if fields[0].lower() == "label" else len(fields) - 1 if fields[-1].lower() == "label" else None
    names = fields[1:] if label == 0 else fields[:-1] if label else fields
    side = square_side(len(names))
    return _Columns(side, label) if side and names and names == pixel_names(side, names[0]) else None


def square_side(pixels: int) -> int:
    """The side of a square image of ``pixels`` pixels between MIN_SIDE and MAX_SIDE, else 0."""
    side = math.isqrt(pixels)
    return side if side * side == pixels and MIN_SIDE <= side <= MAX_SIDE else 0


def pixel_names(side: int, first: str = "pixel0") -> list[str]:
    """The pixel columns' header names of a side x side image in the style whose first is ``first``:
    pixel0, pixel1, ... (Kaggle's); from pixel1 (Kaggle's Fashion-MNIST); 1x1, 1x2, ... (row x
    column, the "MNIST in CSV" files); [] for another style."""
    if first == "1x1":
        return [f"{row}x{column}" for row in range(1, side + 1) for column in range(1, side + 1)]
    start = {"pixel0": 0, "pixel1": 1}.get(first)
    return [] if start is None else [f"pixel{i}" for i in range(start, start + side * side)]


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


def _parse(path: Path, lines: Iterable[tuple[int, str]], columns: _Columns) -> np.ndarray | None:
    """uint8 (N, columns) from the numbered data lines, or None when there are none.

    NumPy's C parser reads a chunk of lines at a time; loadtxt with dtype uint8 rejects anything
    that is not an integer in 0..255, so one call checks a whole chunk, and only when it fails
    are that chunk's lines checked one by one to name the first bad one.
    """
    most = min(MAX_ROWS, MAX_VALUES // columns.count)
    chunks, rows = [], 0
    while chunk := list(itertools.islice(lines, max(1, CHUNK_VALUES // columns.count))):
        rows += len(chunk)
        if rows > most:
            raise DataError(f"{path}: more than {most:,} images (line {chunk[most - rows][0]}), the most "
                            f"scratchnn reads from one CSV of {columns.side}x{columns.side} images; split the "
                            "file or use a smaller one")
        values = _fast_parse([line for _, line in chunk], columns.count)
        if values is None:  # name the first bad line; lines NumPy refuses that are fine ("-0") are read here
            for number, line in chunk:
                _check_line(path, number, line, columns)
            values = np.array([[int(field.strip().lstrip("+-").lstrip("0") or "0") for field in line.split(",")]
                               for _, line in chunk], np.uint8)
        chunks.append(values)
    return np.concatenate(chunks) if chunks else None


LOADTXT_WRAPS = tuple(int(part) for part in np.__version__.split(".")[:2]) < (2, 3)  # see _fast_parse


def _fast_parse(rows: list[str], columns: int) -> np.ndarray | None:
    """uint8 (N, columns), or None if any row is malformed or any value is outside 0..255.
    Before NumPy 2.3, loadtxt only warned (DeprecationWarning) of 1.5, 1e2 or 256 in a uint8
    column and stored 1, 100 or 0 (the dependency audit: a 256 pixel became black ink, and
    predict --submission answered for it); with such a NumPy the warning is an error here (a
    filter Python 3.11 sets for the whole process while it reads: not for two threads at once)."""
    try:
        if LOADTXT_WRAPS:
            with warnings.catch_warnings():
                warnings.simplefilter("error", DeprecationWarning)
                values = np.loadtxt(rows, delimiter=",", dtype=np.uint8, comments=None, ndmin=2)
        else:
            values = np.loadtxt(rows, delimiter=",", dtype=np.uint8, comments=None, ndmin=2)
    except (ValueError, DeprecationWarning):
        return None
    return values if values.shape[1] == columns else None


def _check_line(path: Path, number: int, line: str, columns: _Columns) -> None:
    """Raise a DataError if line ``number`` (1-based) is not the integers ``columns`` says, in range."""
    fields = line.split(",")
    where = f"{path}: line {number}"
    if len(fields) != columns.count:
        separated = _other_separator(line)
        hint = f"; it looks like {separated}, scratchnn reads comma-separated files" if separated else ""
        raise DataError(f"{where}: expected {columns.count} comma-separated values ({columns.describe()}), "
                        f"got {len(fields)}{hint}")
    for column, field in enumerate(fields):
        name = columns.name(column)
        text = field.strip()
        if not INTEGER.fullmatch(text):
            raise DataError(f"{where}: {name} = {_shorten(text)} is not an integer; {_integer_fix(name, text)}")
        shown = text if len(text) <= SHOWN else text[:SHOWN] + "..."
        if name == "label" and not _in_range(text, MAX_LABEL):
            counts = column == 0 and len(text) < 20 and number - 2 <= int(text) <= number  # 0, 1, 2... down: no label
            raise DataError(f"{where}: label {shown} is outside 0..{MAX_LABEL} (the classes are numbered 0, 1, 2...)"
                            + (f"; {COUNTS_ROWS}" if counts else ""))
        if name != "label" and not _in_range(text, 255):
            fix = ("pixels are light ink on a dark 0 and never negative: shift them so the darkest is 0"
                   if text.startswith("-") else "scale them to 0..255 (16-bit pixels of 0..65535: pixel // 257)")
            raise DataError(f"{where}: {name} = {shown} is outside 0..255; {fix}")


def _integer_fix(name: str, text: str) -> str:
    """What to do about a cell that is not an integer: what the file should hold instead."""
    if text.startswith('"') or text.startswith("'"):
        return "save the file without quotes around numbers"
    try:
        float(text)
    except ValueError:
        return ("number the classes 0, 1, 2... in the file and give their names with --class-names "
                "(e.g. --class-names cat,dog)" if name == "label" else "pixels are integers 0..255")
    return ("the classes are numbered 0, 1, 2..." if name == "label" else
            "pixels are integers 0..255: scale 0..1 values by 255 and round them, and write whole numbers")


def _in_range(integer: str, top: int) -> bool:
    """Whether the integer written ``integer`` is in 0..top, without int() on thousands of digits
    (which Python refuses past 4,300)."""
    digits = integer.lstrip("+-").lstrip("0")
    if not digits:
        return True  # 0, -0, +000
    return not integer.startswith("-") and len(digits) <= len(str(top)) and int(digits) <= top
