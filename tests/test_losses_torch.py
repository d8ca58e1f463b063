"""Optional oracle: our fused softmax cross-entropy, plain and label-smoothed, against torch's."""
import numpy as np
import pytest

from scratchnn.nn import SoftmaxCrossEntropy
from ci_guard import import_oracle

torch = import_oracle("torch")


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_loss_and_gradient_match_torch_cross_entropy(eps):
    rng = np.random.default_rng(3)
    logits, labels = rng.standard_normal((9, 10)) * 3, rng.integers(0, 10, 9)
    ours = SoftmaxCrossEntropy(label_smoothing=eps)
    value = ours.forward(logits, labels)
    z = torch.tensor(logits, requires_grad=True)
    theirs = torch.nn.functional.cross_entropy(z, torch.tensor(labels), label_smoothing=eps)
    theirs.backward()
    assert value == pytest.approx(theirs.item(), rel=1e-12)
    np.testing.assert_allclose(ours.backward(), z.grad.numpy(), rtol=1e-10, atol=1e-15)
