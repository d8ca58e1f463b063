import copy

import numpy as np
import pytest

from scratchnn import Dense, ReLU, Sequential, SoftmaxCrossEntropy
from scratchnn.errors import ShapeError
from scratchnn.gradcheck import check_model
from scratchnn.optim import SGD
from scratchnn.training.fit import fit


def small_model(seed=0, sizes=(8, 6, 10)):
    rng = np.random.default_rng(seed)
    layers = []
    for i, (d, m) in enumerate(zip(sizes, sizes[1:])):
        layers.append(Dense(d, m, rng=rng))
        if i < len(sizes) - 2:
            layers.append(ReLU())
    return Sequential(layers)


def test_end_to_end_gradients_match_finite_differences():
    rng = np.random.default_rng(3)
    model = small_model(sizes=(8, 7, 6, 10))
    checks = check_model(model, SoftmaxCrossEntropy(), rng.standard_normal((5, 8)), rng.integers(0, 10, 5))
    assert len(checks) == 6
    for check in checks:
        assert check.error < 1e-7, f"parameter {check.wrt}: relative error {check.error:.2e}"


def test_skipping_the_first_input_gradient_changes_no_parameter_gradient():
    rng = np.random.default_rng(0)
    x, labels = rng.standard_normal((5, 8)).astype(np.float32), rng.integers(0, 10, 5)
    grads = []
    for need_dx in (True, False):
        model, loss = small_model(), SoftmaxCrossEntropy()
        loss.forward(model.forward(x), labels)
        dx = model.backward(loss.backward(), need_dx=need_dx)
        assert (dx is None) == (not need_dx)
        grads.append({name: g.copy() for name, _, g in model.named_parameters()})
    for name in grads[0]:
        np.testing.assert_array_equal(grads[0][name], grads[1][name], err_msg=name)


def test_initial_loss_is_about_ln_10():
    rng = np.random.default_rng(0)
    model = Sequential([Dense(784, 64, rng=rng), ReLU(), Dense(64, 10, init="glorot_uniform", rng=rng)])
    model.layers[-1].params["W"] *= 0.01  # near-uniform predictions
    x = rng.random((200, 784), dtype=np.float32)
    loss = SoftmaxCrossEntropy().forward(model.forward(x), rng.integers(0, 10, 200))
    assert loss == pytest.approx(np.log(10), abs=0.05)


def test_named_parameters_and_state_dict_use_layer_index_names():
    model = small_model()
    assert [n for n, _, _ in model.named_parameters()] == ["0.W", "0.b", "2.W", "2.b"]
    state = model.state_dict()
    assert np.array_equal(state["0.W"], model.layers[0].params["W"])
    assert not np.shares_memory(state["0.W"], model.layers[0].params["W"])  # a snapshot, not the weights
    assert model.num_parameters == 8 * 6 + 6 + 6 * 10 + 10


def test_load_state_dict_copies_and_is_strict():
    a, b = small_model(0), small_model(1)
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    x = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    state = a.state_dict()
    with pytest.raises(ShapeError, match=r"parameter '2.W' has shape \(3, 10\), model expects \(6, 10\)"):
        b.load_state_dict({**state, "2.W": np.zeros((3, 10), np.float32)})
    with pytest.raises(ShapeError, match=r"missing \['0.b'\]"):
        b.load_state_dict({k: v for k, v in state.items() if k != "0.b"})
    with pytest.raises(ShapeError, match=r"unexpected \['9.W'\]"):
        b.load_state_dict({**state, "9.W": np.zeros(1)})


def test_config_round_trip_rebuilds_the_same_architecture():
    model = small_model()
    rebuilt = Sequential.from_config(model.config())
    assert rebuilt.config() == model.config()
    assert rebuilt.input_shape == (8,)


def test_predict_proba_rows_sum_to_one_and_batches_agree():
    model = small_model()
    x = np.random.default_rng(0).standard_normal((10, 8)).astype(np.float32)
    probs = model.predict_proba(x, batch_size=3)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(probs, model.predict_proba(x, batch_size=100), rtol=1e-6)
    np.testing.assert_array_equal(model.predict(x), probs.argmax(axis=1))
    assert model.predict_proba(x[0]).shape == (1, 10)  # one sample becomes a batch of one


