"""Kaggle "Digit Recognizer" CSV files: ``label,pixel0,...,pixel783``, one image per line.

The training file has the label column, the test file does not; either may be gzipped and
either may lack the header line. Every value is checked, and an error names the line of the
file it is on.
"""
from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np

from ..errors import DataError, ShapeError
from ..files import atomic_write_bytes
from .idx import GZIP_LEVEL, read_bytes

SIDE = 28
PIXELS = SIDE * SIDE
HEADER_WITH_LABEL = ["label"] + [f"pixel{i}" for i in range(PIXELS)]
HEADER_WITHOUT_LABEL = HEADER_WITH_LABEL[1:]
INTEGER = re.compile(r"[+-]?[0-9]+")  # what NumPy's loadtxt accepts as an integer (no "1_0", no "1.0")
NUMBERS = [str(value) for value in range(256)]
CHUNK = 1000  # lines per loadtxt call when hunting for the bad line


def read_kaggle_csv(path) -> tuple[np.ndarray, np.ndarray | None]:
    """Images uint8 (N, 28, 28) and labels uint8 (N,), or None when the file has no label column.

    The header is optional: without one, a first line of 785 integers means label + pixels,
    784 integers means pixels only. Blank lines are skipped; CRLF line endings are fine.
    """
    path = Path(path)
    try:
        text = read_bytes(path).decode("utf-8-sig")  # -sig: drop the BOM Excel writes
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not a text CSV file ({error.reason} at byte {error.start}); "
                        "pass a Kaggle Digit Recognizer CSV") from None
    lines = text.replace("\r\n", "\n").split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise DataError(f"{path}: empty file; expected a header 'label,pixel0,...,pixel783' and one "
                        "image per line")
    has_label, start = _read_header(path, lines[first], first + 1)
    rows = [line for line in lines[start:] if line.strip()]
    if not rows:
        raise DataError(f"{path}: no images after the header on line {first + 1}")
    values = _parse(path, lines, start, rows, has_label)
    images = values[:, has_label:].reshape(-1, SIDE, SIDE)
    return np.ascontiguousarray(images), (values[:, 0].copy() if has_label else None)


def _read_header(path: Path, line: str, number: int) -> tuple[bool, int]:
    """(has_label, index of the first data line) from the first non-blank line (1-based ``number``)."""
    fields = [field.strip().strip('"') for field in line.split(",")]
    if fields == HEADER_WITH_LABEL:
        return True, number
    if fields == HEADER_WITHOUT_LABEL:
        return False, number
    if all(INTEGER.fullmatch(f) for f in fields) and len(fields) in (PIXELS, PIXELS + 1):
        return len(fields) == PIXELS + 1, number - 1  # no header: this line is the first image
    shown = ",".join(fields[:3]) + (",..." if len(fields) > 3 else "")
    raise DataError(f"{path}: line {number}: header must be 'label,pixel0,...,pixel783' (train) or "
                    f"'pixel0,...,pixel783' (test), or the line must hold 785 or 784 integers; "
                    f"got '{shown}' ({len(fields)} columns)")


def _parse(path: Path, lines: list[str], start: int, rows: list[str], has_label: bool) -> np.ndarray:
    """uint8 (N, columns) from the non-blank data ``rows``: NumPy's C parser on everything at once.

    loadtxt with dtype uint8 rejects anything that is not an integer in 0..255, so one call
    checks the whole file; only when it (or the label range) fails do we rescan to name the line.
    """
    columns = PIXELS + has_label
    values = _fast_parse(rows, columns)
    if values is None:
        _scan(path, lines, start, columns)
        raise DataError(f"{path}: could not parse the file as comma-separated integers")  # not reached
    return values


def _fast_parse(rows: list[str], columns: int) -> np.ndarray | None:
    """uint8 (N, columns), or None if any row is malformed or any label is above 9."""
    try:
        values = np.loadtxt(rows, delimiter=",", dtype=np.uint8, comments=None, ndmin=2)
    except ValueError:
        return None
    if values.shape[1] != columns or (columns > PIXELS and values[:, 0].max(initial=0) > 9):
        return None
    return values


def _scan(path: Path, lines: list[str], start: int, columns: int) -> None:
    """Raise a DataError naming the first bad line; chunks the fast parser accepts are skipped."""
    for begin in range(start, len(lines), CHUNK):
        chunk = [line for line in lines[begin:begin + CHUNK] if line.strip()]
        if not chunk or _fast_parse(chunk, columns) is not None:
            continue
        for number, line in enumerate(lines[begin:begin + CHUNK], begin + 1):
            if line.strip():
                _check_line(path, number, line, columns)


def _check_line(path: Path, number: int, line: str, columns: int) -> None:
    """Raise a DataError if line ``number`` (1-based) is not ``columns`` integers in range."""
    fields = line.split(",")
    where = f"{path}: line {number}"
    if len(fields) != columns:
        kind = "label + 784 pixels" if columns > PIXELS else "784 pixels"
        raise DataError(f"{where}: expected {columns} comma-separated values ({kind}), got {len(fields)}")
    for column, field in enumerate(fields):
        name = "label" if columns > PIXELS and column == 0 else f"pixel{column - (columns > PIXELS)}"
        text = field.strip()
        if not INTEGER.fullmatch(text):
            raise DataError(f"{where}: {name} = {text!r} is not an integer")
        value = int(text)
        if name == "label" and not 0 <= value <= 9:
            raise DataError(f"{where}: label {value} is outside 0..9")
        if name != "label" and not 0 <= value <= 255:
            raise DataError(f"{where}: {name} = {value} is outside 0..255")


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
        _check_integers(labels, 9, "labels")
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
