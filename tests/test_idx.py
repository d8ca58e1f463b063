"""IDX reading and writing: round trips, every kind of damage, and the real MNIST test files."""
import gzip
import re
import os
import threading

import numpy as np
import pytest

from scratchnn.data import idx
from scratchnn.data.idx import read_idx, read_idx_pair, write_idx
from scratchnn.errors import DataError, ShapeError

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


def idx_bytes(code: int, shape, payload: bytes | None = None) -> bytes:
    """A raw IDX file by hand: 00 00, type code, ndim, big-endian uint32 sizes, then the data."""
    header = bytes([0, 0, code, len(shape)]) + np.asarray(shape, ">u4").tobytes()
    return header + (bytes(int(np.prod(shape))) if payload is None else payload)


def assert_data_error(path, *words):
    """read_idx(path) fails with ONE line naming the file and every word given."""
    with pytest.raises(DataError) as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message, message
    for word in words:
        assert word in message, message
    return message


@pytest.mark.parametrize("suffix", [".gz", ""])
@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip_every_dtype(tmp_path, dtype, suffix):
    rng = np.random.default_rng(0)
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
    array = (rng.integers(info.min, info.max, (3, 4, 5), endpoint=True, dtype=dtype) if info
             else rng.standard_normal((3, 4, 5)).astype(dtype))
    path = write_idx(tmp_path / f"a.idx{suffix}", array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".gz")
    back = read_idx(path)
    assert back.dtype == dtype and back.dtype.isnative and back.shape == (3, 4, 5)
    np.testing.assert_array_equal(back, array)
    assert back.flags.writeable
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left behind


def test_one_dimension_and_big_endian_on_disk(tmp_path):
    path = write_idx(tmp_path / "labels", np.array([1, 258], np.int16))
    assert path.read_bytes() == bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 0, 1, 1, 2])
    np.testing.assert_array_equal(read_idx(path), [1, 258])


def test_gzip_is_detected_by_magic_bytes_not_name(tmp_path):
    array = np.arange(6, dtype=np.uint8).reshape(2, 3)
    gz_named_raw = tmp_path / "raw-but-named.gz"
    gz_named_raw.write_bytes(idx_bytes(0x08, (2, 3), array.tobytes()))
    raw_named_gz = tmp_path / "gzipped-but-named.idx"
    raw_named_gz.write_bytes(gzip.compress(idx_bytes(0x08, (2, 3), array.tobytes())))
    np.testing.assert_array_equal(read_idx(gz_named_raw), array)
    np.testing.assert_array_equal(read_idx(raw_named_gz), array)


@pytest.mark.parametrize("dtype", [np.int64, np.bool_, np.complex64, np.uint16])
def test_write_rejects_unsupported_dtypes(tmp_path, dtype):
    with pytest.raises(ShapeError, match="cannot write dtype"):
        write_idx(tmp_path / "x.idx", np.zeros(3, dtype))
    assert not list(tmp_path.iterdir())


def test_write_rejects_a_scalar(tmp_path):
    with pytest.raises(ShapeError, match="1 to 32 dimensions"):
        write_idx(tmp_path / "x.idx", np.uint8(3))


def test_missing_file(tmp_path):
    assert_data_error(tmp_path / "nope-idx3-ubyte.gz", "no such file")


def test_bad_magic(tmp_path):
    path = tmp_path / "bad.idx"
    path.write_bytes(b"\x01\x02" + idx_bytes(0x08, (3,))[2:])
    assert_data_error(path, "not an IDX file", "01 02")


def test_bad_type_code(tmp_path):
    path = tmp_path / "bad.idx"
    path.write_bytes(idx_bytes(0x07, (3,)))
    assert_data_error(path, "unknown IDX type code 0x07")


def test_zero_dimensions(tmp_path):
    path = tmp_path / "bad.idx"
    path.write_bytes(bytes([0, 0, 0x08, 0]))
    assert_data_error(path, "0 dimensions")


