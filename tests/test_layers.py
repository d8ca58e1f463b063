"""Every layer: finite-difference gradients, shapes, dtype, and the properties of the contract."""
import numpy as np
import pytest

from scratchnn.errors import ConfigError, ShapeError
from scratchnn.gradcheck import check_layer, standard_cases
from scratchnn.nn import LAYER_TYPES, Dense, Layer, ReLU, layer_from_config, layer_to_config
from scratchnn.nn.gradcheck_inputs import away_from_zero

TIGHT = 1e-7


def cases():
    return standard_cases(np.random.default_rng(0))


@pytest.mark.parametrize("index", range(len(cases())))
def test_gradients_match_finite_differences(index):
    layer, x = cases()[index]
    for check in check_layer(layer, x, np.random.default_rng(1)):
        assert check.error < TIGHT, f"{check.what} d{check.wrt}: relative error {check.error:.2e}"


@pytest.mark.parametrize("name", list(LAYER_TYPES))
def test_every_layer_type_declares_its_own_gradcheck_cases(name):
    own = LAYER_TYPES[name].gradcheck_cases(np.random.default_rng(0))
    assert own, f"{name}.gradcheck_cases returns no case"
    assert all(type(layer) is LAYER_TYPES[name] for layer, _ in own), f"{name} checks another layer type"
    for layer, _ in own:  # model files and checkpoints tell buffers from parameters by these names
        assert set(layer.buffers) == set(LAYER_TYPES[name].buffer_names), f"{name}.buffer_names"


def test_a_layer_type_without_a_gradcheck_case_is_named():
    class Unchecked(Layer):
        pass
    try:
        with pytest.raises(NotImplementedError, match="Unchecked declares no gradient-check case"):
            standard_cases(np.random.default_rng(0))
    finally:
        del LAYER_TYPES["Unchecked"]


@pytest.mark.parametrize("index", range(len(cases())))
def test_forward_and_backward_do_not_mutate_their_inputs(index):
    layer, x = cases()[index]
    x = x.astype(np.float32)
    layer.astype(np.float32)
    x_before = x.copy()
    y = layer.forward(x, training=True)
    dy = np.random.default_rng(2).standard_normal(y.shape).astype(np.float32)
    dy_before = dy.copy()
    layer.backward(dy)
    np.testing.assert_array_equal(x, x_before, err_msg=f"{layer!r} forward mutated x")
    np.testing.assert_array_equal(dy, dy_before, err_msg=f"{layer!r} backward mutated dy")


@pytest.mark.parametrize("index", range(len(cases())))
def test_dtype_follows_the_layer(index):
    layer, x = cases()[index]
    for dtype in (np.float32, np.float64):
        layer.astype(dtype)
        y = layer.forward(x.astype(dtype))
        dx = layer.backward(np.ones_like(y))
        assert y.dtype == dtype and dx.dtype == dtype, f"{layer!r}: {y.dtype}, {dx.dtype} for {dtype}"
        assert all(g.dtype == dtype for g in layer.grads.values())


@pytest.mark.parametrize("index", range(len(cases())))
def test_a_batch_of_one_equals_the_slice_of_a_larger_batch(index):
    layer, x = cases()[index]
    full = layer.forward(x)
    np.testing.assert_allclose(layer.forward(x[1:2]), full[1:2], rtol=1e-12)


@pytest.mark.parametrize("index", range(len(cases())))
def test_backward_before_forward_is_a_clear_error(index):
    layer = layer_from_config(layer_to_config(cases()[index][0]))
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones((2, 3)))


def test_dense_known_answer():
    layer = Dense(2, 1)
    layer.params["W"][...] = [[2.0], [3.0]]
    layer.params["b"][...] = [1.0]
    y = layer.forward(np.array([[1.0, 1.0], [0.0, 2.0]], np.float32))
    np.testing.assert_array_equal(y, [[6.0], [7.0]])
    layer.backward(np.array([[1.0], [1.0]], np.float32))
    np.testing.assert_array_equal(layer.grads["W"], [[1.0], [3.0]])  # xᵀ·dy
    np.testing.assert_array_equal(layer.grads["b"], [2.0])           # Σ dy over the batch, per unit


def test_dense_skips_the_input_gradient_when_asked():
    layer = Dense(3, 2, rng=0)
    layer.forward(np.ones((4, 3), np.float32))
    assert layer.backward(np.ones((4, 2), np.float32), need_dx=False) is None
    assert layer.grads["W"].any()


def test_dense_rejects_a_wrong_input_width():
    with pytest.raises(ShapeError, match=r"expects input of shape \(N, 784\)"):
        Dense(784, 10, rng=0).forward(np.zeros((5, 783), np.float32))


def test_dense_initialisation_is_seeded_and_in_range():
    a = Dense(784, 10, init="seed_uniform", bias_init="seed_uniform", rng=0)
    b = Dense(784, 10, init="seed_uniform", bias_init="seed_uniform", rng=0)
    np.testing.assert_array_equal(a.params["W"], b.params["W"])
    assert a.params["W"].dtype == np.float32
    assert -0.5 <= a.params["W"].min() and a.params["W"].max() < 0.5
    assert abs(a.params["W"].mean()) < 0.02  # uniform around 0


def test_he_normal_has_the_promised_spread():
    w = Dense(1000, 500, init="he_normal", rng=0).params["W"]
    assert abs(w.std() - np.sqrt(2 / 1000)) < 0.002


def test_glorot_uniform_stays_within_its_limit():
    w = Dense(300, 100, init="glorot_uniform", rng=0).params["W"]
    limit = np.sqrt(6 / 400)
    assert w.min() >= -limit and w.max() <= limit and w.max() > 0.9 * limit


def test_unknown_initialiser_names_the_choices():
    with pytest.raises(ConfigError, match="he_normal"):
        Dense(3, 2, init="ones")


def test_relu_known_answer_and_kink():
    relu = ReLU()
    y = relu.forward(np.array([[-1.0, 0.0, 2.0]]))
    np.testing.assert_array_equal(y, [[0.0, 0.0, 2.0]])
    np.testing.assert_array_equal(relu.backward(np.array([[5.0, 5.0, 5.0]])), [[0.0, 0.0, 5.0]])


def test_layer_config_round_trip():
    layer = Dense(7, 3, init="glorot_uniform", rng=0)
    rebuilt = layer_from_config(layer_to_config(layer))
    assert rebuilt.config() == layer.config()
    with pytest.raises(ConfigError, match="unknown layer type"):
        layer_from_config({"type": "Bogus"})


def test_away_from_zero_keeps_a_margin():
    v = away_from_zero(np.random.default_rng(0), (100,), margin=0.1)
    assert np.abs(v).min() >= 0.1


@pytest.mark.parametrize("order", ["C", "F"])
def test_dense_gives_the_same_numbers_for_either_memory_order(order):
    rng = np.random.default_rng(0)
    layer = Dense(6, 4, rng=rng).astype(np.float64)
    x = np.asarray(rng.standard_normal((5, 6)), order=order)
    dy = np.asarray(rng.standard_normal((5, 4)), order=order)
    W, b = layer.params["W"], layer.params["b"]
    np.testing.assert_allclose(layer.forward(x), np.ascontiguousarray(x) @ W + b, rtol=1e-13)
    np.testing.assert_allclose(layer.backward(dy), np.ascontiguousarray(dy) @ W.T, rtol=1e-13)
    np.testing.assert_allclose(layer.grads["W"], x.T @ dy, rtol=1e-13)
    np.testing.assert_allclose(layer.grads["b"], dy.sum(axis=0), rtol=1e-13)
