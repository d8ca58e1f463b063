import numpy as np
import pytest

from scratchnn.errors import ConfigError
from scratchnn.optim import SGD


def test_sgd_step_is_theta_minus_lr_grad_in_place():
    param = np.array([1.0, -2.0], np.float32)
    grad = np.array([0.5, 0.25], np.float32)
    opt = SGD(lr=0.1)
    opt.step([("0.W", param, grad)])
    np.testing.assert_allclose(param, [0.95, -2.025], rtol=1e-6)
    assert opt.steps == 1


@pytest.mark.parametrize("lr", [0, -0.1, float("nan")])
def test_learning_rate_must_be_positive(lr):
    with pytest.raises(ConfigError, match="learning rate must be > 0"):
        SGD(lr)


def test_state_dict_round_trip():
    opt = SGD(0.5)
    opt.step([])
    other = SGD(0.1)
    other.load_state_dict(opt.state_dict())
    assert other.lr == 0.5 and other.steps == 1