@pytest.mark.parametrize("ndim", [33, 70, 255])
def test_more_dimensions_than_numpy_holds(tmp_path, ndim):
    """The audit's 1 KB file of 70 dimensions, each of size 1: a ValueError traceback from reshape."""
    path = tmp_path / "bad.idx"
    path.write_bytes(idx_bytes(0x08, (1,) * ndim))
    assert_data_error(path, f"declares {ndim} dimensions (expected 1 to 32")


@pytest.mark.parametrize("shape", [(200, 0, 0), (0, 28, 28), (0,), (5, 28, 0)])
@pytest.mark.parametrize("suffix", [".gz", ""])
def test_a_size_of_zero_is_refused(tmp_path, shape, suffix):
    """(200, 0, 0) images once reached the model and died in he_normal with ZeroDivisionError."""
    path = tmp_path / f"images{suffix}"
    data = idx_bytes(0x08, shape)
    path.write_bytes(gzip.compress(data) if suffix else data)
    assert_data_error(path, f"shape {shape}", "holds no data")


def test_a_size_of_zero_is_refused_for_a_pair(tmp_path):
    images = write_idx(tmp_path / "images.gz", np.zeros((200, 0, 0), np.uint8))
    labels = write_idx(tmp_path / "labels.gz", np.zeros(200, np.uint8))
    with pytest.raises(DataError, match="images.gz: IDX header declares shape \\(200, 0, 0\\)"):
        read_idx_pair(images, labels)


@pytest.mark.parametrize("suffix", [".gz", ""])
def test_a_header_promising_more_than_the_cap_is_refused_before_reading(tmp_path, monkeypatch, suffix):
    """The cap is checked on the header alone: the data (all there) is never read nor allocated."""
    monkeypatch.setattr(idx, "MAX_DATA_BYTES", 1000)
    path = tmp_path / f"images{suffix}"
    data = idx_bytes(0x0B, (10, 7, 8), bytes(1120))  # 560 int16 values
    path.write_bytes(gzip.compress(data) if suffix else data)
    assert_data_error(path, "shape (10, 7, 8)", "1,120 bytes of data", "more than the 1,000")
    monkeypatch.setattr(idx, "MAX_DATA_BYTES", 1120)
    assert read_idx(path).shape == (10, 7, 8)


def test_the_default_cap_holds_emnist_byclass_nearly_twice(tmp_path):
    path = tmp_path / "huge-idx3-ubyte"
    path.write_bytes(idx_bytes(0x08, (1_300_000, 28, 28), b""))  # EMNIST ByClass has 697,932 training images
    assert_data_error(path, "truncated: header promises 1019200000 bytes", "file has 0")
    path.write_bytes(idx_bytes(0x08, (2_000_000, 28, 28), b""))
    assert_data_error(path, "1,568,000,000 bytes of data", "more than the 1,073,741,824")


def test_trailing_bytes_are_counted_up_to_a_bound(tmp_path):
    path = tmp_path / "labels.idx.gz"
    path.write_bytes(gzip.compress(idx_bytes(0x08, (5,)) + bytes(3 << 20)))
    assert_data_error(path, "more than 1048576 unexpected trailing bytes")


@pytest.mark.parametrize("data", [b"", b"\x00\x00"])
def test_too_short_for_any_header(tmp_path, data):
    path = tmp_path / "short.idx"
    path.write_bytes(data)
    assert_data_error(path, "too short", f"{len(data)} bytes")


def test_truncated_header(tmp_path):
    path = tmp_path / "bad.idx.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 0x08, 3]) + b"\x00\x00\x00\x0a\x00\x00"))
    assert_data_error(path, "truncated header", "need 16 bytes", "has 10")


def test_truncated_data_says_how_much_is_missing(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(0x08, (60000, 28, 28), bytes(1000))))
    assert_data_error(path, "truncated: header promises 47040000 bytes", "file has 1000")


def test_truncated_data_counts_bytes_not_items(tmp_path):
    path = tmp_path / "floats.idx"
    path.write_bytes(idx_bytes(0x0D, (4,), bytes(12)))  # 3 float32 of the 4 promised
    assert_data_error(path, "promises 16 bytes", "file has 12")


