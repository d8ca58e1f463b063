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
            raise DataError(f"{path}: corrupt gzip data ({error}); download or copy the file again (it was cut "
                            "short or damaged on the way)") from None


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
                        "needs at least 8); download or copy the file again (it was cut short or damaged on the way)")
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
                        f"{4 + len(sizes)}; download or copy the file again (it was cut short or damaged on the way)")
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
                     f"file has {found}; download or copy the file again (it was cut short or damaged on the way)")


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
    """Images uint8 (N, H, W) and labels uint8 (N,) in 0..num_classes-1 from two matching IDX files.

    Files that hold the same numbers in another form are read as they are meant, losing nothing:
    integers of a wider type (or whole floats) within 0..255, images with a channel axis of one
    ((N, 1, H, W) as PyTorch keeps them, (N, H, W, 1) as Keras does), labels of shape (N, 1).
    Anything else is a DataError saying how to save it."""
    images = _as_images(read_idx(images_path), images_path)
    labels = _as_labels(read_idx(labels_path), labels_path)
    if len(images) != len(labels):
        raise DataError(f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} "
                        "labels; pass the two files that belong together")
    bad = np.flatnonzero(labels >= num_classes)
    if bad.size:
        raise DataError(f"{labels_path}: label {labels[bad[0]]} at index {bad[0]} is outside "
                        f"0..{num_classes - 1}; the file is damaged or not a labels file for "
                        f"{num_classes} classes")
    return images, labels


CHECKED_AT_ONCE = 1 << 20  # values: _bytes_of's temporary arrays stay small for a 1 GiB file of floats


def _bytes_of(array: np.ndarray) -> np.ndarray | None:
    """``array`` as uint8 when every value is a whole number in 0..255, else None."""
    if array.dtype == np.uint8:
        return array
    flat = array.reshape(-1)
    for start in range(0, flat.size, CHECKED_AT_ONCE):
        part = flat[start:start + CHECKED_AT_ONCE]
        if array.dtype.kind == "f" and not (np.all(np.isfinite(part)) and np.all(part == np.round(part))):
            return None
        if part.min() < 0 or part.max() > 255:
            return None
    return array.astype(np.uint8)


def _as_images(array: np.ndarray, path) -> np.ndarray:
    """The images of an IDX file as uint8 (N, H, W) (see read_idx_pair), or a DataError saying how
    to save them."""
    got = f"got {array.dtype} {_show(array.shape)}"
    if array.ndim == 4 and array.shape[1] == 1 and array.shape[3] != 1:  # PyTorch's (N, 1, H, W): grey already
        array = array[:, 0]
    elif array.ndim == 4 and array.shape[3] == 1 and array.shape[1] != 1:  # Keras's (N, H, W, 1)
        array = array[..., 0]
    pixels = _bytes_of(array) if array.ndim == 3 else None
    if pixels is not None:
        return pixels
    if array.ndim == 1:
        fix = "this is one number an item, as a labels file holds: pass the images file (...-images-idx3-ubyte)"
    elif array.ndim == 2 and math.isqrt(array.shape[1]) ** 2 == array.shape[1]:
        side = math.isqrt(array.shape[1])
        fix = (f"these are flat rows of {array.shape[1]} pixels: save them as (N, H, W), e.g. "
               f"images.reshape(-1, {side}, {side}) for {side}x{side} images")
    elif array.ndim == 4 and {3, 4} & {array.shape[1], array.shape[3]}:  # RGB or RGBA, channels first or last
        fix = "colour images? save them as grey: one 0..255 value a pixel, (N, H, W)"
    elif array.ndim != 3:
        fix = "pass images of shape (N, H, W) (or with one channel: (N, 1, H, W), (N, H, W, 1))"
    elif array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        fix = "some pixels are NaN or infinite: save the pixels as integers 0..255"
    else:
        fix = f"the pixels run {_number(array.min())}..{_number(array.max())}: " + _scaling(array)
    raise DataError(f"{path}: expected images of shape (N, H, W) of integers 0..255, {got}; {fix}")


def _number(value) -> str:
    """A pixel value in a message: whole numbers in full (-2147483648, not -2.14748e+09)."""
    return str(int(value)) if float(value).is_integer() else f"{float(value):.6g}"


def _scaling(array: np.ndarray) -> str:
    """How to bring pixels of ``array`` (finite, not all whole numbers 0..255) into 0..255."""
    low, high = float(array.min()), float(array.max())
    if low < 0:
        return "shift and scale them so the darkest is 0 and the brightest 255, and save them as uint8"
    if array.dtype.kind == "f" and high <= 1:
        return "scale 0..1 values by 255 and round them, and save them as uint8"
    if high <= 255:
        return "round them to whole numbers, and save them as uint8"
    if array.dtype.kind in "iu" and 4096 <= high <= 65535:  # a 16-bit image's range
        return "16-bit pixels of 0..65535? scale them with pixel // 257, and save them as uint8"
    return f"scale them into 0..255 (pixel * 255 / {_number(high)}), round them, and save them as uint8"


def _as_labels(array: np.ndarray, path) -> np.ndarray:
    """The labels of an IDX file as uint8 (N,) (see read_idx_pair), or a DataError saying how to
    save them."""
    if array.ndim == 2 and array.shape[1] == 1:  # a column of labels
        array = array.reshape(-1)
    labels = _bytes_of(array) if array.ndim == 1 else None
    if labels is not None:
        return labels
    got = f"got {array.dtype} {_show(array.shape)}"
    if array.ndim != 1:
        fix = "pass a labels file (...-labels-idx1-ubyte): one number an image"
    elif array.dtype.kind == "f" and (not np.all(np.isfinite(array)) or np.any(array != np.round(array))):
        fix = "labels are whole numbers: number the classes 0, 1, 2..."
    else:
        fix = (f"the labels run {_number(array.min())}..{_number(array.max())}: number the classes 0, 1, 2... (at "
               "most 256 classes), and give their names with --class-names")
    raise DataError(f"{path}: expected labels of shape (N,) of integers 0..255, {got}; {fix}")

