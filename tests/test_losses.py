import numpy as np
import pytest

from scratchnn.errors import ConfigError, ShapeError
from scratchnn.fast.loss import FastSoftmaxCrossEntropy, fast_loss
from scratchnn.gradcheck import check_loss
from scratchnn.nn import SoftmaxCrossEntropy, softmax


def test_equal_logits_give_ln_of_the_class_count():
    loss = SoftmaxCrossEntropy().forward(np.zeros((4, 10)), np.array([0, 3, 9, 2]))
    assert loss == pytest.approx(np.log(10), rel=1e-12)


def test_gradient_is_softmax_minus_onehot_over_n():
    logits = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    labels = np.array([2, 0])
    loss = SoftmaxCrossEntropy()
    loss.forward(logits, labels)
    expected = softmax(logits)
    expected[[0, 1], labels] -= 1
    np.testing.assert_allclose(loss.backward(), expected / 2, rtol=1e-12)


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    check = check_loss(SoftmaxCrossEntropy(), rng.standard_normal((7, 10)) * 4, rng.integers(0, 10, 7))
    assert check.error < 1e-7, check


def test_stable_for_huge_logits():
    logits = np.array([[1000.0, -1000.0, 0.0]], np.float32)
    loss = SoftmaxCrossEntropy()
    value = loss.forward(logits, np.array([1]))
    assert np.isfinite(value) and value == pytest.approx(2000.0, rel=1e-6)
    assert np.isfinite(loss.backward()).all()
    np.testing.assert_allclose(softmax(logits).sum(axis=1), 1.0)


def test_loss_is_the_batch_mean():
    rng = np.random.default_rng(0)
    logits, labels = rng.standard_normal((6, 10)), rng.integers(0, 10, 6)
    loss = SoftmaxCrossEntropy()
    parts = [loss.forward(logits[i:i + 1], labels[i:i + 1]) for i in range(6)]
    assert loss.forward(logits, labels) == pytest.approx(np.mean(parts), rel=1e-12)


@pytest.mark.parametrize("labels, message", [
    (np.array([0, 1]), r"expected 3 labels"),
    (np.array([0.0, 1.0, 2.0]), "must be integers"),
    (np.array([0, 1, 10]), r"lie in 0\.\.9"),
    (np.array([-1, 1, 2]), r"lie in 0\.\.9"),
])
def test_bad_labels_are_clear_errors(labels, message):
    with pytest.raises(ShapeError, match=message):
        SoftmaxCrossEntropy().forward(np.zeros((3, 10)), labels)


def test_backward_before_forward():
    with pytest.raises(RuntimeError, match="before forward"):
        SoftmaxCrossEntropy().backward()


def test_label_smoothing_is_cross_entropy_against_the_smoothed_target():
    rng = np.random.default_rng(1)
    logits, labels, eps = rng.standard_normal((5, 10)) * 3, rng.integers(0, 10, 5), 0.1
    target = np.full((5, 10), eps / 10)
    target[np.arange(5), labels] += 1 - eps
    log_p = np.log(softmax(logits))
    loss = SoftmaxCrossEntropy(label_smoothing=eps)
    assert loss.forward(logits, labels) == pytest.approx(-(target * log_p).sum(axis=1).mean(), rel=1e-12)
    np.testing.assert_allclose(loss.backward(), (softmax(logits) - target) / 5, rtol=1e-12, atol=1e-15)


def test_label_smoothing_gradient_matches_finite_differences_and_zero_is_plain():
    rng = np.random.default_rng(2)
    logits, labels = rng.standard_normal((7, 10)) * 4, rng.integers(0, 10, 7)
    check = check_loss(SoftmaxCrossEntropy(0.2), logits, labels)
    assert check.error < 1e-7 and check.what == "SoftmaxCrossEntropy(label_smoothing=0.2)", check
    plain, zero = SoftmaxCrossEntropy(), SoftmaxCrossEntropy(0.0)
    assert plain.forward(logits, labels) == zero.forward(logits, labels)
    np.testing.assert_array_equal(plain.backward(), zero.backward())


def test_smoothed_loss_is_lowest_at_the_smoothed_target_not_at_certainty():
    eps, loss = 0.1, SoftmaxCrossEntropy(0.1)
    best = np.log(np.full(10, eps / 10) + np.eye(10)[3] * (1 - eps))[None]  # logits whose softmax is q
    certain = np.eye(10)[3][None] * 50.0
    assert loss.forward(best, np.array([3])) < loss.forward(certain, np.array([3]))
    loss.forward(best, np.array([3]))
    np.testing.assert_allclose(loss.backward(), 0, atol=1e-12)


@pytest.mark.parametrize("eps", [-0.1, 1.0, 2])
def test_label_smoothing_out_of_range_is_refused(eps):
    with pytest.raises(ConfigError, match=r"label_smoothing must be in \[0, 1\)"):
        SoftmaxCrossEntropy(label_smoothing=eps)


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_the_fast_paths_loss_agrees_with_the_textbook_loss(eps):
    # fast/loss.py sums over the classes of logitsᵀ: the same math, rounded in another order
    rng = np.random.default_rng(3)
    logits, labels = (rng.standard_normal((33, 10)) * 3).astype(np.float32), rng.integers(0, 10, 33)
    given = logits.copy()
    plain, fast = SoftmaxCrossEntropy(eps), fast_loss(SoftmaxCrossEntropy(eps))
    assert type(fast) is FastSoftmaxCrossEntropy and fast.label_smoothing == eps
    assert fast.forward(logits, labels) == pytest.approx(plain.forward(logits, labels), rel=1e-6)
    fast_dlogits = fast.backward()
    assert fast_dlogits.shape == logits.shape and fast_dlogits.dtype == np.float32
    np.testing.assert_allclose(fast_dlogits, plain.backward(), rtol=1e-5, atol=1e-9)
    np.testing.assert_array_equal(logits, given)  # neither changes the caller's logits


def test_fast_loss_leaves_other_losses_as_they_are():
    class Mine(SoftmaxCrossEntropy):
        pass

    mine = Mine()
    assert fast_loss(mine) is mine