def test_trailing_bytes(tmp_path):
    path = tmp_path / "labels.idx"
    path.write_bytes(idx_bytes(0x08, (5,)) + b"xyz")
    assert_data_error(path, "3 unexpected trailing bytes")


def test_corrupt_gzip_crc(tmp_path):
    data = bytearray(gzip.compress(idx_bytes(0x08, (100,), bytes(range(100)))))
    data[-8] ^= 0xFF  # the CRC-32 in the gzip trailer
    path = tmp_path / "crc.gz"
    path.write_bytes(bytes(data))
    assert_data_error(path, "corrupt gzip")


def test_cut_off_gzip_stream(tmp_path):
    """A download cut in the middle: the header inflates fine, the data ends without gzip's trailer."""
    data = gzip.compress(idx_bytes(0x08, (5000,), np.random.default_rng(0).bytes(5000)))
    path = tmp_path / "cut.gz"
    path.write_bytes(data[:len(data) // 2])
    assert_data_error(path, "corrupt gzip")


def test_folder_instead_of_file(tmp_path):
    assert_data_error(tmp_path, "a folder, not a file")


# --- pairs ---------------------------------------------------------------------------------

def write_pair(folder, images, labels):
    return write_idx(folder / "images.gz", images), write_idx(folder / "labels.gz", labels)


def test_pair_round_trip(tmp_path):
    images = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    labels = np.array([0, 9, 3], np.uint8)
    x, y = read_idx_pair(*write_pair(tmp_path, images, labels))
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)


@pytest.mark.parametrize("images, labels, words", [
    (np.zeros((3, 784), np.uint8), np.zeros(3, np.uint8), ["images.gz", "(N, H, W)", "(3, 784)",
                                                           "images.reshape(-1, 28, 28)"]),
    (np.full((3, 2, 2), 0.5, np.float32), np.zeros(3, np.uint8), ["images.gz", "float32", "0.5..0.5",
                                                                  "scale 0..1 values by 255 and round them"]),
    (np.zeros((3, 2, 2), np.float32) + [[0, np.nan]], np.zeros(3, np.uint8), ["NaN or infinite"]),
    ((np.zeros((3, 2, 2)) + [[0, 300]]).astype(np.int16), np.zeros(3, np.uint8),
     ["run 0..300", "(pixel * 255 / 300)"]),  # the review: 10-bit data is not 16-bit (// 257 made it 0..1)
    ((np.zeros((3, 2, 2)) + [[0, 65535]]).astype(np.int32), np.zeros(3, np.uint8), ["pixel // 257"]),
    (np.zeros((3, 2, 2), np.float32) + [[0.5, 255.5]], np.zeros(3, np.uint8), ["run 0.5..255.5", "pixel * 255 /"]),
    (np.zeros((3, 2, 2), np.float32) + [[0.5, 254.5]], np.zeros(3, np.uint8), ["round them to whole numbers"]),
    (np.full((3, 2, 2), -2**31, np.int32), np.zeros(3, np.uint8), ["run -2147483648..-2147483648"]),  # not 2.1e+09
    (np.zeros((3, 1, 2, 2), np.float32) + 0.5, np.zeros(3, np.uint8), ["got float32 (3, 1, 2, 2)"]),  # as saved
    (np.zeros((3, 1, 28, 1), np.uint8), np.zeros(3, np.uint8), ["pass images of shape (N, H, W) (or with one"]),
    (np.zeros((3, 28, 1, 28), np.uint8), np.zeros(3, np.uint8), ["pass images of shape (N, H, W) (or with one"]),
    (np.zeros((3, 2, 2), np.int8) - 1, np.zeros(3, np.uint8), ["run -1..-1", "so the darkest is 0"]),
    (np.zeros(3, np.uint8), np.zeros(3, np.uint8), ["images.gz", "as a labels file holds"]),
    (np.zeros((3, 2, 2), np.uint8), np.zeros((3, 2), np.uint8), ["labels.gz", "(N,)", "one number an image"]),
    (np.zeros((3, 2, 2), np.uint8), np.array([0, -1, 2], np.int32), ["labels.gz", "int32", "run -1..2"]),
    (np.zeros((3, 2, 2), np.uint8), np.array([0, 1.5, 2]), ["labels.gz", "whole numbers"]),
    (np.zeros((3, 2, 2), np.uint8), np.zeros(4, np.uint8), ["3 images", "4 labels", "belong together"]),
    (np.zeros((4, 2, 2), np.uint8), np.array([1, 2, 10, 11], np.uint8), ["label 10 at index 2", "0..9"]),
])
def test_pair_mismatches(tmp_path, images, labels, words):
    with pytest.raises(DataError) as info:
        read_idx_pair(*write_pair(tmp_path, images, labels))
    for word in words:
        assert word in str(info.value), str(info.value)


def test_real_mnist_test_files(shared_dir):
    folder = shared_dir / "datasets" / "mnist"
    images, labels = read_idx_pair(folder / "t10k-images-idx3-ubyte.gz", folder / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.uint8
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # the well-known first ten
    assert np.bincount(labels).tolist()[1] == 1135


@pytest.mark.parametrize("gzipped", [True, False])
def test_a_pipe_is_read_like_a_file(tmp_path, gzipped):
    """`--images <(zcat images.gz)` hands over a pipe: no seek, no size."""
    array = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    data = idx_bytes(0x0B, array.shape, array.astype(">i2").tobytes())
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_bytes, args=(gzip.compress(data) if gzipped else data,))
    writer.start()
    try:
        np.testing.assert_array_equal(read_idx(fifo), array)
    finally:
        writer.join(5)


def test_the_same_numbers_in_another_form_are_read_as_meant(tmp_path):
    """The shapes audit: int16 pixels of 0..255 were told to 'scale 0..1 values by 255', a PyTorch
    (N, 1, H, W) or Keras (N, H, W, 1) grey file to 'save the images as grey', labels of int32 or
    (N, 1) to 'pass a labels file': each is read, nothing lost."""
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (4, 5, 6)).astype(np.uint8), np.array([3, 0, 9, 1], np.uint8)
    for stored, stored_labels in [(images.astype(np.int16), labels.astype(np.int32)),
                                  (images[:, None], labels[:, None]), (images[..., None], labels.astype(np.float64)),
                                  (images.astype(np.float32), labels)]:
        x, y = read_idx_pair(*write_pair(tmp_path, stored, stored_labels))
        assert x.dtype == np.uint8 and y.dtype == np.uint8
        np.testing.assert_array_equal(x, images)
        np.testing.assert_array_equal(y, labels)


def test_images_of_floats_or_colours_are_told_how_to_save_them(tmp_path):
    """The own-dataset audit: both were told to 'pass an images file', which they are."""
    labels = write_idx(tmp_path / "labels", np.zeros(3, np.uint8))
    for images, fix in [(np.full((3, 8, 8), 0.5, np.float32), "scale 0..1 values by 255 and round them"),
                        (np.zeros((3, 8, 8, 3), np.uint8), "colour images? save them as grey: one 0..255 value")]:
        path = write_idx(tmp_path / "images", images)
        with pytest.raises(DataError, match=re.escape(fix)):
            read_idx_pair(path, labels)


def test_every_value_is_checked_not_only_the_first_block(tmp_path, monkeypatch):
    """Values are checked in blocks (the temporaries of a 1 GiB file of floats stay small): a
    300 in the last block would have wrapped to 44 unseen."""
    from scratchnn.data import idx

    monkeypatch.setattr(idx, "CHECKED_AT_ONCE", 10)
    images = np.zeros((3, 4, 4), np.int16)
    images[-1, -1, -1] = 300
    with pytest.raises(DataError, match=r"the pixels run 0\.\.300"):
        read_idx_pair(*write_pair(tmp_path, images, np.zeros(3, np.uint8)))
