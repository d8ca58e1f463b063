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


# --- known answers, computed by hand with plain Python floats --------------------------------

import math  # noqa: E402

from scratchnn.errors import ShapeError  # noqa: E402
from scratchnn.optim import OPTIMIZERS, Adam, AdamW, RMSprop, make_optimizer  # noqa: E402


def run(opt, theta0, grads, dtype=np.float64):
    """Apply ``grads`` (one list per step) to a parameter starting at ``theta0``; return it."""
    param = np.array(theta0, dtype)
    for g in grads:
        opt.step([("0.W", param, np.array(g, dtype))])
    return param


def test_sgd_momentum_three_steps():
    # b1 = 0.5, θ = 1 − 0.05 = 0.95; b2 = 0.9·0.5 + 0.25 = 0.7, θ = 0.88; b3 = 0.63 − 0.5 = 0.13, θ = 0.867
    param = run(SGD(0.1, momentum=0.9), [1.0], [[0.5], [0.25], [-0.5]])
    np.testing.assert_allclose(param, [0.867], rtol=1e-12)


def test_sgd_nesterov_three_steps():
    # θ1 = 1 − 0.1·(0.5 + 0.9·0.5) = 0.905; θ2 = 0.905 − 0.1·(0.25 + 0.9·0.7) = 0.817
    # θ3 = 0.817 − 0.1·(−0.5 + 0.9·0.13) = 0.8553
    param = run(SGD(0.1, momentum=0.9, nesterov=True), [1.0], [[0.5], [0.25], [-0.5]])
    np.testing.assert_allclose(param, [0.8553], rtol=1e-12)


def test_sgd_weight_decay_is_l2_added_to_the_gradient():
    # θ1 = 2 − 0.1·(0.5 + 0.1·2) = 1.93; θ2 = 1.93 − 0.1·(0.5 + 0.193) = 1.8607
    param = run(SGD(0.1, weight_decay=0.1), [2.0], [[0.5], [0.5]])
    np.testing.assert_allclose(param, [1.8607], rtol=1e-12)


def test_rmsprop_two_steps_with_eps_outside_the_root():
    # eps = 1 makes its place visible: 2/(√0.4 + 1) = 1.2251, not 2/√1.4 = 1.690
    v1 = 0.1 * 2.0 ** 2                      # 0.4
    theta1 = 1.0 - 0.01 * 2.0 / (math.sqrt(v1) + 1.0)
    v2 = 0.9 * v1 + 0.1 * 1.0 ** 2           # 0.46
    theta2 = theta1 - 0.01 * 1.0 / (math.sqrt(v2) + 1.0)
    param = run(RMSprop(0.01, alpha=0.9, eps=1.0), [1.0], [[2.0], [1.0]])
    np.testing.assert_allclose(param, [theta2], rtol=1e-12)


def test_rmsprop_momentum_two_steps():
    u1 = 2.0 / (math.sqrt(0.4) + 1e-8)                 # v1 = 0.4
    u2 = 1.0 / (math.sqrt(0.46) + 1e-8)                # v2 = 0.46
    theta2 = 1.0 - 0.01 * u1 - 0.01 * (0.5 * u1 + u2)  # b1 = u1, b2 = 0.5·u1 + u2
    param = run(RMSprop(0.01, alpha=0.9, momentum=0.5), [1.0], [[2.0], [1.0]])
    np.testing.assert_allclose(param, [theta2], rtol=1e-12)


def test_adam_first_step_moves_every_coordinate_by_lr():
    param = run(Adam(0.1), [1.0, -1.0, 3.0], [[0.5, -2.0, 1e-3]])
    np.testing.assert_allclose(param, [0.9, -0.9, 2.9], rtol=1e-6)


def test_adam_two_steps():
    # first coordinate: g = 0.5 then 0.25
    m1, v1 = 0.1 * 0.5, 0.001 * 0.5 ** 2                         # 0.05, 0.00025
    theta1 = 1.0 - 0.1 * (m1 / 0.1) / (math.sqrt(v1 / 0.001) + 1e-8)
    m2, v2 = 0.9 * m1 + 0.1 * 0.25, 0.999 * v1 + 0.001 * 0.25 ** 2  # 0.07, 0.00031225
    theta2 = theta1 - 0.1 * (m2 / (1 - 0.9 ** 2)) / (math.sqrt(v2 / (1 - 0.999 ** 2)) + 1e-8)
    assert theta2 == pytest.approx(0.80678, abs=1e-5)
    param = run(Adam(0.1), [1.0, -1.0], [[0.5, -2.0], [0.25, 1.0]])
    assert param[0] == pytest.approx(theta2, rel=1e-12)
    # second coordinate: g = −2 then 1
    theta1 = -1.0 + 0.1 * 2.0 / (2.0 + 1e-8)  # m̂ = −2, √v̂ = 2
    m1, v1 = -0.2, 0.004
    m2, v2 = 0.9 * m1 + 0.1 * 1.0, 0.999 * v1 + 0.001 * 1.0
    theta2 = theta1 - 0.1 * (m2 / 0.19) / (math.sqrt(v2 / (1 - 0.999 ** 2)) + 1e-8)
    assert param[1] == pytest.approx(theta2, rel=1e-12)


