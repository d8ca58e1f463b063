"""Conv2D's Winograd paths, F(2x2, 3x3) and F(4x4, 3x3): the same convolution as im2col, their exact
gradients, the choice."""
import numpy as np
import pytest

from scratchnn import Sequential
from scratchnn.errors import ConfigError, ModelFileError
from scratchnn.gradcheck import check_layer
from scratchnn.io import load, save
from scratchnn.model_schema import state_shapes
from scratchnn.nn import (
    Conv2D,
    Dense,
    Flatten,
    layer_from_config,
    layer_to_config,
    winograd,
    winograd4,
)

TIGHT = 1e-7
WINOGRADS = ("winograd", "winograd4")


def random_case(seed: int):
    """(N, C, F, H, W, padding) with odd and even sides, 0-2 padding (not always square), 1-5 channels."""
    rng = np.random.default_rng(seed)
    padding = tuple(int(p) for p in rng.integers(0, 3, 2))
    h, w = (int(rng.integers(3 - 2 * p, 10)) for p in padding)
    return int(rng.integers(1, 4)), int(rng.integers(1, 6)), int(rng.integers(1, 6)), max(h, 1), max(w, 1), padding


def both(c, f, padding, dtype, seed=0, algorithm="winograd"):
    """The same layer twice, im2col and Winograd, with equal (random, nonzero-bias) parameters."""
    layers = [Conv2D(c, f, 3, padding=padding, bias_init="glorot_uniform", algorithm=a, rng=seed).astype(dtype)
              for a in ("im2col", algorithm)]
    return layers


def run(layer, x, dy, need_dx=True):
    y = layer.forward(x, training=True)
    dx = layer.backward(dy, need_dx=need_dx)
    return y, dx, layer.grads["W"].copy(), layer.grads["b"].copy()


