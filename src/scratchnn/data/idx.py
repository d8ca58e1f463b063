"""IDX files, the format MNIST and Fashion-MNIST ship in (gzipped or raw).

Layout, big-endian: two zero bytes, a type code, the number of dimensions d, d uint32 sizes,
then the values in C order. The reader checks every part and that the data is exactly as long
as the header promises, so a damaged download is an error, never a silent short read.

Every file may be hostile, so nothing is allocated or decompressed on the header's word
alone: the header is read and checked first (every size > 0, at most ``MAX_DATA_BYTES`` of
data), then exactly the promised bytes are read from a stream. A gzip member that inflates
beyond that (a "gzip bomb") stops at the first byte too many, and a raw file's size is
compared with the header before anything is read.
"""
from __future__ import annotations

import contextlib
import gzip
import math
import os
import stat
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import DataError, ShapeError
from ..files import atomic_write_bytes, why_unreadable

# type code -> big-endian dtype stored in the file
TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
         0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
CODES = {dtype.newbyteorder("="): code for code, dtype in TYPES.items()}  # native dtype -> code
MAX_DIMS = 32  # NumPy 1 allows 32 dimensions, NumPy 2 64; the IDX header's byte would allow 255
GZIP_MAGIC = b"\x1f\x8b"
GZIP_LEVEL = 6  # zlib's usual trade-off: level 9 (gzip's default) is ~5x slower for ~4% smaller files
# The most data one IDX file may hold, and so what a hostile one can cost: 1 GiB is 23x MNIST's
# 60,000 training images (47 MB) and nearly 2x EMNIST ByClass's 697,932 letters and digits (547 MB), the
# largest set in IDX (512 MiB, the bound until labels past 9 were read, refused it).
MAX_DATA_BYTES = 1 << 30
BLOCK = 1 << 20  # bytes per read: memory beyond the result stays this small
SHOWN_TRAILING = 1 << 20  # trailing bytes counted exactly; beyond this the message says "more than"
CORRUPT_GZIP = (OSError, EOFError, zlib.error)  # bad CRC or header, cut-off stream, bad deflate data


@contextlib.contextmanager
def open_data(path) -> Iterator[BinaryIO]:
    """A binary stream of the file, un-gzipped on the fly when it starts with the gzip magic 1f 8b
    (whatever its name). Reading it never inflates more than the caller asks for, and every
    failure (missing file, corrupt gzip) is a one-line DataError naming the file."""
    path = Path(path)
    try:
        raw = open(path, "rb")  # noqa: SIM115 (closed below, after the caller is done)
    except OSError as error:
        raise DataError(f"{path}: {why_unreadable(error)}; check the path") from None
    gzipped = False
    with raw:
        try:
            gzipped = raw.peek(2)[:2] == GZIP_MAGIC  # peek, not read + seek: a pipe (<(zcat f)) cannot seek
            stream = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw
            yield stream
        except CORRUPT_GZIP as error:
            if not gzipped:
                raise DataError(f"{path}: cannot be read ({getattr(error, 'strerror', None) or error})"
                                ) from None
            raise DataError(f"{path}: corrupt gzip data ({error}); download the file again") from None


def read_idx(path) -> np.ndarray:
    """Read an IDX file (gzipped or raw) into a native-endian array of the declared shape."""
    path = Path(path)
    with open_data(path) as stream:
        dtype, shape, header = _read_header(path, stream)
        expected = math.prod(shape) * dtype.itemsize
        if not isinstance(stream, gzip.GzipFile):
            _check_raw_size(path, stream, header, expected, shape)
        try:
            data = _read_data(stream, expected)  # the header is checked: at most MAX_DATA_BYTES
        except MemoryError:
            raise DataError(f"{path}: not enough memory for {expected:,} bytes of data (shape {_show(shape)}); "
                            "free some memory or use a smaller file") from None
        if len(data) < expected:
            raise _truncated(path, expected, len(data), shape)
        trailing = len(stream.read(SHOWN_TRAILING + 1))  # bounded, and at the end it checks the gzip CRC
        if trailing:
            count = f"more than {SHOWN_TRAILING}" if trailing > SHOWN_TRAILING else str(trailing)
            raise DataError(f"{path}: has {count} unexpected trailing bytes after the data for "
                            f"shape {_show(shape)}; the file is damaged, download it again")
    values = np.frombuffer(data, dtype).reshape(shape)  # writable: a view of the bytearray, no copy
    if dtype.byteorder == ">":  # in place, to the machine's byte order
        values = values.byteswap(inplace=True).view(dtype.newbyteorder("="))
    return values.view(dtype.newbyteorder("="))


