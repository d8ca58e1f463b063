"""Dropout: p is the probability of dropping; the mask is seeded, rescaled, and reused by backward."""
import numpy as np
import pytest

from scratchnn import Dense, Sequential
from scratchnn.errors import ConfigError
from scratchnn.gradcheck import check_layer
from scratchnn.io import MODEL_FILE, load, save
from scratchnn.nn import Dropout, ReLU, layer_from_config, layer_to_config

TIGHT = 1e-7


def test_eval_mode_is_the_identity_without_a_copy():
    layer = Dropout(0.5, rng=0)
    x = np.random.default_rng(1).standard_normal((4, 6)).astype(np.float32)
    assert layer.forward(x) is x
    dy = np.ones_like(x)
    assert layer.backward(dy) is dy


def test_p_zero_is_the_identity_even_while_training():
    x = np.ones((3, 4), np.float32)
    assert Dropout(0.0).forward(x, training=True) is x


def test_drop_rate_is_p_and_kept_units_are_scaled_by_one_over_one_minus_p():
    p = 0.3
    y = Dropout(p, rng=0).forward(np.ones((1000, 1000), np.float32), training=True)
    dropped = np.mean(y == 0)
    assert abs(dropped - p) < 0.003, f"dropped {dropped:.4f} of the units, expected {p}"  # ~6 sigma
    np.testing.assert_array_equal(np.unique(y), np.array([0, 1 / (1 - p)], np.float32))


def test_expectation_is_preserved():
    x = np.random.default_rng(1).uniform(1, 2, (500, 400)).astype(np.float32)
    y = Dropout(0.5, rng=2).forward(x, training=True)
    assert abs(y.mean() / x.mean() - 1) < 0.01


def test_backward_applies_the_forward_mask():
    # With x = 1 the output is the scaled mask itself, so dx for dy = 1 must equal y exactly:
    # a backward that ignored the mask (or redrew it) would fail.
    layer = Dropout(0.4, rng=3)
    y = layer.forward(np.ones((50, 20), np.float32), training=True)
    dx = layer.backward(np.ones((50, 20), np.float32))
    np.testing.assert_array_equal(dx, y)
    assert 0 < np.count_nonzero(dx == 0) < dx.size


def test_gradients_match_finite_differences():
    rng = np.random.default_rng(4)
    layer = Dropout(0.3, rng=5)
    for check in check_layer(layer, rng.standard_normal((6, 7)), rng, training=True):
        assert check.error < TIGHT, f"{check.what} d{check.wrt}: relative error {check.error:.2e}"
    for check in check_layer(layer, rng.standard_normal((6, 7)), rng, training=False):
        assert check.error < TIGHT, f"{check.what} (eval) d{check.wrt}: relative error {check.error:.2e}"


def test_same_seed_same_mask_and_fresh_masks_each_call():
    x = np.ones((20, 30), np.float32)
    a, b = Dropout(0.5, rng=7), Dropout(0.5, rng=7)
    first = a.forward(x, training=True)
    np.testing.assert_array_equal(first, b.forward(x, training=True))
    assert not np.array_equal(first, a.forward(x, training=True)), "the mask must change between batches"
    assert not np.array_equal(first, Dropout(0.5, rng=8).forward(x, training=True))


def test_a_model_drives_its_dropout_layers_with_its_own_generator():
    def model():
        return Sequential([Dense(6, 40, rng=0), Dropout(0.5), ReLU(), Dense(40, 3, rng=1)], rng=11)

    x = np.random.default_rng(0).standard_normal((8, 6)).astype(np.float32)
    a, b = model(), model()
    assert a.layers[1].rng is a.rng
    np.testing.assert_array_equal(a.forward(x, training=True), b.forward(x, training=True))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(dtype):
    layer = Dropout(0.5, rng=0)
    y = layer.forward(np.ones((4, 5), dtype), training=True)
    dx = layer.backward(np.ones((4, 5), dtype))
    assert y.dtype == dtype and dx.dtype == dtype


def test_skips_the_input_gradient_when_asked():
    layer = Dropout(0.5, rng=0)
    layer.forward(np.ones((2, 3), np.float32), training=True)
    assert layer.backward(np.ones((2, 3), np.float32), need_dx=False) is None


@pytest.mark.parametrize("p", [1, 1.5, -0.1, float("nan"), "half"])
def test_p_outside_zero_to_one_is_a_config_error(p):
    with pytest.raises(ConfigError, match=r"dropout probability p must be"):
        Dropout(p)


def test_config_round_trip():
    rebuilt = layer_from_config(layer_to_config(Dropout(0.25)))
    assert isinstance(rebuilt, Dropout) and rebuilt.p == 0.25 and repr(rebuilt) == "Dropout(p=0.25)"


def test_model_file_round_trip_gives_identical_predictions(tmp_path):
    model = Sequential([Dense(5, 8, rng=0), Dropout(0.25), Dense(8, 3, rng=1)])
    x = np.random.default_rng(2).standard_normal((10, 5)).astype(np.float32)
    loaded = load(save(model, tmp_path / MODEL_FILE))
    assert loaded.config() == model.config() and loaded.layers[1].p == 0.25
    assert loaded.layers[1].rng is loaded.rng
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))
