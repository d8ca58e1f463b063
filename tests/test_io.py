import json
import os
from pathlib import Path

import numpy as np
import pytest

from scratchnn import Dense, ReLU, Sequential
from scratchnn.errors import ModelFileError
from scratchnn.io import MODEL_FILE, load, read_metadata, read_tensors, save, write_tensors
from scratchnn.nn import layer_to_config
from model_file_support import tamper


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


def test_a_model_holding_nan_is_refused_when_saved_not_when_loaded(tmp_path, model):
    """The API fuzz audit: save wrote a file that load then refused ('contains NaN or infinite')."""
    model.layers[0].params["W"][0, 0] = np.nan
    with pytest.raises(ModelFileError, match="tensor '0.W' holds NaN or infinite values, so the file could not be"):
        save(model, tmp_path / "m.safetensors")
    assert not (tmp_path / "m.safetensors").exists()


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="no such model file"):
        load(tmp_path / "nope.safetensors")


def test_a_device_or_pipe_is_no_model_file(tmp_path):
    """/dev/zero would read forever and a FIFO would block: neither is opened."""
    os.mkfifo(tmp_path / "pipe.safetensors")
    for path in [tmp_path / "pipe.safetensors"] + [Path("/dev/zero")] * os.path.exists("/dev/zero"):
        with pytest.raises(ModelFileError, match="not a regular file; give a model file"):
            load(path)


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


# --- hostile model files: everything is checked before anything is built -----------------------

def set_layer(index, key, value):
    def edit(meta):
        meta["architecture"]["layers"][index]["config"][key] = value
    return edit


def set_entry(key, value):
    def edit(meta):
        if value is DROP:
            del meta[key]
        else:
            meta[key] = value
    return edit


DROP = object()
TAMPERED = {
    "a billion units": (set_layer(0, "out_features", 10**9), "out_features must be an integer from 1 to 4,194,304"),
    "negative units": (set_layer(0, "out_features", -5), "out_features must be an integer"),
    "units as a word": (set_layer(2, "in_features", "lots"), "in_features must be an integer.*got 'lots'"),
    "fractional units": (set_layer(2, "in_features", 512.7), "in_features must be an integer.*got 512.7"),
    "units as a bool": (set_layer(2, "out_features", True), "out_features must be an integer.*got True"),
    "unknown keyword": (set_layer(0, "units", 3), r"unknown keywords \['units'\]; Dense takes"),
    "unknown initialiser": (set_layer(0, "init", "os.system"), "init must be one of"),
    "initialiser as a list": (set_layer(0, "init", ["he_normal"]), "init must be one of"),
    "a layer as a string": (lambda m: m["architecture"]["layers"].__setitem__(1, "ReLU"), "layer 1 must be an object"),
    "layers as a dict": (lambda m: m["architecture"].__setitem__("layers", {"0": {}}), "layers must be a list"),
    "layer config as a list": (lambda m: m["architecture"]["layers"][0].__setitem__("config", [784, 16]),
                               r"layer 0 \(Dense\) config must be an object"),
    "unknown layer": (lambda m: m["architecture"]["layers"][1].__setitem__("type", "Mystery"),
                      "unknown layer type 'Mystery'"),
    "no layers": (lambda m: m["architecture"].__setitem__("layers", []), "1 to 1,024 layers"),
    "architecture null": (set_entry("architecture", None), "architecture must be an object.*NoneType"),
    "architecture a string": (set_entry("architecture", "Dense"), "architecture must be an object.*str"),
    "architecture missing": (set_entry("architecture", DROP), "no architecture in the metadata"),
    "config a list": (set_entry("config", [1, 2]), "metadata 'config' must be an object"),
    "classes not strings": (set_entry("classes", [0, 1]), "metadata 'classes' must be a list of strings"),
    "image_shape of three": (set_entry("image_shape", [28, 28, 1]), r"image_shape' must be \[height, width\]"),
    "image_shape negative": (set_entry("image_shape", [28, -1]), "image_shape' entry must be an integer"),
    "image_shape not the input": (set_entry("image_shape", [5, 5]),
                                  r"image_shape' says 5x5 images, the architecture's input_shape is \(784,\)"),
    "image_shape huge": (set_entry("image_shape", [4_000_000, 4_000_000]), "says 4000000x4000000 images"),
    "classes too few": (set_entry("classes", list("abc")),
                        "'classes' names 3 classes, the architecture has 10 outputs"),
    "metrics a string": (set_entry("metrics", "great"), "metadata 'metrics' must be an object"),
    "input_shape of floats": (lambda m: m["architecture"].__setitem__("input_shape", [784.0]),
                              "input_shape entry must be an integer"),
}