@pytest.mark.parametrize("seed", range(16))
@pytest.mark.parametrize("dtype, tolerance", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("algorithm", WINOGRADS)
def test_winograd_equals_im2col_on_random_shapes(seed, dtype, tolerance, algorithm):
    n, c, f, h, w, padding = random_case(seed)
    rng = np.random.default_rng(100 + seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    reference, fast = both(c, f, padding, dtype, seed, algorithm)
    dy = rng.standard_normal(reference.forward(x).shape).astype(dtype)
    for name, a, b in zip(("y", "dx", "dW", "db"), run(reference, x, dy), run(fast, x, dy)):
        assert a.shape == b.shape and a.dtype == b.dtype == dtype, name
        scale = np.abs(a).max()
        np.testing.assert_allclose(b, a, rtol=0, atol=tolerance * scale, err_msg=f"{name} for {random_case(seed)}")


@pytest.mark.parametrize("algorithm", WINOGRADS)
def test_winograd_equals_im2col_on_the_benchmark_shape(algorithm):
    rng = np.random.default_rng(7)
    reference, fast = both(32, 64, 0, np.float32, algorithm=algorithm)
    x = rng.standard_normal((16, 32, 13, 13)).astype(np.float32)
    dy = rng.standard_normal((16, 64, 11, 11)).astype(np.float32)
    for name, a, b in zip(("y", "dx", "dW", "db"), run(reference, x, dy), run(fast, x, dy)):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-5 * np.abs(a).max(), err_msg=name)


@pytest.mark.parametrize("padding, shape", [(0, (2, 2, 5, 4)), (1, (1, 3, 6, 6)), ((2, 1), (2, 2, 3, 5)), (0, (1, 1, 3, 3)),
                                            (1, (2, 2, 9, 8))])
@pytest.mark.parametrize("algorithm", WINOGRADS)
def test_winograd_gradients_match_finite_differences(padding, shape, algorithm):
    rng = np.random.default_rng(2)
    layer = Conv2D(shape[1], 3, 3, padding=padding, bias_init="glorot_uniform", algorithm=algorithm, rng=rng)
    checks = check_layer(layer, rng.standard_normal(shape), rng)
    assert [c.wrt for c in checks] == ["x", "W", "b"]
    for check in checks:
        assert check.error < TIGHT, f"{check.what} d{check.wrt}: relative error {check.error:.2e}"


def test_scratchnn_gradcheck_covers_the_winograd_path():
    cases = Conv2D.gradcheck_cases(np.random.default_rng(0))
    assert {layer.algorithm for layer, _ in cases} >= set(WINOGRADS)


def test_winograd_edge_filter_known_answer():
    # The Sobel x filter on a dark-left, bright-right image: 4 where the 3x3 window straddles the
    # edge. Winograd's transforms (sums, halves) of these small integers are exact in float32.
    image = np.zeros((1, 1, 5, 6), np.float32)
    image[..., 3:] = 1.0
    layer = Conv2D(1, 1, 3, algorithm="winograd")
    layer.params["W"][0, 0] = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
    np.testing.assert_array_equal(layer.forward(image)[0, 0], [[0, 4, 4, 0]] * 3)


def test_winograd4_is_the_one_dimensional_identity():
    # F(4, 3) on d = (d0..d5): Aᵀ[(G g) ⊙ (Bᵀ d)] = the four correlation outputs.
    d, g = np.array([1.0, 2.0, -1.0, 3.0, 0.5, -2.0]), np.array([0.5, -2.0, 4.0])
    y = winograd4.AT @ ((winograd4.G @ g) * (winograd4.BT @ d))
    np.testing.assert_allclose(y, [d[k:k + 3] @ g for k in range(4)], rtol=1e-13)


def test_winograd_kernel_transform_is_the_one_dimensional_identity():
    # F(2, 3) on d = (d0..d3), g = (g0, g1, g2): Aᵀ[(G g) ⊙ (Bᵀ d)] = the two correlation outputs.
    d, g = np.array([1.0, 2.0, -1.0, 3.0]), np.array([0.5, -2.0, 4.0])
    y = winograd.AT @ ((winograd.G @ g) * (winograd.BT @ d))
    np.testing.assert_allclose(y, [d[0:3] @ g, d[1:4] @ g])


@pytest.mark.parametrize("algorithm", WINOGRADS)
def test_winograd_skips_the_input_gradient_and_reuses_buffers_safely(algorithm):
    rng = np.random.default_rng(6)
    x1, x2 = rng.standard_normal((2, 3, 4, 7, 7)).astype(np.float32)
    dy = rng.standard_normal((3, 5, 5, 5)).astype(np.float32)
    layer = Conv2D(4, 5, 3, algorithm=algorithm, rng=0)
    y1 = layer.forward(x1)
    y1_before = y1.copy()
    layer.forward(x2)  # same shape: the tile buffers are rewritten
    np.testing.assert_array_equal(y1, y1_before, err_msg="a later forward changed an earlier output")
    dx = layer.backward(dy)
    grads = {k: g.copy() for k, g in layer.grads.items()}
    layer.forward(x2)
    assert layer.backward(dy, need_dx=False) is None
    for key, grad in grads.items():
        np.testing.assert_array_equal(layer.grads[key], grad, err_msg=f"Conv2D d{key}")
    fresh = Conv2D(4, 5, 3, algorithm=algorithm, rng=0)
    fresh.forward(x2)
    np.testing.assert_array_equal(fresh.backward(dy), dx)


@pytest.mark.parametrize("kwargs, message", [
    ({"algorithm": "fft"}, "algorithm must be one of im2col, winograd, winograd4, auto, got 'fft'"),
    ({"algorithm": "winograd", "kernel_size": 5}, "'winograd' needs a 3x3 kernel with stride 1"),
    ({"algorithm": "winograd", "stride": 2}, "'winograd' needs a 3x3 kernel with stride 1"),
    ({"algorithm": "winograd4", "kernel_size": 5}, "'winograd4' needs a 3x3 kernel with stride 1"),
])
def test_bad_algorithms_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Conv2D(2, 3, **{"kernel_size": 3, **kwargs})


def test_auto_picks_winograd_only_where_it_was_measured_faster():
    def auto(c, h, **kwargs):
        return Conv2D(c, 64, 3, **kwargs).winograd_scheme(h, h)
    assert auto(1, 28) is None  # a first layer: im2col
    assert auto(16, 14, padding=1) is None  # measured 0.71-1.12x
    assert auto(16, 28, padding=1) is winograd4  # 0.51-0.66x
    for c, h, padding in ((32, 14, 1), (32, 13, 0), (64, 13, 0), (64, 14, 1), (32, 28, 1)):
        assert auto(c, h, padding=padding) is winograd4, (c, h, padding)
    assert Conv2D(64, 64, 5).winograd_scheme(14, 14) is None  # not 3x3
    assert Conv2D(64, 64, 3, stride=2).winograd_scheme(14, 14) is None
    assert Conv2D(2, 2, 3, algorithm="winograd").winograd_scheme(5, 5) is winograd
    assert Conv2D(2, 2, 3, algorithm="winograd4").winograd_scheme(5, 5) is winograd4
    assert Conv2D(64, 64, 3, algorithm="im2col").winograd_scheme(14, 14) is None


def test_config_names_the_algorithm_only_when_not_the_default():
    assert Conv2D(2, 3, 3).algorithm == "auto"
    assert "algorithm" not in Conv2D(2, 3, 3).config()  # old files, which never name it, load as before
    for algorithm in ("im2col", "winograd", "winograd4", "auto"):
        layer = Conv2D(2, 3, 3, algorithm=algorithm)
        rebuilt = layer_from_config(layer_to_config(layer))
        assert rebuilt.algorithm == algorithm and rebuilt.config() == layer.config()


def test_a_model_file_keeps_the_algorithm_and_refuses_an_unknown_one(tmp_path):
    model = Sequential([Conv2D(1, 2, 3, algorithm="winograd", rng=0), Flatten(), Dense(18, 3, rng=0)],
                       input_shape=(1, 5, 5))
    path = save(model, tmp_path / "model.safetensors")
    assert load(path).layers[0].algorithm == "winograd"
    architecture = model.config()
    architecture["layers"][0]["config"]["algorithm"] = "fft"
    with pytest.raises(ModelFileError, match=r"layer 0 \(Conv2D\) algorithm must be one of im2col, winograd, winograd4, auto"):
        state_shapes(architecture)
    architecture["layers"][0]["config"].update(algorithm="winograd", kernel_size=2)  # a 2x2 kernel
    with pytest.raises(ModelFileError, match=r"layer 0 \(Conv2D\): algorithm 'winograd' needs a 3x3 kernel"):
        state_shapes(architecture)


@pytest.mark.parametrize("algorithm, per_call", [
    ("winograd", 14 * 14 * 32),             # the padded image, allocated per call
    ("winograd4", 14 * 14 * 32 + 16 * 9 * 64)])  # and the whole 4x4 tiles, cut to 11x11 outputs
def test_work_floats_counts_the_winograd_arrays(algorithm, per_call):
    layer = Conv2D(32, 64, 3, algorithm=algorithm, rng=0)
    layer.forward(np.zeros((2, 32, 13, 13), np.float32))
    held = sum(a.size for a in layer._scratch.values()) // 2  # per sample
    assert layer.work_floats((32, 13, 13)) == held + per_call


def test_a_winograd_network_trains_to_the_same_weights_on_both_paths():
    # fit's fast path packs the parameters into flat arrays: Winograd must read and write those.
    from scratchnn.nn import MaxPool2D, ReLU
    from scratchnn.optim import Adam
    from scratchnn.training.fit import fit

    def train(fast):
        rng = np.random.default_rng(0)
        model = Sequential([Conv2D(1, 4, 3, padding=1, algorithm="winograd", rng=rng), ReLU(), MaxPool2D(2),
                            Conv2D(4, 4, 3, algorithm="winograd", rng=rng), ReLU(), Flatten(), Dense(16, 3, rng=rng)],
                           input_shape=(1, 8, 8)).astype(np.float64)
        data = np.random.default_rng(1)
        x, y = data.random((40, 1, 8, 8)), data.integers(0, 3, 40)
        fit(model, Adam(lr=1e-2), x, y, epochs=3, batch_size=8, rng=np.random.default_rng(2), fast=fast)
        return model.state_dict()

    initial = Conv2D(1, 4, 3, padding=1, rng=np.random.default_rng(0)).params["W"]
    textbook, fast = train(False), train(True)
    assert not np.allclose(textbook["0.W"], initial), "the weights never moved: comparing them proves nothing"
    for name in textbook:
        np.testing.assert_allclose(fast[name], textbook[name], rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("conv", [
    Conv2D(1, 32, 3), Conv2D(16, 64, 3, padding=1), Conv2D(32, 64, 3), Conv2D(64, 64, 3),
    Conv2D(64, 64, 5), Conv2D(64, 64, 3, stride=2), Conv2D(2, 2, 3, algorithm="winograd"), Conv2D(16, 8, 3),
    Conv2D(2, 2, 3, algorithm="winograd4"), Conv2D(8, 8, 3),
    Conv2D(64, 64, 3, algorithm="im2col")], ids=repr)
def test_may_use_winograd_says_whether_some_input_size_runs_it(conv):
    sides = range(3, 40)
    assert conv.may_use_winograd() == any(conv.winograd_scheme(h, w) is not None for h in sides for w in sides)
