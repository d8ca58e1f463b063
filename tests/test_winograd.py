"""Conv2D's Winograd paths, F(2x2, 3x3) and F(m x m, 3x3) for m = 4, 5, 7: the same convolution as
im2col, their exact gradients, the choice."""
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
    winograd5,
    winograd7,
)
from scratchnn.nn.winograd4 import F4, MatrixTiles
from scratchnn.nn.winograd5 import F5
from scratchnn.nn.winograd7 import F7

TIGHT = 1e-7
WINOGRADS = ("winograd", "winograd4", "winograd5", "winograd7")
FLOAT32_ERROR = {"winograd7": 1e-4}  # of the largest output; the others 1e-5 or 2e-5 (see nn/winograd7.py)


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
    tolerance = FLOAT32_ERROR.get(algorithm, tolerance) if dtype == np.float32 else tolerance
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
        np.testing.assert_allclose(b, a, rtol=0, atol=FLOAT32_ERROR.get(algorithm, 1e-5) * np.abs(a).max(), err_msg=name)


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


@pytest.mark.parametrize("module", [winograd4, winograd5, winograd7], ids=["F(4, 3)", "F(5, 3)", "F(7, 3)"])
def test_the_matrix_schemes_are_the_one_dimensional_identity(module):
    # F(m, 3) on d = (d0..d_{m+1}): Aᵀ[(G g) ⊙ (Bᵀ d)] = the m correlation outputs.
    m = len(module.AT)
    d, g = np.random.default_rng(m).standard_normal(m + 2), np.array([0.5, -2.0, 4.0])
    y = module.AT @ ((module.G @ g) * (module.BT @ d))
    np.testing.assert_allclose(y, [d[k:k + 3] @ g for k in range(m)], rtol=1e-12)


def test_the_bigger_tiles_round_in_float32_as_their_modules_say():
    # tiles against the direct 3x3 correlation, every step in float32 (nn/winograd5.py, winograd7.py)
    rng = np.random.default_rng(0)
    for scheme, bound in ((F4, 4e-6), (F5, 7e-6), (F7, 3e-5)):
        s = scheme.SIDE
        d, g = rng.standard_normal((500, s, s)), rng.standard_normal((500, 3, 3))
        exact = np.stack([np.stack([(d[:, i:i + 3, j:j + 3] * g).sum((1, 2)) for j in range(scheme.TILE)], 1)
                          for i in range(scheme.TILE)], 1)
        bt, gm, at = (a.astype(np.float32) for a in (scheme.BT, scheme.G, scheme.AT))
        y = at @ ((gm @ g.astype(np.float32) @ gm.T) * (bt @ d.astype(np.float32) @ bt.T)) @ at.T
        assert np.abs(y - exact).max() < bound * np.abs(exact).max(), scheme


def test_a_matrix_scheme_refuses_matrices_that_do_not_fit():
    with pytest.raises(ValueError, match=r"F\(5x5, 3x3\) needs Bᵀ 7x7, G 7x3"):
        MatrixTiles(winograd4.BT, winograd5.G, winograd5.AT)


def test_the_cook_toom_construction_gives_the_f4_matrices_and_refuses_bad_points():
    built = MatrixTiles.from_points(0, 1, -1, 2, -2)
    for name in ("BT", "G", "AT"):
        np.testing.assert_array_equal(getattr(built, name), getattr(winograd4, name), err_msg=name)
    for points in ((0, 1), (0, 1, 1, 2), (0, 2, -1)):  # too few, repeated, the second not 1
        with pytest.raises(ValueError, match="distinct points, the second 1"):
            MatrixTiles.from_points(*points)


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
    ({"algorithm": "fft"}, "algorithm must be one of im2col, winograd, winograd4, winograd5, winograd7, auto, got 'fft'"),
    ({"algorithm": "winograd", "kernel_size": 5}, "'winograd' needs a 3x3 kernel with stride 1"),
    ({"algorithm": "winograd", "stride": 2}, "'winograd' needs a 3x3 kernel with stride 1"),
    ({"algorithm": "winograd4", "kernel_size": 5}, "'winograd4' needs a 3x3 kernel with stride 1"),
    ({"algorithm": "winograd5", "stride": 2}, "'winograd5' needs a 3x3 kernel with stride 1"),
])
def test_bad_algorithms_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Conv2D(2, 3, **{"kernel_size": 3, **kwargs})