def _read_header(path: Path, stream: BinaryIO) -> tuple[np.dtype, tuple[int, ...], int]:
    """(file dtype, shape, header length in bytes), every part checked before anything is sized."""
    start = stream.read(4)
    if len(start) < 4:
        raise DataError(f"{path}: too short to be an IDX file ({len(start)} bytes, the header alone "
                        "needs at least 8); download the file again")
    if start[:2] != b"\x00\x00":
        raise DataError(f"{path}: not an IDX file (starts with {start.hex(' ')}, expected 00 00 "
                        "then a type code); pass an MNIST-style images or labels file")
    code, ndim = start[2], start[3]
    if code not in TYPES:
        known = ", ".join(f"0x{c:02X}" for c in TYPES)
        raise DataError(f"{path}: unknown IDX type code 0x{code:02X} (expected one of {known}); "
                        "the file is damaged or not IDX")
    if not 1 <= ndim <= MAX_DIMS:
        raise DataError(f"{path}: IDX header declares {ndim} dimensions (expected 1 to {MAX_DIMS}; MNIST's files "
                        "have 1 or 3); the file is damaged")
    header = 4 + 4 * ndim  # at most 1,024 bytes: ndim is one byte
    sizes = stream.read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise DataError(f"{path}: truncated header: {ndim} dimensions need {header} bytes, file has "
                        f"{4 + len(sizes)}; download the file again")
    shape = tuple(int(s) for s in np.frombuffer(sizes, ">u4"))
    if 0 in shape:
        raise DataError(f"{path}: IDX header declares shape {_show(shape)}, which holds no data (every size "
                        "must be at least 1); the file is damaged or empty")
    dtype = TYPES[code]
    # NOTE: math.prod on Python ints; np.prod would overflow silently on a hostile header
    expected = math.prod(shape) * dtype.itemsize
    if expected > MAX_DATA_BYTES:
        raise DataError(f"{path}: IDX header declares shape {_show(shape)}, {expected:,} bytes of data, more "
                        f"than the {MAX_DATA_BYTES:,} scratchnn reads from one file; the file is damaged "
                        "or not a dataset scratchnn can hold")
    return dtype, shape, header


def _check_raw_size(path: Path, stream: BinaryIO, header: int, expected: int, shape) -> None:
    """Compare an uncompressed file's size with the header's promise before reading the data
    (a pipe has no size: its stream is bounded by the reads alone)."""
    status = os.fstat(stream.fileno())
    found = status.st_size - header
    if stat.S_ISREG(status.st_mode) and found < expected:
        raise _truncated(path, expected, found, shape)


def _truncated(path: Path, expected: int, found: int, shape) -> DataError:
    return DataError(f"{path}: truncated: header promises {expected} bytes of data for shape {_show(shape)}, "
                     f"file has {found}; download the file again")


def _show(shape: tuple[int, ...]) -> str:
    """The shape for a one-line message: at most 6 sizes (a header may declare 255)."""
    if len(shape) <= 6:
        return str(shape)
    return f"({', '.join(map(str, shape[:5]))}, ... {len(shape)} sizes)"


def _read_data(stream: BinaryIO, expected: int) -> bytearray:
    """Up to ``expected`` bytes, block by block: memory grows with the bytes that arrive, never
    on the header's word alone (a 40-byte .gz may promise 500 MB and hold 10)."""
    data = bytearray()
    while len(data) < expected and (block := stream.read(min(BLOCK, expected - len(data)))):
        data += block
    return data


def write_idx(path, array: np.ndarray) -> Path:
    """Write ``array`` (any shape, 1 to MAX_DIMS dimensions) as IDX, gzipped when the name ends in .gz.

    Supported dtypes: uint8, int8, int16, int32, float32, float64. The write is atomic.
    """
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in CODES:
        raise ShapeError(f"cannot write dtype {array.dtype} as IDX; convert to one of "
                         f"{', '.join(str(d) for d in CODES)}")
    if not 1 <= array.ndim <= MAX_DIMS:
        raise ShapeError(f"IDX files here have 1 to {MAX_DIMS} dimensions, got an array of shape {array.shape}")
    if max(array.shape) > 0xFFFFFFFF:
        raise ShapeError(f"IDX sizes are uint32; shape {array.shape} is too large")
    code = CODES[native]
    data = (bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
            + np.ascontiguousarray(array, TYPES[code]).tobytes())
    path = Path(path)
    if path.name.endswith(".gz"):
        data = gzip.compress(data, GZIP_LEVEL, mtime=0)  # mtime=0: same array, same bytes
    return atomic_write_bytes(path, data)


def read_idx_pair(images_path, labels_path, num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (N, H, W) and labels uint8 (N,) in 0..num_classes-1 from two matching IDX files."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        fix = ("pass an images file (...-images-idx3-ubyte)" if images.ndim < 3 else
               "save the images as grey: one 0..255 value a pixel, (N, H, W)" if images.ndim == 4 else
               "save the pixels as integers 0..255 (uint8): scale 0..1 values by 255 and round them"
               if images.ndim == 3 else "pass images of shape (N, H, W)")
        raise DataError(f"{images_path}: expected uint8 images of shape (N, H, W), got {images.dtype} "
                        f"{images.shape}; {fix}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DataError(f"{labels_path}: expected uint8 labels of shape (N,), got {labels.dtype} "
                        f"{labels.shape}; pass a labels file (...-labels-idx1-ubyte)")
    if len(images) != len(labels):
        raise DataError(f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} "
                        "labels; pass the two files that belong together")
    bad = np.flatnonzero(labels >= num_classes)
    if bad.size:
        raise DataError(f"{labels_path}: label {labels[bad[0]]} at index {bad[0]} is outside "
                        f"0..{num_classes - 1}; the file is damaged or not a labels file for "
                        f"{num_classes} classes")
    return images, labels
