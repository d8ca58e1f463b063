"""Fuzzing the model and checkpoint loaders with hypothesis (issue 14, item 8).

On arbitrary bytes and on mutations of valid files (truncated, bytes flipped, bytes spliced in,
the header length inflated, metadata values replaced by hostile ones and re-signed as an
attacker would), the loaders either succeed or raise the project's own error: no other
exception escapes, no call allocates more than a few MB, none runs for a second.
"""
import json
import time
import tracemalloc

import numpy as np
import pytest
from fuzzing import fuzz_examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from model_file_support import file_parts, tampered_bytes

from scratchnn import Dense, ReLU, Sequential
from scratchnn.errors import ScratchnnError
from scratchnn.io import load, save
from scratchnn.nn import BatchNorm1d, BatchNorm2d, Conv2D, Dropout, Flatten, MaxPool2D
from scratchnn.optim import Adam
from scratchnn.training.checkpoint import load_checkpoint, save_checkpoint
from scratchnn.training.fit import EpochResult

pytestmark = pytest.mark.slow  # hypothesis over hostile model files (about 15 s)

SECONDS = 10.0  # a hang guard, not a speed target: a load takes milliseconds (CI under load met 1.14 s)
PEAK_BYTES = 32 * 2**20  # the files are a few kB: anything near this was allocated from a lie
FUZZ = settings(max_examples=fuzz_examples(120), deadline=None,  # failures are kept in .hypothesis/ and replayed first
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A small CNN model file (both batch norms) and an MLP checkpoint, as bytes, plus a scratch path to write to."""
    folder = tmp_path_factory.mktemp("fuzz")
    cnn = Sequential([Conv2D(1, 2, 3, padding=1, rng=0), BatchNorm2d(2), ReLU(), MaxPool2D(2), Flatten(),
                      Dense(32, 6, rng=1), BatchNorm1d(6), Dropout(0.2), Dense(6, 3, rng=2)], input_shape=(1, 8, 8))
    model_path = save(cnn, folder / "model.safetensors", metadata={
        "config": {"lr": 0.1}, "classes": ["a", "b", "c"], "image_shape": [8, 8], "metrics": {"dev_accuracy": 0.5}})
    mlp = Sequential([Dense(4, 3, rng=0), ReLU(), Dense(3, 2, rng=1)])
    optimizer = Adam()
    optimizer.step(mlp.named_parameters())
    checkpoint_path = save_checkpoint(folder / "checkpoint.safetensors", model=mlp, optimizer=optimizer,
                                      generators={"order": np.random.default_rng(0)},
                                      history=[EpochResult(1, 0.5, 0.5, 0.5, 0.5, 0.1, 1.0)])
    return {"model": model_path.read_bytes(), "checkpoint": checkpoint_path.read_bytes(),
            "model_path": model_path, "checkpoint_path": checkpoint_path, "scratch": folder / "scratch.safetensors"}


def attempt(reader, path):
    """Run ``reader(path)``: success or a ScratchnnError, quickly and with little memory."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        reader(path)
    except ScratchnnError as error:
        message = str(error)
        assert message.startswith(str(path)) and "\n" not in message, message
    finally:
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert seconds < SECONDS, f"{reader.__name__} took {seconds:.2f} s"
    assert peak < PEAK_BYTES, f"{reader.__name__} allocated {peak / 2**20:.0f} MiB"


READERS = {"model": load, "checkpoint": load_checkpoint}


@FUZZ
@given(data=st.binary(max_size=4096))
def test_arbitrary_bytes(files, data):
    files["scratch"].write_bytes(data)
    attempt(load, files["scratch"])


@st.composite
def byte_mutations(draw, original: bytes) -> bytes:
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["truncate", "flip", "splice", "inflate", "overwrite"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "truncate":
            del data[at:]
        elif kind == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "splice":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "inflate":  # the 8-byte little-endian header length
            data[:8] = draw(st.integers(0, 2**64 - 1)).to_bytes(8, "little")
        else:
            data[at:at + 8] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


@FUZZ
@given(data=st.data(), kind=st.sampled_from(list(READERS)))
def test_byte_mutations_of_valid_files(files, data, kind):
    files["scratch"].write_bytes(data.draw(byte_mutations(files[kind])))
    attempt(READERS[kind], files["scratch"])


INTEGERS = st.one_of(st.integers(-10, 10), st.sampled_from([0, 10**9, 2**31, 2**63, 2**64 + 1, -(2**40), 4_194_305]),
                     st.integers())
SCALARS = st.one_of(st.none(), st.booleans(), INTEGERS, st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([512.7, 1e308, -0.0, "lots", "", "Dense", "he_normal", "PCG64"]), st.text(max_size=20))
HOSTILE = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                       max_leaves=12)


def paths(value, prefix=()):
    """Every path to a value inside nested dicts and lists."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*prefix, index))


@st.composite
def metadata_edits(draw, metadata: dict):
    """An edit of decoded metadata: one value replaced by a hostile one, or dropped."""
    path = draw(st.sampled_from([p for p in paths(metadata) if p]))
    action = draw(st.sampled_from(["replace", "replace", "drop", "deepen"]))
    value, depth = draw(HOSTILE), draw(st.integers(10, 500))

    def edit(meta):
        *parents, last = path
        target = meta
        for key in parents:
            target = target[key]
        if action == "drop" and isinstance(target, dict):
            del target[last]
        elif action == "deepen":  # a few hundred levels: deeper than any real entry, shallow enough for json.dumps
            target[last] = _nested(depth)
        else:
            target[last] = value
    return edit


def _nested(depth: int):
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def decoded(raw: bytes, path) -> dict:
    path.write_bytes(raw)
    _, header = file_parts(path)
    return {key: json.loads(value) for key, value in header.items() if key not in ("format", "format_version", "sha256")}


@FUZZ
@given(data=st.data(), kind=st.sampled_from(list(READERS)), sign=st.booleans())
def test_hostile_metadata_values(files, data, kind, sign):
    edit = data.draw(metadata_edits(decoded(files[kind], files["scratch"])))
    files["scratch"].write_bytes(tampered_bytes(files[f"{kind}_path"], metadata=edit, sign=sign))
    attempt(READERS[kind], files["scratch"])


@FUZZ
@given(data=st.data(), kind=st.sampled_from(list(READERS)), text=st.one_of(
    st.text(max_size=200), st.integers(1, 200_000).map(lambda n: "[" * n + "]" * n),
    st.integers(1, 200_000).map(lambda n: '{"a":' * n + "1" + "}" * n), st.sampled_from(["1" * 5000, "NaN", "-Infinity"])))
def test_hostile_metadata_text(files, data, kind, text):
    """Raw header strings: not JSON, nested up to 200,000 deep, numbers of 5,000 digits."""
    key = data.draw(st.sampled_from(["architecture", "config", "classes", "format_version", "history", "epoch",
                                     "generators", "image_shape", "new_key"]))
    files["scratch"].write_bytes(tampered_bytes(files[f"{kind}_path"], raw=lambda h: h.__setitem__(key, text)))
    attempt(READERS[kind], files["scratch"])
