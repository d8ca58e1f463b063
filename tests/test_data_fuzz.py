"""Hostile data files: the IDX and CSV readers on arbitrary bytes, on mutations of valid files,
and on gzip bombs. Whatever the input, a reader returns an array or raises one DataError line;
no other exception escapes, memory stays bounded and no call hangs.

The valid seeds are written by the project's own writers; the bombs are built in memory from
one compressed MiB repeated, so a 4 MB file inflates to 4 GiB without the test ever holding it.
"""
import gzip
import struct
import time
import tracemalloc
import zlib

import numpy as np
import pytest
from fuzzing import fuzz_examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scratchnn.data.idx import read_idx, write_idx
from scratchnn.data.kaggle_csv import read_kaggle_csv
from scratchnn.data.kaggle_write import write_kaggle_csv
from scratchnn.errors import DataError

pytestmark = pytest.mark.slow  # hypothesis and gzip bombs (10 to 20 s)

MiB = 1 << 20
PEAK = 32 * MiB  # memory a reader may take for a file of a few KB, whatever the file claims
BOMB_PEAK = 64 * MiB  # and for a 4 MB gzip bomb
HANG = 20.0  # seconds: a hang guard only (a bomb is refused in well under a second; see the report)
FUZZ = settings(max_examples=fuzz_examples(150), deadline=1000,  # ms: a generous hang guard
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def idx_seeds(folder):
    """Valid IDX files of every kind the readers meet, as bytes (raw and gzipped)."""
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (3, 4, 5), dtype=np.uint8), np.arange(7, dtype=np.uint8) % 10,
              rng.standard_normal((2, 3)).astype(np.float32), np.array([1, -258, 3], np.int16)]
    return [write_idx(folder / f"seed{i}{suffix}", array).read_bytes()
            for i, array in enumerate(arrays) for suffix in ("", ".gz")]


def csv_seeds(folder):
    """Valid Kaggle CSV files (with and without labels, with and without the header), as bytes."""
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (2, 28, 28), dtype=np.uint8), np.array([3, 9], np.uint8)
    train = write_kaggle_csv(folder / "train.csv", images, labels).read_bytes()
    test = write_kaggle_csv(folder / "test.csv", images).read_bytes()
    headless = train.split(b"\n", 1)[1]
    small = write_kaggle_csv(folder / "small.csv", images[:, :8, :8], labels).read_bytes()  # 8x8, the smallest side
    return [train, test, headless, gzip.compress(train, 1), train.replace(b"\n", b"\r\n"), small]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def seeds(folder):
    return {"idx": idx_seeds(folder), "csv": csv_seeds(folder)}


def assert_refused_or_read(reader, path, data: bytes, peak=PEAK):
    """``reader(path)`` on ``data``: a result or a one-line DataError naming the file, within ``peak``."""
    path.write_bytes(data)
    tracemalloc.start()
    try:
        reader(path)
    except DataError as error:  # anything else escapes and fails the test
        message = str(error)
        assert message.startswith(f"{path}: ") and "\n" not in message and len(message) < 600, message
    finally:
        used = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert used < peak, f"{reader.__name__} took {used / MiB:.1f} MiB for a {len(data)}-byte file"


