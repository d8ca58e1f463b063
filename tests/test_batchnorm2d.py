"""BatchNorm2d: per-channel statistics over N, H, W while training, running statistics in eval,
buffers in model files and checkpoints, and `--batchnorm` putting it into conv blocks. What it
shares with BatchNorm1d (the PyTorch oracle, dx's orthogonality) is checked for both in test_batchnorm.py."""
import numpy as np
import pytest
from model_file_support import tamper

from scratchnn import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential
from scratchnn.data import scale_pixels
from scratchnn.errors import ConfigError, ModelFileError, ShapeError
from scratchnn.gradcheck import check_layer
from scratchnn.io import MODEL_FILE, load, save
from scratchnn.nn import BatchNorm2d, layer_from_config, layer_to_config
from scratchnn.nn.batchnorm import batchnorm_with_random_affine
from scratchnn.nn.im2col import from_pixel_major
from scratchnn.training.checkpoint import CHECKPOINT_FILE, load_checkpoint, save_checkpoint
from scratchnn.training.config import TrainConfig
from scratchnn.training.fit import fit

TIGHT = 1e-7
EPS = 1e-5
AXES = (0, 2, 3)  # N, H, W: everything but the channel


def layouts(x):
    """x in (N, C, H, W) memory and in the pixel-major (H, W, N, C) memory a convolution gives."""
    return {"NCHW": np.ascontiguousarray(x), "pixel-major": from_pixel_major(np.ascontiguousarray(x.transpose(2, 3, 0, 1)))}


@pytest.mark.parametrize("layout", ["NCHW", "pixel-major"])
def test_training_normalises_each_channel_over_n_h_and_w(layout):
    rng = np.random.default_rng(0)
    x = layouts(rng.normal(3, 2, (4, 3, 5, 6)) * np.array([1, 10, 0.1])[:, None, None])[layout]
    layer = batchnorm_with_random_affine(3, rng, BatchNorm2d).astype(np.float64)
    y = layer.forward(x, training=True)
    x_hat = (x - x.mean(axis=AXES, keepdims=True)) / np.sqrt(x.var(axis=AXES, keepdims=True) + EPS)
    expected = x_hat * layer.params["gamma"][:, None, None] + layer.params["beta"][:, None, None]
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    assert y.shape == x.shape


def test_running_statistics_use_every_pixel_and_the_unbiased_variance():
    rng = np.random.default_rng(1)
    layer, momentum = BatchNorm2d(2, momentum=0.3), 0.3
    mean, var = np.zeros(2), np.ones(2)
    for _ in range(4):
        x = rng.normal(5, 2, (3, 2, 4, 5))
        layer.forward(x, training=True)
        mean = (1 - momentum) * mean + momentum * x.mean(axis=AXES)
        var = (1 - momentum) * var + momentum * x.var(axis=AXES, ddof=1)  # M = N·H·W = 60
    np.testing.assert_allclose(layer.buffers["running_mean"], mean, rtol=1e-6)
    np.testing.assert_allclose(layer.buffers["running_var"], var, rtol=1e-6)


