"""A hostile zip archive (EMNIST's files come in one): whatever its bytes, ``unpack`` copies its
members or returns one line saying why not; no exception escapes, no half file stays, memory
stays bounded."""
import io
import struct
import tracemalloc
import zipfile

import pytest
from fuzzing import fuzz_examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scratchnn.data.archive import unpack

MEMBERS = {"gzip/a.gz": bytes(range(256)) * 40, "gzip/b.gz": b"labels" * 500}
FUZZ = settings(max_examples=fuzz_examples(200), deadline=2000,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def archive(method=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as zipped:
        for name, data in MEMBERS.items():
            zipped.writestr(name, data)
    return buffer.getvalue()


SEEDS = [archive(zipfile.ZIP_DEFLATED), archive(zipfile.ZIP_STORED), archive(zipfile.ZIP_BZIP2),
         archive(zipfile.ZIP_LZMA)]


@st.composite
def mutated(draw):
    """A valid archive cut, with bytes flipped, a size or method field rewritten, or spliced."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["cut", "flip", "field", "splice"]))
        at = draw(st.integers(0, len(data) - 1)) if data else 0
        if kind == "cut":
            del data[at:]
        elif kind == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "field" and len(data) > at + 4:  # a 2- or 4-byte header field: sizes, methods, flags
            width = draw(st.sampled_from([2, 4]))
            value = draw(st.sampled_from([0, 1, 8, 12, 14, 99, 0xFFFF, 0xFFFFFFFF]))
            data[at:at + width] = struct.pack("<H" if width == 2 else "<I", value & (0xFFFF if width == 2 else ~0))
        elif kind == "splice":
            other = draw(st.sampled_from(SEEDS))
            start = draw(st.integers(0, len(other)))
            data[at:at] = other[start:start + draw(st.integers(1, 500))]
    return bytes(data)


@FUZZ
@given(data=mutated())
def test_a_damaged_archive_is_unpacked_or_refused_in_one_line(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("zip")
    (folder / "gzip.zip").write_bytes(data)
    targets = {name: folder / "out" / name.split("/")[1] for name in MEMBERS}
    tracemalloc.start()
    try:
        problem = unpack(folder / "gzip.zip", targets, max_bytes=1 << 20)
    finally:
        used = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert used < 16 << 20, f"{used:,} bytes for a {len(data):,}-byte archive"
    if problem is None:
        assert all(path.read_bytes() == MEMBERS[name] for name, path in targets.items())  # the CRC held
    else:
        assert problem.startswith("gzip.zip") and "\n" not in problem and len(problem) < 400, problem
    out = folder / "out"
    assert not out.exists() or not [p for p in out.iterdir() if p.name.endswith(".part")]


@pytest.mark.parametrize("seed", range(len(SEEDS)))
def test_stored_and_deflated_members_are_unpacked_and_others_refused_in_one_line(tmp_path, seed):
    """bzip2 and LZMA members are decoded whole by zipfile: a damaged kilobyte of bzip2 took 30 MB."""
    (tmp_path / "gzip.zip").write_bytes(SEEDS[seed])
    targets = {name: tmp_path / name.split("/")[1] for name in MEMBERS}
    problem = unpack(tmp_path / "gzip.zip", targets, max_bytes=1 << 20)
    if seed < 2:  # deflated, stored
        assert problem is None
        assert all(path.read_bytes() == MEMBERS[name] for name, path in targets.items())
    else:
        assert problem.startswith("gzip.zip: gzip/a.gz: compression method ") and "only stored or deflated" in problem
        assert not any(path.exists() for path in targets.values())


def test_an_encrypted_member_is_refused_in_one_line(tmp_path):
    data = bytearray(SEEDS[1])
    for header in (b"PK\x03\x04", b"PK\x01\x02"):  # set the 'encrypted' flag in the local and central headers
        at = data.find(header)
        while at >= 0:
            flag = at + (6 if header == b"PK\x03\x04" else 8)
            data[flag] |= 1
            at = data.find(header, at + 4)
    (tmp_path / "gzip.zip").write_bytes(bytes(data))
    problem = unpack(tmp_path / "gzip.zip", {"gzip/a.gz": tmp_path / "a.gz"}, max_bytes=1 << 20)
    assert problem.startswith("gzip.zip cannot be unpacked, it is damaged") and "encrypted" in problem, problem
