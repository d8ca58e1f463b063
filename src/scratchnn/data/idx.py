"""IDX files, the format MNIST and Fashion-MNIST ship in (gzipped or raw).

Layout, big-endian: two zero bytes, a type code, the number of dimensions d, d uint32 sizes,
then the values in C order. The reader checks every part and that the data is exactly as long
as the header promises, so a damaged download is an error, never a silent short read.
"""
from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError, ShapeError
from ..files import atomic_write_bytes

# type code -> big-endian dtype stored in the file
TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
         0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
CODES = {dtype.newbyteorder("="): code for code, dtype in TYPES.items()}  # native dtype -> code
GZIP_MAGIC = b"\x1f\x8b"
GZIP_LEVEL = 6  # zlib's usual trade-off: level 9 (gzip's default) is ~5x slower for ~4% smaller files


def read_bytes(path) -> bytes:
    """The file's bytes, un-gzipped when it starts with the gzip magic 1f 8b (whatever its name)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file; check the path") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read the file ({error.strerror or error})") from None
    if data[:2] != GZIP_MAGIC:
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as error:  # bad CRC, cut-off stream, garbage after it
        raise DataError(f"{path}: corrupt gzip data ({error}); download the file again") from None


def read_idx(path) -> np.ndarray:
    """Read an IDX file (gzipped or raw) into a native-endian array of the declared shape."""
    path = Path(path)
    data = read_bytes(path)
    if len(data) < 4:
        raise DataError(f"{path}: too short to be an IDX file ({len(data)} bytes, the header alone "
                        "needs at least 8); download the file again")
    if data[:2] != b"\x00\x00":
        raise DataError(f"{path}: not an IDX file (starts with {data[:4].hex(' ')}, expected 00 00 "
                        "then a type code); pass an MNIST-style images or labels file")
    code, ndim = data[2], data[3]
    if code not in TYPES:
        known = ", ".join(f"0x{c:02X}" for c in TYPES)
        raise DataError(f"{path}: unknown IDX type code 0x{code:02X} (expected one of {known}); "
                        "the file is damaged or not IDX")
    if ndim == 0:
        raise DataError(f"{path}: IDX header declares 0 dimensions (expected at least 1); "
                        "the file is damaged")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated header: {ndim} dimensions need {header} bytes, file has "
                        f"{len(data)}; download the file again")
    shape = tuple(int(s) for s in np.frombuffer(data, ">u4", ndim, offset=4))
    dtype = TYPES[code]
    # NOTE: math.prod on Python ints; np.prod would overflow silently on a hostile header
    expected = math.prod(shape) * dtype.itemsize
    found = len(data) - header
    if found < expected:
        raise DataError(f"{path}: truncated: header promises {expected} bytes of data for shape {shape}, "
                        f"file has {found}; download the file again")
    if found > expected:
        raise DataError(f"{path}: has {found - expected} unexpected trailing bytes after the data for "
                        f"shape {shape}; the file is damaged, download it again")
    # astype copies: the result is writable and owns its memory (frombuffer on bytes is read-only)
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path, array: np.ndarray) -> Path:
    """Write ``array`` (any shape, 1 to 255 dimensions) as IDX, gzipped when the name ends in .gz.

    Supported dtypes: uint8, int8, int16, int32, float32, float64. The write is atomic.
    """
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in CODES:
        raise ShapeError(f"cannot write dtype {array.dtype} as IDX; convert to one of "
                         f"{', '.join(str(d) for d in CODES)}")
    if not 1 <= array.ndim <= 255:
        raise ShapeError(f"IDX needs 1 to 255 dimensions, got an array of shape {array.shape}")
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
        raise DataError(f"{images_path}: expected uint8 images of shape (N, H, W), got {images.dtype} "
                        f"{images.shape}; pass an images file (...-images-idx3-ubyte)")
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