def test_eval_uses_the_running_statistics_per_channel_and_leaves_them_alone():
    layer = BatchNorm2d(2)
    layer.params["gamma"][...] = [3.0, 0.5]
    layer.params["beta"][...] = [1.0, -1.0]
    layer.buffers["running_mean"][...] = [1.0, 2.0]
    layer.buffers["running_var"][...] = [4.0, 9.0]
    x = np.zeros((1, 2, 1, 2), np.float32)
    x[0, 0] = [[3.0, 1.0]]
    x[0, 1] = [[8.0, 2.0]]
    y = layer.forward(x)
    np.testing.assert_allclose(y[0, 0, 0], [1 + 3 * 2 / np.sqrt(4 + EPS), 1.0], rtol=1e-6)
    np.testing.assert_allclose(y[0, 1, 0], [-1 + 0.5 * 6 / np.sqrt(9 + EPS), -1.0], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(layer.buffers["running_mean"], [1.0, 2.0])
    np.testing.assert_array_equal(layer.buffers["running_var"], [4.0, 9.0])


@pytest.mark.parametrize("layout", ["NCHW", "pixel-major"])
@pytest.mark.parametrize("training", [True, False])
def test_gradients_match_finite_differences(training, layout):
    rng = np.random.default_rng(2)
    layer = batchnorm_with_random_affine(3, rng, BatchNorm2d)
    x = layouts(1 + 2 * rng.standard_normal((3, 3, 4, 2)))[layout]
    checks = check_layer(layer, x, rng, training=training)
    assert [c.wrt for c in checks] == ["x", "gamma", "beta"]
    for check in checks:
        assert check.error < TIGHT, f"{check.what} {layout} training={training} d{check.wrt}: {check.error:.2e}"


def test_parameter_gradients_sum_over_every_pixel_and_dx_can_be_skipped():
    rng = np.random.default_rng(4)
    layer = BatchNorm2d(2).astype(np.float64)
    x, dy = rng.standard_normal((3, 2, 4, 4)), rng.standard_normal((3, 2, 4, 4))
    layer.forward(x, training=True)
    assert layer.backward(dy, need_dx=False) is None
    x_hat = (x - x.mean(axis=AXES, keepdims=True)) / np.sqrt(x.var(axis=AXES, keepdims=True) + EPS)
    np.testing.assert_allclose(layer.grads["beta"], dy.sum(axis=AXES), rtol=1e-12)
    np.testing.assert_allclose(layer.grads["gamma"], (dy * x_hat).sum(axis=AXES), rtol=1e-12)


@pytest.mark.parametrize("training", [True, False])
def test_float32_stays_float32_and_inputs_are_not_changed(training):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 3, 5, 5)).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    x_before, dy_before = x.copy(), dy.copy()
    layer = BatchNorm2d(3)
    y = layer.forward(x, training=training)
    dx = layer.backward(dy)
    arrays = {"y": y, "dx": dx, **layer.grads, **layer.buffers}
    assert all(a.dtype == np.float32 for a in arrays.values()), {k: a.dtype for k, a in arrays.items()}
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(dy, dy_before)


def test_a_sample_in_eval_mode_does_not_depend_on_its_batch():
    rng = np.random.default_rng(6)
    layer = batchnorm_with_random_affine(3, rng, BatchNorm2d)
    x = rng.standard_normal((5, 3, 4, 4)).astype(np.float32)
    np.testing.assert_array_equal(layer.forward(x)[2:3], layer.forward(x[2:3]))


def test_shape_and_config_errors():
    with pytest.raises(ShapeError, match=r"expects images of shape \(N, 3, H, W\)"):
        BatchNorm2d(3).forward(np.zeros((4, 2, 5, 5)))
    with pytest.raises(ShapeError, match=r"expects images of shape \(N, 3, H, W\)"):
        BatchNorm2d(3).forward(np.zeros((4, 3)))
    with pytest.raises(ShapeError, match=r"at least 2 numbers per channel \(N·H·W\)"):
        BatchNorm2d(3).forward(np.zeros((1, 3, 1, 1)), training=True)
    assert BatchNorm2d(3).forward(np.zeros((1, 3, 1, 2)), training=True).shape == (1, 3, 1, 2)  # 2 pixels do
    for kwargs, message in (({"channels": 0}, "BatchNorm2d channels"), ({"channels": 2.5}, "channels"),
                            ({"channels": 3, "momentum": -0.1}, "momentum"), ({"channels": 3, "eps": 0}, "eps")):
        with pytest.raises(ConfigError, match=message):
            BatchNorm2d(**kwargs)


def test_config_round_trip():
    layer = BatchNorm2d(7, momentum=0.05, eps=1e-3)
    rebuilt = layer_from_config(layer_to_config(layer))
    assert isinstance(rebuilt, BatchNorm2d) and rebuilt.config() == layer.config() and rebuilt.channels == 7
    assert repr(rebuilt) == "BatchNorm2d(channels=7, momentum=0.05, eps=0.001)"


# --- model files and checkpoints --------------------------------------------------------------