@pytest.mark.parametrize("edit,message", TAMPERED.values(), ids=TAMPERED.keys())
def test_tampered_metadata_is_one_clear_error(tmp_path, model, edit, message):
    path = save(model, tmp_path / MODEL_FILE, metadata={"config": {"lr": 0.1}, "classes": list("0123456789")})
    tamper(path, metadata=edit)  # with a matching digest: what an attacker would write
    with pytest.raises(ModelFileError, match=message) as caught:
        load(path)
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)


RAW = {
    "format_version a word": (lambda h: h.__setitem__("format_version", "one"), "format_version must be a whole number"),
    "format_version from the future": (lambda h: h.__setitem__("format_version", "3"), "newer scratchnn"),
    "nested 100,000 deep": (lambda h: h.__setitem__("config", "[" * 100_000 + "]" * 100_000),
                            "'config' nests 100,000 levels deep"),
    "not JSON": (lambda h: h.__setitem__("config", "{lr: 1"), "'config' is not valid JSON"),
    "a 5,000-digit integer": (lambda h: h.__setitem__("config", "1" * 5000), "'config' is not valid JSON"),
}


def test_a_cnn_file_says_the_images_its_input_takes(tmp_path):
    from scratchnn.nn import Conv2D, Flatten

    cnn = Sequential([Conv2D(1, 2, 3, rng=0), Flatten(), Dense(2 * 26 * 26, 10, rng=1)], input_shape=(1, 28, 28))
    path = save(cnn, tmp_path / MODEL_FILE, metadata={"image_shape": [28, 28]})
    assert read_metadata(path)["image_shape"] == [28, 28]
    tamper(path, metadata=set_entry("image_shape", [14, 56]))  # the same pixels, other images
    with pytest.raises(ModelFileError, match=r"says 14x56 images, the architecture's input_shape is \(1, 28, 28\)"):
        load(path)


def test_metadata_load_would_refuse_is_refused_before_saving(tmp_path, model):
    for metadata, message in (({"classes": list("abc")}, "names 3 classes"),
                              ({"image_shape": [5, 5]}, "says 5x5 images")):
        with pytest.raises(ModelFileError, match=f"{message}.*; fix the metadata, a file saying so could not be"):
            save(model, tmp_path / MODEL_FILE, metadata=metadata)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("edit,message", RAW.values(), ids=RAW.keys())
def test_a_broken_metadata_header_is_one_clear_error(tmp_path, model, edit, message):
    path = save(model, tmp_path / MODEL_FILE, metadata={"config": {"lr": 0.1}})
    tamper(path, raw=edit)
    with pytest.raises(ModelFileError, match=message):
        load(path)


def test_the_digest_covers_the_metadata(tmp_path, model):
    path = save(model, tmp_path / MODEL_FILE, metadata={"classes": list("0123456789")})
    tamper(path, metadata=set_entry("classes", list("abcdefghij")), sign=False)
    with pytest.raises(ModelFileError, match="checksum mismatch, the tensors or metadata were changed"):
        load(path)


def test_a_missing_digest_is_called_missing(tmp_path, model):
    path = save(model, tmp_path / MODEL_FILE)
    tamper(path, raw=lambda h: h.pop("sha256"), sign=False)
    with pytest.raises(ModelFileError, match="checksum .sha256. is missing"):
        load(path)


