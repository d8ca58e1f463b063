"""BatchNorm1d: batch statistics while training, running statistics in eval, buffers in model files;
and what BatchNorm1d and BatchNorm2d share, checked for both (more of BatchNorm2d in test_batchnorm2d.py)."""
import warnings

import numpy as np
import pytest
from ci_guard import import_oracle

from scratchnn import Dense, Sequential
from scratchnn.errors import ConfigError, ShapeError
from scratchnn.gradcheck import check_layer
from scratchnn.io import MODEL_FILE, load, save
from scratchnn.nn import BatchNorm1d, BatchNorm2d, ReLU, layer_from_config, layer_to_config
from scratchnn.nn.batchnorm import batchnorm_with_random_affine
from scratchnn.nn.im2col import from_pixel_major

TIGHT = 1e-7
EPS = 1e-5


def test_training_forward_known_answer():
    layer = BatchNorm1d(2)
    layer.params["gamma"][...] = [2.0, 1.0]
    layer.params["beta"][...] = [0.0, 10.0]
    y = layer.forward(np.array([[1.0, 2.0], [3.0, 6.0]]), training=True)
    # mean (2, 4), biased variance (1, 4), so x̂ = ±1/√(1 + eps) and ±2/√(4 + eps)
    a, b = 1 / np.sqrt(1 + EPS), 2 / np.sqrt(4 + EPS)
    np.testing.assert_allclose(y, [[-2 * a, 10 - b], [2 * a, 10 + b]], rtol=1e-6)


def test_running_statistics_follow_the_pytorch_rule():
    layer = BatchNorm1d(2, momentum=0.1)
    layer.forward(np.array([[1.0, 2.0], [3.0, 6.0]], np.float32), training=True)
    # 0.9·0 + 0.1·mean;  0.9·1 + 0.1·unbiased variance (2, 8)
    np.testing.assert_allclose(layer.buffers["running_mean"], [0.2, 0.4], rtol=1e-6)
    np.testing.assert_allclose(layer.buffers["running_var"], [1.1, 1.7], rtol=1e-6)


def test_running_statistics_over_several_batches():
    rng = np.random.default_rng(0)
    layer, momentum = BatchNorm1d(3, momentum=0.3), 0.3
    mean, var = np.zeros(3), np.ones(3)
    for _ in range(5):
        x = rng.normal(5, 2, (16, 3))
        layer.forward(x, training=True)
        mean = (1 - momentum) * mean + momentum * x.mean(axis=0)
        var = (1 - momentum) * var + momentum * x.var(axis=0, ddof=1)
    np.testing.assert_allclose(layer.buffers["running_mean"], mean, rtol=1e-6)
    np.testing.assert_allclose(layer.buffers["running_var"], var, rtol=1e-6)


def test_eval_uses_the_running_statistics_and_leaves_them_alone():
    layer = BatchNorm1d(2)
    layer.params["gamma"][...] = [3.0, 0.5]
    layer.params["beta"][...] = [1.0, -1.0]
    layer.buffers["running_mean"][...] = [1.0, 2.0]
    layer.buffers["running_var"][...] = [4.0, 9.0]
    y = layer.forward(np.array([[3.0, 8.0], [1.0, 2.0]], np.float32))
    expected = [[1 + 3 * 2 / np.sqrt(4 + EPS), -1 + 0.5 * 6 / np.sqrt(9 + EPS)], [1.0, -1.0]]
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(layer.buffers["running_mean"], [1.0, 2.0])
    np.testing.assert_array_equal(layer.buffers["running_var"], [4.0, 9.0])


def test_training_output_does_not_depend_on_the_running_statistics():
    # check_layer updates the running statistics at every evaluation; this is why that is harmless.
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 4))
    layer = BatchNorm1d(4)
    before = layer.forward(x, training=True)
    layer.buffers["running_mean"][...] = rng.standard_normal(4)
    layer.buffers["running_var"][...] = rng.uniform(1, 5, 4)
    np.testing.assert_array_equal(layer.forward(x, training=True), before)


@pytest.mark.parametrize("training", [True, False])
def test_gradients_match_finite_differences(training):
    rng = np.random.default_rng(2)
    layer = batchnorm_with_random_affine(5, rng)
    x = 1 + 2 * rng.standard_normal((7, 5))
    checks = check_layer(layer, x, rng, training=training)
    assert [c.wrt for c in checks] == ["x", "gamma", "beta"]
    for check in checks:
        assert check.error < TIGHT, f"{check.what} training={training} d{check.wrt}: {check.error:.2e}"