def test_adam_weight_decay_is_coupled_and_adamw_decoupled():
    # Adam: g' = g + λθ = 0.5 + 0.5·1 = 1 → θ1 = 1 − 0.1·1/(1 + ε) ≈ 0.9
    # then g' = 0.5 + 0.5·θ1; m, v built from g'
    theta1 = 1.0 - 0.1 * 1.0 / (1.0 + 1e-8)
    g2 = 0.5 + 0.5 * theta1
    m2, v2 = 0.9 * 0.1 + 0.1 * g2, 0.999 * 0.001 + 0.001 * g2 ** 2
    theta2 = theta1 - 0.1 * (m2 / 0.19) / (math.sqrt(v2 / (1 - 0.999 ** 2)) + 1e-8)
    assert run(Adam(0.1, weight_decay=0.5), [1.0], [[0.5], [0.5]])[0] == pytest.approx(theta2, rel=1e-12)
    # AdamW: θ ← θ·(1 − lr·λ) = 0.95, then the plain Adam step of size ≈ lr: 0.85
    theta1 = 1.0 * (1 - 0.1 * 0.5) - 0.1 * 0.5 / (0.5 + 1e-8)
    m2, v2 = 0.9 * 0.05 + 0.1 * 0.5, 0.999 * 0.00025 + 0.001 * 0.25  # g = 0.5 twice
    theta2 = theta1 * 0.95 - 0.1 * (m2 / 0.19) / (math.sqrt(v2 / (1 - 0.999 ** 2)) + 1e-8)
    assert run(AdamW(0.1, weight_decay=0.5), [1.0], [[0.5], [0.5]])[0] == pytest.approx(theta2, rel=1e-12)


# --- properties of every optimizer ------------------------------------------------------------

CONFIGS = {
    "sgd": lambda: SGD(0.1),
    "sgd-momentum": lambda: SGD(0.1, momentum=0.9),
    "sgd-nesterov-wd": lambda: SGD(0.1, momentum=0.9, nesterov=True, weight_decay=1e-2),
    "rmsprop": lambda: RMSprop(0.01),
    "rmsprop-momentum-wd": lambda: RMSprop(0.01, momentum=0.9, weight_decay=1e-2),
    "adam": lambda: Adam(1e-2),
    "adam-wd": lambda: Adam(1e-2, weight_decay=1e-2),
    "adamw": lambda: AdamW(1e-2),
}


def params_and_grads(rng, steps, dtype=np.float32):
    shapes = {"0.W": (5, 4), "0.b": (4,), "1.W": (4, 3)}
    params = {name: rng.standard_normal(shape).astype(dtype) for name, shape in shapes.items()}
    grads = [{name: rng.standard_normal(shape).astype(dtype) for name, shape in shapes.items()}
             for _ in range(steps)]
    return params, grads


def step(opt, params, grads):
    opt.step((name, params[name], grads[name]) for name in params)


@pytest.mark.parametrize("config", CONFIGS)
def test_updates_in_place_keep_float32_and_create_state_lazily(config):
    params, grads = params_and_grads(np.random.default_rng(1), 2)
    before = {name: p.copy() for name, p in params.items()}
    objects = {name: p for name, p in params.items()}
    grads_before = {name: g.copy() for name, g in grads[0].items()}
    opt = CONFIGS[config]()
    assert opt.state == {}
    step(opt, params, grads[0])
    for name, p in params.items():
        assert p is objects[name] and p.dtype == np.float32, f"{config}: {name} replaced or recast"
        assert not np.array_equal(p, before[name]), f"{config}: {name} did not change"
        np.testing.assert_array_equal(grads[0][name], grads_before[name], err_msg=f"{config}: grad {name} mutated")
        for slot, array in opt.state.get(name, {}).items():
            assert "." not in slot and array.dtype == np.float32 and array.shape == p.shape, f"{config}: {slot}"
    assert opt.steps == 1


@pytest.mark.parametrize("config", CONFIGS)
def test_state_dict_round_trip_continues_bit_identically(config):
    params, grads = params_and_grads(np.random.default_rng(2), 6)
    opt = CONFIGS[config]()
    for g in grads[:3]:
        step(opt, params, g)
    saved_params = {name: p.copy() for name, p in params.items()}
    saved = opt.state_dict()
    for g in grads[3:]:
        step(opt, params, g)
    saved["state"] = {name: {slot: array.copy() for slot, array in s.items()} for name, s in saved["state"].items()}
    resumed = CONFIGS[config]()
    resumed.lr = 123.0  # overwritten by the state
    resumed.load_state_dict(saved)
    for g in grads[3:]:
        step(resumed, saved_params, g)
    assert resumed.steps == opt.steps == 6
    for name in params:
        np.testing.assert_array_equal(saved_params[name], params[name], err_msg=f"{config}: {name}")


def test_learning_rate_is_read_at_every_step():
    param = np.array([1.0])
    opt = SGD(0.1)
    opt.step([("w", param, np.array([1.0]))])
    opt.lr = 0.5  # what a schedule does
    opt.step([("w", param, np.array([1.0]))])
    assert param[0] == pytest.approx(1.0 - 0.1 - 0.5)