def small_cnn(seed=0) -> Sequential:
    """Conv -> BatchNorm2d -> ReLU -> pool -> Dense, with γ, β and running statistics moved from their start."""
    rng = np.random.default_rng(seed)
    model = Sequential([Conv2D(1, 4, 3, padding=1, rng=rng), BatchNorm2d(4), ReLU(), MaxPool2D(2), Flatten(),
                        Dense(64, 3, rng=rng)], input_shape=(1, 8, 8))
    for _ in range(3):
        model.forward(rng.normal(1, 2, (6, 1, 8, 8)).astype(np.float32), training=True)
    model.layers[1].params["gamma"][...] = rng.uniform(0.5, 2, 4)
    model.layers[1].params["beta"][...] = rng.standard_normal(4)
    return model


def test_buffers_are_in_the_state_dict_and_a_model_file_round_trip_is_exact(tmp_path):
    model = small_cnn()
    assert {"1.gamma", "1.beta", "1.running_mean", "1.running_var"} <= set(model.state_dict())
    assert not np.array_equal(model.layers[1].buffers["running_var"], np.ones(4))  # they moved
    loaded = load(save(model, tmp_path / MODEL_FILE))
    assert loaded.config() == model.config() and isinstance(loaded.layers[1], BatchNorm2d)
    for key in ("running_mean", "running_var"):
        np.testing.assert_array_equal(loaded.layers[1].buffers[key], model.layers[1].buffers[key], err_msg=key)
    x = np.random.default_rng(1).standard_normal((10, 1, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))


def set_layer(index, key, value):
    def edit(meta):
        config = meta["architecture"]["layers"][index]["config"]
        if value is DROP:
            del config[key]
        else:
            config[key] = value
    return edit


def move_layer(source, target):
    def edit(meta):
        layers = meta["architecture"]["layers"]
        layers.insert(target, layers.pop(source))
    return edit


DROP = object()
TAMPERED = {
    "a billion channels": (set_layer(1, "channels", 10**9), "channels must be an integer from 1 to 4,194,304"),
    "channels a word": (set_layer(1, "channels", "lots"), "channels must be an integer.*got 'lots'"),
    "channels fractional": (set_layer(1, "channels", 4.5), "channels must be an integer.*got 4.5"),
    "channels not the convolution's": (set_layer(1, "channels", 5),
                                       r"layer 1 \(BatchNorm2d\) takes images \(5, H, W\) but the layer before gives \(4, 8, 8\)"),
    "no channels": (set_layer(1, "channels", DROP), r"missing keywords \['channels'\]"),
    "BatchNorm1d's keyword": (set_layer(1, "features", 4), r"unknown keywords \['features'\]; BatchNorm2d takes channels"),
    "momentum above 1": (set_layer(1, "momentum", 2), r"momentum must be a number in \[0, 1\]"),
    "eps of 0": (set_layer(1, "eps", 0), r"eps must be a number in \(0, 1\]"),
    "eps a string": (set_layer(1, "eps", "1e-5"), "eps must be a number"),
    "after Flatten": (move_layer(1, 4), r"\(BatchNorm2d\) takes images \(4, H, W\) but the layer before gives \(64,\)"),
}


@pytest.mark.parametrize("edit,message", TAMPERED.values(), ids=TAMPERED.keys())
def test_tampered_batchnorm2d_metadata_is_one_clear_error(tmp_path, edit, message):
    path = save(small_cnn(), tmp_path / MODEL_FILE)
    tamper(path, metadata=edit)  # re-signed, as an attacker would
    with pytest.raises(ModelFileError, match=message) as caught:
        load(path)
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)


def test_a_running_statistic_of_the_wrong_shape_is_named(tmp_path):
    path = save(small_cnn(), tmp_path / MODEL_FILE)
    tamper(path, tensors=lambda t: t.__setitem__("1.running_var", np.ones(5, np.float32)))
    with pytest.raises(ModelFileError, match="1.running_var"):
        load(path)


def digit_images(n=96, seed=0):
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, 28), np.uint8)
    images[:, 4:-4, 4:-4] = rng.integers(0, 256, (n, 20, 20))
    return images, rng.integers(0, 10, n)