# the statistics axes: everything but the feature or channel axis
KINDS = {"1d": (BatchNorm1d, (10, 4), (0,)), "2d": (BatchNorm2d, (4, 3, 3, 5), (0, 2, 3))}


@pytest.mark.parametrize("kind, shape, axes", KINDS.values(), ids=KINDS.keys())
def test_training_input_gradient_is_orthogonal_to_what_normalising_removes(kind, shape, axes):
    # x̂ is unchanged by shifting a feature's (or channel's) numbers, so dx sums to 0 over them;
    # with eps → 0 it is unchanged by scaling them too, so dx is orthogonal to x̂.
    rng = np.random.default_rng(3)
    width = shape[1]
    layer = kind(width, eps=1e-14).astype(np.float64)
    layer.params["gamma"][...] = rng.uniform(0.5, 2, width)
    x = rng.standard_normal(shape)
    x_hat = (x - x.mean(axis=axes, keepdims=True)) / x.std(axis=axes, keepdims=True)
    layer.forward(x, training=True)
    dx = layer.backward(rng.standard_normal(shape))
    np.testing.assert_allclose(dx.sum(axis=axes), 0, atol=1e-12)
    np.testing.assert_allclose((dx * x_hat).sum(axis=axes), 0, atol=1e-12)


def test_parameter_gradients_and_skipping_the_input_gradient():
    layer = BatchNorm1d(2)
    layer.forward(np.array([[1.0, 2.0], [3.0, 6.0]]), training=True)
    assert layer.backward(np.array([[1.0, 2.0], [3.0, 5.0]]), need_dx=False) is None
    a = 1 / np.sqrt(1 + EPS)
    np.testing.assert_allclose(layer.grads["beta"], [4.0, 7.0])  # Σ dy
    np.testing.assert_allclose(layer.grads["gamma"], [2 * a, 3 * 2 / np.sqrt(4 + EPS)])  # Σ dy·x̂


@pytest.mark.parametrize("training", [True, False])
def test_float32_stays_float32(training):
    layer = BatchNorm1d(3)
    y = layer.forward(np.random.default_rng(0).standard_normal((6, 3)).astype(np.float32), training=training)
    dx = layer.backward(np.ones_like(y))
    arrays = {"y": y, "dx": dx, **layer.grads, **layer.buffers}
    assert all(a.dtype == np.float32 for a in arrays.values()), {k: a.dtype for k, a in arrays.items()}


def test_shape_and_config_errors():
    with pytest.raises(ShapeError, match=r"expects input of shape \(N, 3\)"):
        BatchNorm1d(3).forward(np.zeros((4, 2)))
    with pytest.raises(ShapeError, match="at least 2 samples"):
        BatchNorm1d(3).forward(np.zeros((1, 3)), training=True)
    assert BatchNorm1d(3).forward(np.zeros((1, 3))).shape == (1, 3)  # eval is fine with one sample
    for kwargs, message in (({"features": 0}, "features"), ({"features": 3, "momentum": 1.5}, "momentum"),
                            ({"features": 3, "eps": 0}, "eps")):
        with pytest.raises(ConfigError, match=message):
            BatchNorm1d(**kwargs)


def test_config_round_trip():
    layer = BatchNorm1d(7, momentum=0.05, eps=1e-3)
    rebuilt = layer_from_config(layer_to_config(layer))
    assert isinstance(rebuilt, BatchNorm1d) and rebuilt.config() == layer.config()
    assert repr(rebuilt) == "BatchNorm1d(features=7, momentum=0.05, eps=0.001)"


def trained_model(seed=0):
    """A model whose BatchNorm running statistics and γ, β have moved away from their start."""
    rng = np.random.default_rng(seed)
    model = Sequential([Dense(5, 8, rng=rng), BatchNorm1d(8), ReLU(), Dense(8, 3, rng=rng)])
    for _ in range(3):
        model.forward(rng.normal(2, 3, (16, 5)).astype(np.float32), training=True)
    model.layers[1].params["gamma"][...] = rng.uniform(0.5, 2, 8)
    model.layers[1].params["beta"][...] = rng.standard_normal(8)
    return model