def test_state_of_the_wrong_shape_names_the_parameter():
    opt = Adam()
    opt.load_state_dict({"lr": 1e-3, "steps": 1, "state": {"0.W": {"m": np.zeros(3), "v": np.zeros(3)}}})
    with pytest.raises(ShapeError, match=r"0\.W\.m has shape \(3,\).*\(2, 2\)"):
        opt.step([("0.W", np.zeros((2, 2)), np.zeros((2, 2)))])


@pytest.mark.parametrize("build, message", [
    (lambda: SGD(0.1, momentum=1.5), r"momentum must be in \[0, 1\), got 1.5"),
    (lambda: SGD(0.1, momentum=-0.1), r"momentum must be in \[0, 1\), got -0.1"),
    (lambda: SGD(0.1, nesterov=True), r"nesterov requires momentum > 0, got momentum 0.0"),
    (lambda: SGD(0.1, weight_decay=-1), r"weight_decay must be a finite number >= 0, got -1"),
    (lambda: RMSprop(alpha=1.0), r"alpha must be in \[0, 1\), got 1.0"),
    (lambda: RMSprop(eps=0), r"eps must be > 0, got 0"),
    (lambda: Adam(beta1=1.0), r"beta1 must be in \[0, 1\), got 1.0"),
    (lambda: Adam(beta2=float("nan")), r"beta2 must be in \[0, 1\), got nan"),
    (lambda: AdamW(lr=float("inf")), r"learning rate must be > 0, got inf"),
    (lambda: make_optimizer("adagrad", 0.1), r"unknown optimizer 'adagrad'; choose one of sgd, rmsprop, adam, adamw"),
    (lambda: make_optimizer("adam", 0.1, momentum=0.9), r"momentum applies only to sgd and rmsprop, not adam"),
    (lambda: make_optimizer("rmsprop", 0.1, momentum=0.9, nesterov=True), r"nesterov applies only to sgd"),
])
def test_invalid_hyper_parameters_raise_config_error(build, message):
    with pytest.raises(ConfigError, match=message):
        build()


def test_make_optimizer_passes_the_options_that_apply():
    sgd = make_optimizer("sgd", 0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
    assert (type(sgd), sgd.lr, sgd.momentum, sgd.nesterov, sgd.weight_decay) == (SGD, 0.1, 0.9, True, 1e-4)
    rms = make_optimizer("rmsprop", 0.01, momentum=0.5)
    assert (type(rms), rms.momentum, rms.alpha) == (RMSprop, 0.5, 0.99)
    adamw = make_optimizer("adamw", 1e-3, weight_decay=0.05)
    assert (type(adamw), adamw.weight_decay, adamw.beta1) == (AdamW, 0.05, 0.9)
    assert set(OPTIMIZERS) == {"sgd", "rmsprop", "adam", "adamw"}


def test_state_of_another_optimizer_is_refused_by_name():
    half = {"lr": 1e-3, "steps": 3, "state": {"0.W": {"m_sum": np.zeros(2)}}}  # neither Adam's state nor its sums
    with pytest.raises(ConfigError, match=r"optimizer state for 0.W holds m_sum, but Adam keeps m, v"):
        Adam(1e-3).load_state_dict(half)
    with pytest.raises(ConfigError, match="SGD keeps nothing"):
        SGD(0.1).load_state_dict({"lr": 0.1, "steps": 1, "state": {"0.W": {"velocity": np.zeros(2)}}})


@pytest.mark.parametrize("kind", [Adam, AdamW])
def test_the_sums_an_older_adam_kept_are_taken_as_its_m_and_v(kind):
    """Before 2026-12-02 Adam kept μ = m/(1 − β1) and ν = v/(1 − β2) ("m_sum", "v_sum"): runs it
    interrupted then were refused on --resume, and evaluate sent them back to --resume (the
    compatibility audit). Taken as the m and v they stand for, the steps go on as they would have."""
    rng = np.random.default_rng(0)
    param, grads = rng.standard_normal((3, 2)).astype(np.float32), rng.standard_normal((4, 3, 2)).astype(np.float32)
    trained = kind(1e-2, beta1=0.8, beta2=0.99)
    for grad in grads[:3]:
        trained.step([("0.W", param, grad)])
    state = trained.state_dict()
    sums = {"0.W": {"m_sum": state["state"]["0.W"]["m"] / (1 - 0.8), "v_sum": state["state"]["0.W"]["v"] / (1 - 0.99)}}
    resumed = kind(1e-2, beta1=0.8, beta2=0.99)
    resumed.load_state_dict({**state, "state": sums})
    for slot in ("m", "v"):
        np.testing.assert_allclose(resumed.state["0.W"][slot], state["state"]["0.W"][slot], rtol=1e-6)
        assert resumed.state["0.W"][slot].dtype == np.float32
    again = param.copy()
    trained.step([("0.W", param, grads[3])])
    resumed.step([("0.W", again, grads[3])])
    np.testing.assert_allclose(again, param, rtol=1e-6)
