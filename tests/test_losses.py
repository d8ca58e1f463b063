import numpy as np
import pytest

from scratchnn.errors import ShapeError
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