def test_format_1_files_are_still_read_and_their_metadata_still_checked(tmp_path, model, x):
    """Format 1 (digest over the tensors only), as scratchnn wrote before the digest covered metadata."""
    path = save(model, tmp_path / MODEL_FILE)
    tamper(path, raw=lambda h: h.__setitem__("format_version", "1"))
    np.testing.assert_array_equal(load(path).predict_proba(x), model.predict_proba(x))
    tamper(path, metadata=set_layer(0, "out_features", 10**9))
    with pytest.raises(ModelFileError, match="out_features must be an integer"):
        load(path)


@pytest.mark.parametrize("dtype,name", [(np.int32, "I32"), (np.float64, "F64"), (np.float16, "F16")])
def test_a_tensor_of_another_dtype_is_refused_not_cast(tmp_path, model, dtype, name):
    path = save(model, tmp_path / MODEL_FILE)
    tamper(path, tensors=lambda t: t.__setitem__("0.b", t["0.b"].astype(dtype)))
    with pytest.raises(ModelFileError, match=f"tensor '0.b' is {name}, not float32"):
        load(path)


def test_missing_and_extra_tensors_are_named(tmp_path, model):
    path = save(model, tmp_path / MODEL_FILE)
    tamper(path, tensors=lambda t: t.pop("2.b"))
    with pytest.raises(ModelFileError, match="tensor '2.b' is missing"):
        load(path)
    path = save(model, tmp_path / MODEL_FILE)
    tamper(path, tensors=lambda t: t.__setitem__("9.W", np.zeros(3, np.float32)))
    with pytest.raises(ModelFileError, match="tensor '9.W' does not belong to the architecture"):
        load(path)


def test_tensor_shapes_are_checked_before_the_model_is_built(tmp_path):
    """Widths inside every bound but not matching the 300 bytes of tensors in the file: refused
    from the header alone, before 2 x 144 MB of weights and gradients are allocated."""
    import tracemalloc

    path = save(Sequential([Dense(12, 4, rng=0), ReLU(), Dense(4, 3, rng=1)]), tmp_path / MODEL_FILE)
    tamper(path, metadata=lambda m: (set_layer(0, "out_features", 3_000_000)(m), set_layer(2, "in_features", 3_000_000)(m)))
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match=r"tensor '0.W' has shape \(12, 4\), model expects \(12, 3000000\)"):
            load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20, f"loading allocated {peak / 2**20:.0f} MiB before refusing"


def test_layers_must_chain_as_forward_requires(tmp_path):
    a, b = Dense(784, 16, rng=0), Dense(32, 10, rng=1)
    path = write_tensors(tmp_path / MODEL_FILE, {"0.W": a.params["W"], "0.b": a.params["b"], "1.W": b.params["W"],
                                                 "1.b": b.params["b"]},
                         {"architecture": {"input_shape": [784], "layers": [layer_to_config(a), layer_to_config(b)]}})
    with pytest.raises(ModelFileError, match=r"layer 1 \(Dense\) takes \(32,\) features but the layer before gives \(16,\)"):
        load(path)


def test_a_header_claiming_a_terabyte_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / MODEL_FILE
    path.write_bytes((2**40).to_bytes(8, "little") + b"{}")
    with pytest.raises(ModelFileError, match="header claims 1,099,511,627,776 bytes"):
        load(path)


def test_only_float32_tensors_are_written(tmp_path, model):
    with pytest.raises(ModelFileError, match=r"'0.W' is float64.*astype\(np.float32\)"):
        save(model.astype(np.float64), tmp_path / MODEL_FILE)
    assert not (tmp_path / MODEL_FILE).exists()


BILLION = """
import re, sys, time
from pathlib import Path
from scratchnn.errors import ModelFileError
from scratchnn.io import load
start = time.perf_counter()
try:
    load(sys.argv[1])
except ModelFileError as error:
    print(error, file=sys.stderr)
# NOTE: VmHWM, the peak of this process since exec; ru_maxrss would keep the forked pytest's peak
peak = re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1)
print(time.perf_counter() - start, int(peak) * 1024)
"""


