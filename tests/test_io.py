import json
import os

import numpy as np
import pytest

from scratchnn import Dense, ReLU, Sequential
from scratchnn.errors import ModelFileError
from scratchnn.io import MODEL_FILE, load, read_metadata, read_tensors, save, write_tensors


@pytest.fixture
def model():
    rng = np.random.default_rng(0)
    return Sequential([Dense(784, 16, rng=rng), ReLU(), Dense(16, 10, rng=rng)])


@pytest.fixture
def x():
    return np.random.default_rng(1).random((20, 784), dtype=np.float32)


def test_save_load_round_trip_gives_identical_predictions(tmp_path, model, x):
    path = save(model, tmp_path / MODEL_FILE, metadata={"config": {"lr": 0.1}, "classes": list("0123456789")})
    loaded = load(path)
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))
    assert loaded.config() == model.config()
    meta = read_metadata(path)
    assert meta["config"] == {"lr": 0.1} and meta["classes"][3] == "3"
    assert load(tmp_path).config() == model.config()  # a run folder works too


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="no such model file"):
        load(tmp_path / "nope.safetensors")


def test_truncated_file(tmp_path, model):
    path = save(model, tmp_path / MODEL_FILE)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="truncated or corrupted"):
        load(path)


def test_flipped_byte_in_the_weights_is_caught_by_the_checksum(tmp_path, model):
    path = save(model, tmp_path / MODEL_FILE)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        load(path)


def test_not_a_safetensors_file(tmp_path):
    path = tmp_path / MODEL_FILE
    path.write_text("hello, I am a text file")
    with pytest.raises(ModelFileError, match="not a readable safetensors file"):
        load(path)


def test_foreign_safetensors_file(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / MODEL_FILE
    save_file({"w": np.zeros(3, np.float32)}, str(path))
    with pytest.raises(ModelFileError, match="not a scratchnn file"):
        load(path)


def test_wrong_shape_names_the_key(tmp_path, model):
    state = dict(model.state_dict())
    state["2.W"] = np.zeros((15, 10), np.float32)
    path = write_tensors(tmp_path / MODEL_FILE, state, {"architecture": model.config()})
    with pytest.raises(ModelFileError, match=r"'2.W' has shape \(15, 10\), model expects \(16, 10\)"):
        load(path)


def test_nan_weights_are_refused(tmp_path, model):
    state = dict(model.state_dict())
    state["0.b"] = np.full(16, np.nan, np.float32)
    path = write_tensors(tmp_path / MODEL_FILE, state, {"architecture": model.config()})
    with pytest.raises(ModelFileError, match="'0.b' contains NaN"):
        load(path)


def test_unknown_layer_in_architecture(tmp_path, model):
    arch = model.config()
    arch["layers"][1]["type"] = "Mystery"
    path = write_tensors(tmp_path / MODEL_FILE, model.state_dict(), {"architecture": arch})
    with pytest.raises(ModelFileError, match="unknown layer type 'Mystery'"):
        load(path)


def test_a_failed_write_leaves_the_old_file_intact(tmp_path, model, monkeypatch):
    path = save(model, tmp_path / MODEL_FILE)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        save(Sequential([Dense(784, 10, rng=5)]), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [MODEL_FILE]  # no temporary file left behind


def test_metadata_is_json(tmp_path, model):
    path = save(model, tmp_path / MODEL_FILE, metadata={"metrics": {"dev_accuracy": 0.9}})
    tensors, meta = read_tensors(path)
    assert set(tensors) == {"0.W", "0.b", "2.W", "2.b"}
    assert json.loads(json.dumps(meta))["metrics"]["dev_accuracy"] == 0.9


def test_saved_files_get_the_usual_permissions(tmp_path):
    from scratchnn.files import UMASK, atomic_write_bytes

    path = atomic_write_bytes(tmp_path / "a.bin", b"data")
    assert path.stat().st_mode & 0o777 == 0o666 & ~UMASK  # not mkstemp's owner-only 0o600
