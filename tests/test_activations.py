"""LeakyReLU, Sigmoid and Tanh: known answers, stability, gradients, dtype, config and model files."""
import numpy as np
import pytest

from scratchnn import Dense, Sequential
from scratchnn.errors import ConfigError
from scratchnn.gradcheck import check_layer
from scratchnn.nn.gradcheck_inputs import away_from_zero
from scratchnn.io import MODEL_FILE, load, save
from scratchnn.nn import LeakyReLU, Sigmoid, Tanh, layer_from_config, layer_to_config

TIGHT = 1e-7
LN3, LN2 = np.log(3.0), np.log(2.0)


def test_leaky_relu_known_answer():
    layer = LeakyReLU(0.1)
    y = layer.forward(np.array([[-2.0, -0.5, 0.0, 3.0]]))
    np.testing.assert_allclose(y, [[-0.2, -0.05, 0.0, 3.0]], rtol=1e-15)
    dx = layer.backward(np.array([[10.0, 10.0, 10.0, 10.0]]))
    np.testing.assert_allclose(dx, [[1.0, 1.0, 1.0, 10.0]], rtol=1e-15)  # slope α at 0, as ReLU'(0) = 0


def test_leaky_relu_with_alpha_zero_is_relu():
    x = away_from_zero(np.random.default_rng(0), (4, 5))
    np.testing.assert_array_equal(LeakyReLU(0.0).forward(x), np.maximum(x, 0))


def test_sigmoid_known_answer():
    layer = Sigmoid()
    y = layer.forward(np.array([[0.0, LN3, -LN3]]))  # σ(ln 3) = 3/4, σ(−ln 3) = 1/4
    np.testing.assert_allclose(y, [[0.5, 0.75, 0.25]], rtol=1e-15)
    dx = layer.backward(np.array([[1.0, 1.0, 2.0]]))  # y(1 − y) = 1/4, 3/16, 3/16
    np.testing.assert_allclose(dx, [[0.25, 0.1875, 0.375]], rtol=1e-15)


def test_tanh_known_answer():
    layer = Tanh()
    y = layer.forward(np.array([[0.0, LN2, -LN2]]))  # tanh(ln 2) = (2 − 1/2)/(2 + 1/2) = 0.6
    np.testing.assert_allclose(y, [[0.0, 0.6, -0.6]], atol=1e-15)
    dx = layer.backward(np.array([[1.0, 1.0, 2.0]]))  # 1 − y² = 1, 0.64, 0.64
    np.testing.assert_allclose(dx, [[1.0, 0.64, 1.28]], rtol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_and_tanh_are_stable_for_huge_inputs(dtype):
    x = np.array([[-1000.0, -100.0, 100.0, 1000.0]], dtype)
    with np.errstate(all="raise"):  # any overflow, underflow or invalid operation raises
        for layer, expected in ((Sigmoid(), [0.0, 0.0, 1.0, 1.0]), (Tanh(), [-1.0, -1.0, 1.0, 1.0])):
            y = layer.forward(x)
            dx = layer.backward(np.ones_like(x))
            np.testing.assert_allclose(y, [expected], atol=1e-30, err_msg=repr(layer))
            np.testing.assert_allclose(dx, 0, atol=1e-30, err_msg=repr(layer))
            assert y.dtype == dx.dtype == dtype


def test_sigmoid_keeps_relative_precision_far_into_the_tail():
    # 1 − σ(30) would cancel to 0; the stable form computes σ(−30) = e⁻³⁰/(1 + e⁻³⁰) directly.
    x = np.array([[-30.0, -5.0, -1.0]])
    y = Sigmoid().forward(x)
    np.testing.assert_allclose(y, np.exp(x) / (1 + np.exp(x)), rtol=1e-15)
    np.testing.assert_allclose(Sigmoid().forward(-x) + y, 1, rtol=1e-15)  # σ(−x) = 1 − σ(x)


LAYERS = {"LeakyReLU": lambda: LeakyReLU(0.2), "Sigmoid": Sigmoid, "Tanh": Tanh}


@pytest.mark.parametrize("name", LAYERS)
def test_gradients_match_finite_differences(name):
    rng = np.random.default_rng(5)
    x = 2 * away_from_zero(rng, (6, 5))  # away from LeakyReLU's kink
    for check in check_layer(LAYERS[name](), x, rng):
        assert check.error < TIGHT, f"{check.what} d{check.wrt}: relative error {check.error:.2e}"


@pytest.mark.parametrize("name", LAYERS)
def test_float32_stays_float32(name):
    layer = LAYERS[name]()
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    y = layer.forward(x, training=True)
    dx = layer.backward(np.ones_like(y))
    assert y.dtype == np.float32 and dx.dtype == np.float32, f"{name}: {y.dtype}, {dx.dtype}"


@pytest.mark.parametrize("name", LAYERS)
def test_backward_needs_a_forward_first(name):
    with pytest.raises(RuntimeError, match="before forward"):
        LAYERS[name]().backward(np.ones((2, 3)))


def test_leaky_relu_config_round_trip_and_validation():
    rebuilt = layer_from_config(layer_to_config(LeakyReLU(0.2)))
    assert isinstance(rebuilt, LeakyReLU) and rebuilt.alpha == 0.2
    assert repr(rebuilt) == "LeakyReLU(alpha=0.2)"
    for bad in (-0.1, 1.0):
        with pytest.raises(ConfigError, match=r"alpha must be in \[0, 1\)"):
            LeakyReLU(bad)


@pytest.mark.parametrize("name", LAYERS)
def test_model_file_round_trip_gives_identical_predictions(tmp_path, name):
    model = Sequential([Dense(5, 8, rng=0), LAYERS[name](), Dense(8, 3, rng=1)])
    x = np.random.default_rng(2).standard_normal((10, 5)).astype(np.float32)
    loaded = load(save(model, tmp_path / MODEL_FILE))
    assert type(loaded.layers[1]) is type(model.layers[1])
    assert loaded.config() == model.config()
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))