def test_a_billion_unit_model_is_refused_fast_with_little_memory(tmp_path):
    """The issue's 2 MB file claiming out_features=10**9 (it cost 3.7 GB and 32 s): measured in a
    fresh process. Generous bounds, a hang and memory guard; the figures are printed."""
    import subprocess
    import sys

    rng = np.random.default_rng(0)
    model = Sequential([Dense(784, 640, rng=rng), ReLU(), Dense(640, 10, rng=rng)])  # ~2 MB of weights
    path = save(model, tmp_path / MODEL_FILE)
    tamper(path, metadata=lambda m: (set_layer(0, "out_features", 10**9)(m), set_layer(2, "in_features", 10**9)(m)))
    result = subprocess.run([sys.executable, "-c", BILLION, str(path)], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert "out_features must be an integer from 1 to 4,194,304" in result.stderr, result.stderr
    seconds, rss = map(float, result.stdout.split())
    print(f"refused a {path.stat().st_size / 1e6:.1f} MB file in {seconds:.3f} s, peak RSS {rss / 2**20:.0f} MiB")
    assert seconds < 5 and rss < 200 * 2**20


def test_the_schema_knows_every_layer_and_predicts_every_shape():
    """model_schema works out parameter shapes by arithmetic: it must agree with the layers."""
    from scratchnn.nn import AvgPool2D, BatchNorm1d, Conv2D, Dropout, Flatten, LeakyReLU, MaxPool2D, Sigmoid, Tanh
    from scratchnn.model_schema import state_shapes

    model = Sequential([Conv2D(1, 4, 3, stride=2, padding=1, rng=0), LeakyReLU(0.1), MaxPool2D(2),
                        Conv2D(4, 6, (3, 2), rng=1), Tanh(), AvgPool2D(2, stride=1), Flatten(),
                        Dense(120, 12, init="glorot_uniform", rng=2), BatchNorm1d(12), Sigmoid(), Dropout(0.3),
                        ReLU(), Dense(12, 10, rng=3)], input_shape=(1, 28, 28))
    assert model.predict(np.zeros((2, 1, 28, 28), np.float32)).shape == (2,)  # the layers do chain
    assert state_shapes(model.config()) == {name: a.shape for name, a in model.state_dict().items()}


def test_every_layer_type_declares_a_schema_that_predicts_its_shapes():
    """Each registered layer type, on each of its gradcheck cases: the config it saves passes its
    own keyword checkers, and its config_shapes predicts the output and every parameter and buffer."""
    from scratchnn.gradcheck import standard_cases
    from scratchnn.model_schema import checked_layer
    from scratchnn.nn import LAYER_TYPES, layer_to_config

    cases = standard_cases(np.random.default_rng(0))
    assert set(LAYER_TYPES) <= {type(layer).__name__ for layer, _ in cases}
    for layer, x in cases:
        entry = json.loads(json.dumps(layer_to_config(layer)))  # as a model file holds it
        kind, args = checked_layer(entry, 0)
        out, own = LAYER_TYPES[kind].config_shapes(args, x.shape[1:], f"{kind} case")
        state = {**layer.params, **layer.buffers}
        assert out == layer.forward(x).shape[1:], f"{layer!r}: config_shapes gives output {out}"
        assert own == {name: a.shape for name, a in state.items()}, f"{layer!r}: config_shapes gives {own}"


def test_a_safetensors_panic_where_memory_runs_out_is_a_memory_error(tmp_path, monkeypatch):
    """The resource audit: under ulimit -v safetensors' Rust code panicked ('PyObject pointer is
    null'), a BaseException no handler took: a Rust backtrace ended the run."""
    import safetensors.numpy

    from scratchnn.io import write_tensors

    class PanicException(BaseException):  # pyo3's, as it is named
        pass

    def panics(tensors, metadata=None):
        raise PanicException("PyObject pointer is null")
    monkeypatch.setattr(safetensors.numpy, "save", panics)
    with pytest.raises(MemoryError, match="safetensors could not build model.safetensors"):
        write_tensors(tmp_path / "model.safetensors", {"w": np.zeros(3, np.float32)}, {})
    assert not (tmp_path / "model.safetensors").exists()