def test_buffers_are_in_the_state_dict_and_restored_by_load_state_dict():
    model = trained_model()
    state = model.state_dict()
    assert {"1.gamma", "1.beta", "1.running_mean", "1.running_var"} <= set(state)
    fresh = Sequential([Dense(5, 8, rng=9), BatchNorm1d(8), ReLU(), Dense(8, 3, rng=9)])
    fresh.load_state_dict(state)
    for key in ("running_mean", "running_var"):
        np.testing.assert_array_equal(fresh.layers[1].buffers[key], model.layers[1].buffers[key], err_msg=key)
    x = np.random.default_rng(1).standard_normal((10, 5)).astype(np.float32)
    np.testing.assert_array_equal(fresh.predict_proba(x), model.predict_proba(x))


def test_model_file_round_trip_gives_identical_predictions(tmp_path):
    model = trained_model()
    loaded = load(save(model, tmp_path / MODEL_FILE))
    assert loaded.config() == model.config()
    np.testing.assert_array_equal(loaded.layers[1].buffers["running_var"], model.layers[1].buffers["running_var"])
    x = np.random.default_rng(1).standard_normal((10, 5)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))


TORCH = {"1d": (BatchNorm1d, "BatchNorm1d", (9, 5)), "2d": (BatchNorm2d, "BatchNorm2d", (5, 4, 6, 3))}


@pytest.mark.parametrize("kind, torch_name, shape", TORCH.values(), ids=TORCH.keys())
def test_matches_torch_in_training_and_eval(kind, torch_name, shape):
    torch = import_oracle("torch")
    rng = np.random.default_rng(4)
    width = shape[1]
    ours = batchnorm_with_random_affine(width, rng, kind).astype(np.float64)
    theirs = getattr(torch.nn, torch_name)(width, momentum=0.1, eps=EPS).double()
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.params["gamma"]))
        theirs.bias.copy_(torch.from_numpy(ours.params["beta"]))
        theirs.running_mean.copy_(torch.from_numpy(ours.buffers["running_mean"]))
        theirs.running_var.copy_(torch.from_numpy(ours.buffers["running_var"]))
    for training in (True, True, False):  # two training steps: the running statistics move twice
        theirs.train(training)
        x, dy = rng.normal(1, 2, shape), rng.standard_normal(shape)
        xt = torch.tensor(x, requires_grad=True)
        yt = theirs(xt)
        yt.backward(torch.from_numpy(dy))
        if x.ndim == 4:  # as a convolution passes images on: pixel-major memory
            x, dy = (from_pixel_major(np.ascontiguousarray(a.transpose(2, 3, 0, 1))) for a in (x, dy))
        y = ours.forward(x, training=training)
        dx = ours.backward(dy)
        pairs = {"y": (y, yt), "dx": (dx, xt.grad), "dgamma": (ours.grads["gamma"], theirs.weight.grad),
                 "dbeta": (ours.grads["beta"], theirs.bias.grad),
                 "running_mean": (ours.buffers["running_mean"], theirs.running_mean),
                 "running_var": (ours.buffers["running_var"], theirs.running_var)}
        for name, (a, b) in pairs.items():
            np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-10, atol=1e-12,
                                       err_msg=f"{torch_name} {name}, training={training}")
        theirs.zero_grad()


@pytest.mark.parametrize("n, batch_size, message", [
    (9, 4, "9 training images in batches of 4 leave a last batch of 1 image, which batch norm cannot "
           "normalise (it has no variance); use --batch-size 3"),
    (1, None, "batch norm needs 2 or more training images to normalise a batch, got 1"),
    # the numerics audit: n % 1 == 0 let batches of one image through, to fail at the first step
    (9, 1, "batches of 1 image leave batch norm nothing to normalise by (a batch of one has no variance); "
           "use --batch-size 2 or more"),
])
def test_fit_refuses_a_last_batch_of_one_before_the_first_step(n, batch_size, message):
    """Found by trying batch sizes: 9,000 digits in batches of 8,999 trained a whole epoch, then
    failed on its last batch. fit now says so before it changes a weight."""
    from scratchnn.optim import SGD
    from scratchnn.training.fit import fit

    rng = np.random.default_rng(0)
    model = Sequential([Dense(4, 3, rng=1), BatchNorm1d(3), ReLU(), Dense(3, 2, rng=2)])
    before = [p.copy() for _, p, _ in model.named_parameters()]
    x, y = rng.random((n, 4), dtype=np.float32), rng.integers(0, 2, n)
    with pytest.raises(ShapeError) as raised:
        fit(model, SGD(0.1), x, y, epochs=1, batch_size=batch_size, rng=rng)
    assert str(raised.value) == message
    assert all(np.array_equal(a, p) for a, (_, p, _) in zip(before, model.named_parameters()))