def train_cnn(epochs, stop=None, state=None, fast=True):
    """A --batchnorm CNN on 96 digits for ``epochs`` (stopping after ``stop``), maybe resumed from ``state``."""
    config = TrainConfig(conv=[3], hidden=[8], batchnorm=True, init="he_normal", bias_init="zeros", dropout=0.2,
                         optimizer="adamw", lr=3e-3, schedule="cosine", epochs=epochs, batch_size=32)
    gens = {key: np.random.default_rng([3, k]) for k, key in enumerate(("init", "layers", "order"))}
    model = config.build_model(gens["init"], layer_rng=gens["layers"])
    optimizer, schedule = config.build_optimizer(), config.build_schedule(3)
    start = 0
    if state is not None:
        state.restore(model=model, optimizer=optimizer, schedule=schedule, generators=gens)
        start = state.epoch
    images, labels = digit_images()
    history = fit(model, optimizer, scale_pixels(images, model.input_shape), labels, epochs=stop or epochs,
                  batch_size=32, rng=gens["order"], schedule=schedule, start_epoch=start, fast=fast)
    return model, optimizer, schedule, gens, history


def test_batchnorm_flag_puts_batchnorm2d_between_each_convolution_and_its_activation():
    model = TrainConfig(conv=[4, 6], hidden=[8], batchnorm=True).build_model(np.random.default_rng(0))
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Conv2D", "BatchNorm2d", "ReLU", "MaxPool2D", "Conv2D", "BatchNorm2d", "ReLU", "MaxPool2D",
                     "Flatten", "Dense", "BatchNorm1d", "ReLU", "Dense"]
    assert [model.layers[i].channels for i in (1, 5)] == [4, 6]
    plain = TrainConfig(conv=[4, 6], hidden=[8]).build_model(np.random.default_rng(0))
    assert not any("BatchNorm" in type(layer).__name__ for layer in plain.layers)


def test_a_checkpoint_resumes_a_batchnorm2d_run_bit_for_bit(tmp_path):
    whole, *_ = train_cnn(4)
    model, optimizer, schedule, gens, history = train_cnn(4, stop=2)
    path = save_checkpoint(tmp_path / CHECKPOINT_FILE, model=model, optimizer=optimizer, schedule=schedule,
                           generators=gens, history=history)
    checkpoint = load_checkpoint(path)
    assert {"model.1.running_mean", "model.1.running_var"} <= set(checkpoint.tensors)
    resumed, *_ = train_cnn(4, state=checkpoint)
    expected = whole.state_dict()
    assert resumed.state_dict().keys() == expected.keys()
    for name, array in resumed.state_dict().items():
        np.testing.assert_array_equal(array, expected[name], err_msg=name)
    assert not np.array_equal(expected["1.running_var"], np.ones(3))  # the buffers moved: comparing them means something


def test_gradcheck_command_checks_batchnorm2d(capsys):
    from scratchnn.cli.main import main
    assert main(["gradcheck"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("BatchNorm2d")]
    assert {line.split()[-3] for line in lines} == {"dx", "dgamma", "dbeta"}, lines
    assert all(line.endswith("ok") for line in lines), lines


@pytest.mark.slow  # ~10 s on an idle machine, over a minute on a busy one
def test_cnn_preset_with_batchnorm_learns_real_digits_in_one_epoch(tmp_path, shared_dir):
    # measured: dev accuracy 0.942 after this one epoch (0.930 without --batchnorm)
    import csv

    from scratchnn.cli.main import main
    out = tmp_path / "run"
    assert main(["train", "--preset", "cnn", "--batchnorm", "--epochs", "1", "--csv",
                 str(shared_dir / "datasets/mnist/t10k-kaggle.csv.gz"), "--out", str(out), "--quiet", "--no-report"]) == 0
    (row,) = csv.DictReader((out / "metrics.csv").open())
    assert float(row["dev_accuracy"]) >= 0.9, row
    model = load(out / MODEL_FILE)
    norms = [layer for layer in model.layers if type(layer) is BatchNorm2d]
    assert [layer.channels for layer in norms] == [32, 64]
    assert all(not np.array_equal(layer.buffers["running_var"], np.ones(layer.channels)) for layer in norms)
    assert main(["evaluate", str(out)]) == 0