@st.composite
def mutations(draw, seeds: list[bytes], idx: bool):
    """A valid seed changed 1 to 4 times: cut, bytes flipped, spliced from another seed, a header
    size inflated (IDX) or a long run inserted (CSV), wrapped in gzip or its gzip stream damaged."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["cut", "flip", "splice", "inflate", "gzip"]))
        position = draw(st.integers(0, len(data)))
        if kind == "cut":
            del data[position:]
        elif kind == "flip" and data:
            data[min(position, len(data) - 1)] ^= draw(st.integers(1, 255))
        elif kind == "splice":
            other = draw(st.sampled_from(seeds))
            start = draw(st.integers(0, len(other)))
            data[position:position + draw(st.integers(0, 64))] = other[start:start + draw(st.integers(0, 4096))]
        elif kind == "inflate" and idx and len(data) >= 8 and data[:2] == b"\0\0":
            dim = draw(st.integers(0, max(0, min(data[3], (len(data) - 8) // 4))))
            size = draw(st.sampled_from([0, 1, 2, 255, 70000, 1 << 24, 1 << 31, (1 << 32) - 1]))
            data[4 + 4 * dim:8 + 4 * dim] = struct.pack(">I", size)
        elif kind == "inflate" and not idx:
            data[position:position] = draw(st.sampled_from([b"0,", b"\n", b",", b"9", b" ", b"\r"])) * (
                draw(st.sampled_from([10, 1000, 40000])))
        elif kind == "gzip":
            data = bytearray(gzip.compress(bytes(data), 1, mtime=0))
    return bytes(data)


@FUZZ
@given(data=st.binary(max_size=3000), gzipped=st.booleans())
def test_idx_reader_on_arbitrary_bytes(folder, data, gzipped):
    assert_refused_or_read(read_idx, folder / "any.idx", gzip.compress(data, 1) if gzipped else data)


@FUZZ
@given(data=st.binary(max_size=3000), gzipped=st.booleans())
def test_csv_reader_on_arbitrary_bytes(folder, data, gzipped):
    assert_refused_or_read(read_kaggle_csv, folder / "any.csv", gzip.compress(data, 1) if gzipped else data)


@FUZZ
@given(text=st.text(st.sampled_from(list("0123456789,;\t\r\n \"+-.xlabelpix\ufeff")), max_size=4000))
def test_csv_reader_on_csv_like_text(folder, text):
    assert_refused_or_read(read_kaggle_csv, folder / "text.csv", text.encode())


@FUZZ
@given(data=st.data())
def test_idx_reader_on_mutated_files(folder, seeds, data):
    mutated = data.draw(mutations(seeds["idx"], idx=True))
    assert_refused_or_read(read_idx, folder / "mutated.idx", mutated)


@FUZZ
@given(data=st.data())
def test_csv_reader_on_mutated_files(folder, seeds, data):
    mutated = data.draw(mutations(seeds["csv"], idx=False))
    assert_refused_or_read(read_kaggle_csv, folder / "mutated.csv", mutated)


# --- gzip bombs ------------------------------------------------------------------------------

def gzip_bomb(head: bytes, unit: bytes, count: int) -> bytes:
    """A gzip file of ``head`` then ``count`` copies of ``unit`` (1 MiB), about 1,000 times smaller
    than what it inflates to.

    Each MiB is compressed once, ending in a full flush (byte-aligned, no history), so copies of
    those bytes chain into one valid deflate stream. The trailer's CRC is not computed (seconds
    for 4 GiB): only a reader that has already inflated everything could notice.
    """
    assert len(unit) == MiB
    squeeze = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate: the gzip framing is added below
    start = squeeze.compress(head) + squeeze.flush(zlib.Z_FULL_FLUSH)
    block = squeeze.compress(unit) + squeeze.flush(zlib.Z_FULL_FLUSH)
    end = squeeze.flush()
    size = (len(head) + count * MiB) & 0xFFFFFFFF
    # magic, deflate, no flags, mtime 0, no extra flags, OS unknown ... CRC-32 (not computed), size mod 2**32
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + start + block * count + end + struct.pack("<II", 0, size)


def idx_header(shape) -> bytes:
    return bytes([0, 0, 0x08, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)


CSV_HEADER = ("label," + ",".join(f"pixel{i}" for i in range(784)) + "\n").encode()
BOMBS = {  # name: (reader, head, unit of 1 MiB, words the error must hold); each inflates to 4 GiB
    "idx-trailing-zeros": (read_idx, idx_header((10, 28, 28)), bytes(MiB), "unexpected trailing bytes"),
    "idx-honest-header": (read_idx, idx_header((5_478_274, 28, 28)), bytes(MiB), "more than the"),
    "idx-header-within-cap": (read_idx, idx_header((20_000, 28, 28)), bytes(MiB), "unexpected trailing"),
    "csv-zeros": (read_kaggle_csv, CSV_HEADER, bytes(MiB), "line 2 is longer than"),
    "csv-one-line": (read_kaggle_csv, CSV_HEADER, b"0," * (MiB // 2), "line 2 holds more than 785 comma-separated values"),
    "csv-blank-lines": (read_kaggle_csv, CSV_HEADER, b"\n" * MiB, "blank lines"),
}


@pytest.mark.parametrize("name", BOMBS)
def test_a_gzip_bomb_is_refused_quickly_in_little_memory(folder, name):
    """4 MB files that inflate to 4 GiB once cost 3 GB of RSS and ended in MemoryError after 30 s."""
    reader, head, unit, words = BOMBS[name]
    path = folder / f"{name}.gz"
    path.write_bytes(gzip_bomb(head, unit, 4096))
    assert path.stat().st_size < 8 * MiB
    started = time.monotonic()
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=words):
            reader(path)
        used = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < HANG
    assert used < BOMB_PEAK, f"{name}: {used / MiB:.0f} MiB"


def test_the_bomb_builder_makes_valid_gzip():
    """The bombs are real gzip streams: a small one inflates to exactly its head and copies."""
    head, unit = idx_header((2, 3)), bytes(range(256)) * (MiB // 256)
    bomb = gzip_bomb(head, unit, 3)
    assert bomb[:2] == b"\x1f\x8b" and struct.unpack("<I", bomb[-4:])[0] == len(head) + 3 * MiB
    inflated = zlib.decompressobj(-15)  # the deflate stream between the 10-byte header and the trailer
    assert inflated.decompress(bomb[10:-8]) == head + unit * 3 and inflated.eof