def test_auto_picks_winograd_only_where_it_was_measured_faster():
    def auto(c, h, **kwargs):
        return Conv2D(c, 64, 3, **kwargs).winograd_scheme(h, h)
    assert auto(1, 28) is None  # a first layer: im2col
    assert auto(16, 13, padding=0) is None  # 11x11 outputs, F(4x4, 3x3): 0.66-1.20x of im2col
    assert auto(8, 12, padding=0) is None  # 10x10 outputs
    assert auto(16, 14, padding=1) is F7  # 0.43-0.65x
    assert auto(8, 28, padding=1) is F7  # 0.42-0.87x
    for c, h, padding in ((32, 13, 0), (64, 13, 0), (32, 12, 1)):  # 11x11, 12x12 outputs: ties with F(7x7)
        assert auto(c, h, padding=padding) is F4, (c, h, padding)
    for c, h, padding in ((64, 10, 1), (32, 7, 0)):  # 10x10 and 5x5: tiles of 5
        assert auto(c, h, padding=padding) is F5, (c, h, padding)
    for c, h, padding in ((32, 28, 1), (32, 14, 1), (64, 14, 1), (32, 13, 1), (64, 7, 1)):  # tiles of 7
        assert auto(c, h, padding=padding) is F7, (c, h, padding)
    assert Conv2D(64, 64, 5).winograd_scheme(14, 14) is None  # not 3x3
    assert Conv2D(64, 64, 3, stride=2).winograd_scheme(14, 14) is None
    assert Conv2D(2, 2, 3, algorithm="winograd").winograd_scheme(5, 5) is winograd
    assert Conv2D(2, 2, 3, algorithm="winograd4").winograd_scheme(5, 5) is F4
    assert Conv2D(2, 2, 3, algorithm="winograd5").winograd_scheme(28, 28) is F5
    assert Conv2D(2, 2, 3, algorithm="winograd7").winograd_scheme(5, 5) is F7
    assert Conv2D(64, 64, 3, algorithm="im2col").winograd_scheme(14, 14) is None


def test_config_names_the_algorithm_only_when_not_the_default():
    assert Conv2D(2, 3, 3).algorithm == "auto"
    assert "algorithm" not in Conv2D(2, 3, 3).config()  # old files, which never name it, load as before
    for algorithm in ("im2col", *WINOGRADS, "auto"):
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
    with pytest.raises(ModelFileError, match=r"layer 0 \(Conv2D\) algorithm must be one of im2col, winograd, winograd4, winograd5, winograd7, auto"):
        state_shapes(architecture)
    architecture["layers"][0]["config"].update(algorithm="winograd", kernel_size=2)  # a 2x2 kernel
    with pytest.raises(ModelFileError, match=r"layer 0 \(Conv2D\): algorithm 'winograd' needs a 3x3 kernel"):
        state_shapes(architecture)


@pytest.mark.parametrize("algorithm, per_call", [
    ("winograd", 14 * 14 * 32),             # the padded image, allocated per call
    ("winograd4", 13 * 13 * 32 + 16 * 9 * 64),  # the image in pixel-major order, the whole 4x4 tiles (11x11 outputs)
    ("winograd5", 13 * 13 * 32 + 25 * 9 * 64),  # 5x5 tiles: 15x15 outputs
    ("winograd7", 13 * 13 * 32 + 49 * 4 * 64)])  # 7x7 tiles: 14x14 outputs
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
    Conv2D(2, 2, 3, algorithm="winograd4"), Conv2D(2, 2, 3, algorithm="winograd5"),
    Conv2D(2, 2, 3, algorithm="winograd7"), Conv2D(8, 8, 3),
    Conv2D(64, 64, 3, algorithm="im2col")], ids=repr)
def test_may_use_winograd_says_whether_some_input_size_runs_it(conv):
    sides = range(3, 40)
    assert conv.may_use_winograd() == any(conv.winograd_scheme(h, w) is not None for h in sides for w in sides)