@pytest.mark.parametrize("x, message", [
    (np.zeros((2, 7)), r"samples of shape \(8,\)"),
    (np.full((2, 8), np.nan), "contains 16 NaN or infinite value"),
    (np.array([["a"] * 8]), r"input must be real numbers \(pixels scaled to 0\.\.1\), got dtype <U1"),
    # the numerics audit: float64 1e39 is infinite in float32, and was called "NaN or infinite"
    (np.full((2, 8), 1e39), r"input holds values up to 1e\+39, beyond float32's range \(±3.4e\+38\)"),
])
def test_predict_rejects_bad_input(x, message):
    with pytest.raises(ShapeError, match=message):
        small_model().predict(x)
    if "range" in message or "NaN" in message:  # fit reads its data the same way
        with pytest.raises(ShapeError, match=message.replace("input", "training data")):
            fit(small_model(), SGD(0.1), x, np.zeros(len(x), int), epochs=1)


def test_forward_rejects_a_wrong_shape():
    with pytest.raises(ShapeError, match=r"model expects input of shape \(N, 8\)"):
        small_model().forward(np.zeros((2, 9), np.float32))


def test_summary_lists_layers_shapes_and_parameters():
    text = small_model().summary()
    assert "Dense(in_features=8, out_features=6" in text and "(N, 10)" in text
    assert "total parameters: 124" in text
    assert small_model().widths() == "8 -> 6 -> 10"


def test_astype_casts_every_parameter():
    model = small_model().astype(np.float64)
    assert all(p.dtype == np.float64 and g.dtype == np.float64 for _, p, g in model.named_parameters())
    assert model.dtype == np.float64


def test_inference_batches_are_sized_to_fit_the_memory_budget():
    from scratchnn.nn import Conv2D, Flatten, MaxPool2D

    mlp = Sequential([Dense(784, 512, rng=0), ReLU(), Dense(512, 10, rng=1)])
    assert mlp.inference_batch_size() == 4096  # ~7 kB a row: the cap, not the budget, decides
    cnn = Sequential([Conv2D(1, 32, 3, rng=0), ReLU(), MaxPool2D(2), Flatten(), Dense(32 * 13 * 13, 10, rng=1)],
                     input_shape=(1, 28, 28))
    # per digit: conv and ReLU outputs 32x26x26, pooled and flattened 32x13x13, the logits,
    # the convolution's 26x26 im2col rows of 3·3·1 + 1 numbers and the pool's 13x13 of 2·2·32
    floats = 2 * 32 * 26 * 26 + 2 * 32 * 13 * 13 + 10 + 26 * 26 * 10 + 13 * 13 * 4 * 32
    assert cnn.inference_batch_size(memory=floats * 4 * 100) == 100
    assert cnn.inference_batch_size(memory=1) == 1
    x = np.random.default_rng(0).random((7, 1, 28, 28), dtype=np.float32)
    small = cnn.inference_batch_size(memory=floats * 4 * 3)
    assert small == 3 and np.allclose(cnn.predict_proba(x), cnn.predict_proba(x, batch_size=7), atol=1e-6)




def test_forward_steps_walk_the_same_pass_as_forward():
    rng = np.random.default_rng(0)
    model = Sequential([Dense(6, 5, rng=rng), ReLU(), Dense(5, 3, rng=rng)])
    x = rng.standard_normal((4, 6)).astype(np.float32)
    steps = list(model.forward_steps(x))
    assert [(i, layer) for i, layer, _ in steps] == list(enumerate(model.layers))
    assert [y.shape for _, _, y in steps] == [(4, 5), (4, 5), (4, 3)]
    np.testing.assert_array_equal(steps[1][2], np.maximum(steps[0][2], 0))
    np.testing.assert_array_equal(steps[-1][2], model.forward(x))


def test_backward_steps_walk_the_same_pass_as_backward():
    rng = np.random.default_rng(1)
    model = Sequential([Dense(6, 5, rng=rng), ReLU(), Dense(5, 3, rng=rng)])
    x = rng.standard_normal((4, 6)).astype(np.float32)
    dlogits = rng.standard_normal((4, 3)).astype(np.float32)
    model.forward(x, training=True)
    dx = model.backward(dlogits, need_dx=True)
    grads = {name: g.copy() for name, _, g in model.named_parameters()}
    model.forward(x, training=True)
    steps = list(model.backward_steps(dlogits, need_dx=True))
    assert [i for i, *_ in steps] == [2, 1, 0]
    np.testing.assert_array_equal(steps[0][2], dlogits)
    for (_, _, _, dx_k), (_, _, dy_next, _) in zip(steps, steps[1:]):
        np.testing.assert_array_equal(dx_k, dy_next)  # one layer's input gradient is the next one's dy
    np.testing.assert_array_equal(steps[-1][3], dx)
    for name, _, g in model.named_parameters():
        np.testing.assert_array_equal(g, grads[name])