@pytest.mark.parametrize("layers", ["plain", "batchnorm2d"])
def test_a_last_batch_of_one_is_fine_without_batchnorm1d(layers):
    """Only BatchNorm1d normalises over the samples alone (BatchNorm2d has H·W numbers per image)."""
    from scratchnn import Conv2D, Flatten
    from scratchnn.optim import SGD
    from scratchnn.training.fit import fit

    rng = np.random.default_rng(0)
    if layers == "plain":
        model, x = Sequential([Dense(4, 3, rng=1), ReLU(), Dense(3, 2, rng=2)]), rng.random((9, 4), dtype=np.float32)
    else:
        model = Sequential([Conv2D(1, 2, 3, rng=1), BatchNorm2d(2), ReLU(), Flatten(), Dense(8, 2, rng=2)], (1, 4, 4))
        x = rng.random((9, 1, 4, 4), dtype=np.float32)
    assert len(fit(model, SGD(0.1), x, rng.integers(0, 2, 9), epochs=1, batch_size=4, rng=rng)) == 1


def test_batchnorm2d_over_1x1_maps_is_held_to_batches_of_two_before_the_first_step():
    """The numerics audit: a BatchNorm2d after pooling down to 1x1 has one number per image and
    channel, like BatchNorm1d; 9 images in 4s failed at the third batch, after two updates."""
    from scratchnn import Conv2D, Flatten, MaxPool2D
    from scratchnn.optim import SGD
    from scratchnn.training.fit import fit

    rng = np.random.default_rng(0)
    model = Sequential([Conv2D(1, 4, 3, rng=1), ReLU(), MaxPool2D(2), BatchNorm2d(4), Flatten(), Dense(4, 3, rng=2)],
                       (1, 4, 4))
    before = [p.copy() for _, p, _ in model.named_parameters()]
    x, y = rng.random((9, 1, 4, 4), dtype=np.float32), rng.integers(0, 3, 9)
    with pytest.raises(ShapeError, match="leave a last batch of 1 image.*use --batch-size 3"):
        fit(model, SGD(0.1), x, y, epochs=1, batch_size=4, rng=rng)
    assert all(np.array_equal(a, p) for a, (_, p, _) in zip(before, model.named_parameters()))
    assert len(fit(model, SGD(0.1), x, y, epochs=1, batch_size=3, rng=rng)) == 1


def test_train_refuses_a_batch_norm_batch_of_one_before_its_folder_is_made(tmp_path, capsys):
    """The numerics audit: --batch-size 1 with batch norm wrote config.toml, a checkpoint and
    health.csv, then failed at the first step, and --resume could not change the batch size."""
    from scratchnn.cli.main import main

    csv = tmp_path / "d.csv"
    rows = np.random.default_rng(0).integers(0, 256, (40, 784))
    csv.write_text("label," + ",".join(f"pixel{i}" for i in range(784)) + "\n"
                   + "".join(f"{i % 10}," + ",".join(map(str, row)) + "\n" for i, row in enumerate(rows)))
    for extra, message in ((["--batch-size", "1"], "batches of 1 image"),
                           (["--batch-size", "4", "--train-size", "29"], "29 training images in batches of 4")):
        code = main(["train", "--preset", "mlp", "--csv", str(csv), "--dev-size", "10", "--epochs", "1",
                     "--out", str(tmp_path / "run"), "--no-report", *extra])
        assert code != 0 and message in capsys.readouterr().err
        assert not (tmp_path / "run").exists()


def test_a_momentum_in_keras_convention_is_told_what_it_means_here():
    """The habits audit: BatchNorm1d(64, momentum=0.99), Keras's default, was taken as PyTorch's:
    the running statistics were the last batch's alone (dev accuracy 0.883 -> 0.840)."""
    with pytest.warns(UserWarning, match=r"^BatchNorm1d momentum 0.99 weighs the newest batch 99% in the running "
                                         r"statistics \(PyTorch's convention\): Keras's momentum=0.99 is "
                                         r"momentum=0.01 here$"):
        BatchNorm1d(64, momentum=0.99)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        BatchNorm1d(64, momentum=0.1)
