"""Optional oracle: our optimizers and schedules against torch.optim on the same numbers."""
import numpy as np
import pytest

from scratchnn.optim import OneCycle, ReduceOnPlateau, StepDecay, WarmUp, Cosine, Exponential, make_optimizer
from scratchnn.optim import SGD, Adam, AdamW, RMSprop
from ci_guard import import_oracle

torch = import_oracle("torch")

SHAPES = {"0.W": (4, 3), "0.b": (3,), "1.W": (3, 2)}

CONFIGS = [  # (ours, torch's, their keyword arguments)
    (SGD, "SGD", dict(lr=0.1)),
    (SGD, "SGD", dict(lr=0.1, momentum=0.9)),
    (SGD, "SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    (SGD, "SGD", dict(lr=0.1, momentum=0.5, nesterov=True, weight_decay=0.1)),
    (SGD, "SGD", dict(lr=0.1, weight_decay=0.01)),
    (RMSprop, "RMSprop", dict(lr=0.01)),
    (RMSprop, "RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-3, momentum=0.9)),
    (RMSprop, "RMSprop", dict(lr=0.01, weight_decay=0.1)),
    (RMSprop, "RMSprop", dict(lr=0.01, momentum=0.5, weight_decay=0.1)),
    (Adam, "Adam", dict(lr=1e-2)),
    (Adam, "Adam", dict(lr=1e-2, weight_decay=0.1)),
    (Adam, "Adam", dict(lr=0.5, beta1=0.5, beta2=0.9, eps=1e-3)),
    (AdamW, "AdamW", dict(lr=1e-2)),
    (AdamW, "AdamW", dict(lr=0.1, weight_decay=0.5, beta1=0.8, beta2=0.99)),
]


def torch_kwargs(kwargs):
    kwargs = dict(kwargs)
    if "beta1" in kwargs:
        kwargs["betas"] = (kwargs.pop("beta1"), kwargs.pop("beta2"))
    return kwargs


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-10), (np.float32, 2e-5)])
@pytest.mark.parametrize("ours, theirs, kwargs", CONFIGS, ids=lambda c: str(c) if isinstance(c, dict) else None)
def test_five_steps_match_torch(ours, theirs, kwargs, dtype, rtol):
    rng = np.random.default_rng(0)
    params = {name: rng.standard_normal(shape).astype(dtype) for name, shape in SHAPES.items()}
    grads = [{name: rng.standard_normal(shape).astype(dtype) for name, shape in SHAPES.items()} for _ in range(5)]
    tparams = {name: torch.tensor(p.copy(), requires_grad=True) for name, p in params.items()}
    opt = ours(**kwargs)
    topt = getattr(torch.optim, theirs)(list(tparams.values()), **torch_kwargs(kwargs), foreach=False)
    for step, g in enumerate(grads, 1):
        opt.step((name, params[name], g[name]) for name in SHAPES)
        for name, p in tparams.items():
            p.grad = torch.tensor(g[name])
        topt.step()
        for name in SHAPES:
            np.testing.assert_allclose(params[name], tparams[name].detach().numpy(), rtol=rtol, atol=rtol,
                                       err_msg=f"{ours.__name__}({kwargs}) {name} after step {step}")
        assert all(p.dtype == dtype for p in params.values())


def test_make_optimizer_defaults_match_torch_defaults():
    """Same default hyper-parameters as torch (AdamW's weight decay 0.01 included)."""
    for ours, theirs in ((RMSprop, torch.optim.RMSprop), (Adam, torch.optim.Adam), (AdamW, torch.optim.AdamW)):
        d = theirs([torch.zeros(1, requires_grad=True)]).defaults
        o = ours()
        assert o.lr == d["lr"] and o.eps == d["eps"] and o.weight_decay == d["weight_decay"], ours.__name__
    assert make_optimizer("adamw", 1e-3, weight_decay=0.01).weight_decay == 0.01


def torch_lrs(make, steps, lr=1.0):
    """The lr torch uses for updates 0..steps-1 (the scheduler steps after each update)."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = make(opt)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return np.array(lrs)


def test_cosine_matches_cosine_annealing_lr_until_total_steps():
    ours = Cosine(0.1, total_steps=50, min_lr=0.001)
    theirs = torch_lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=50, eta_min=0.001), 51, 0.1)
    np.testing.assert_allclose([ours(k) for k in range(51)], theirs, rtol=1e-9)
    # NOTE: past T_max torch climbs back along the cosine; ours stays at min_lr
    assert ours(60) == 0.001


@pytest.mark.parametrize("total, pct", [(100, 0.3), (37, 0.25), (10, 0.5)])
def test_one_cycle_matches_one_cycle_lr(total, pct):
    ours = OneCycle(0.2, total_steps=total, pct_start=pct, div_factor=10, final_div_factor=100)
    theirs = torch_lrs(lambda o: torch.optim.lr_scheduler.OneCycleLR(
        o, max_lr=0.2, total_steps=total, pct_start=pct, div_factor=10, final_div_factor=100,
        anneal_strategy="cos", cycle_momentum=False), total)
    np.testing.assert_allclose([ours(k) for k in range(total)], theirs, rtol=1e-12)


def test_step_decay_and_exponential_match_torch():
    np.testing.assert_allclose([StepDecay(0.1, 7, 0.5)(k) for k in range(30)],
                               torch_lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, 7, 0.5), 30, 0.1), rtol=1e-12)
    np.testing.assert_allclose([Exponential(0.1, 0.9)(k) for k in range(30)],
                               torch_lrs(lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.9), 30, 0.1),
                               rtol=1e-12)


def test_warm_up_is_linear_lr_chained_with_the_schedule():
    ours = WarmUp(StepDecay(0.1, 6, 0.5), warmup_steps=4)
    theirs = torch_lrs(lambda o: torch.optim.lr_scheduler.ChainedScheduler([
        torch.optim.lr_scheduler.LinearLR(o, start_factor=1 / 4, end_factor=1.0, total_iters=3),
        torch.optim.lr_scheduler.StepLR(o, 6, 0.5)]), 20, 0.1)
    np.testing.assert_allclose([ours(k) for k in range(20)], theirs, rtol=1e-12)


def test_plateau_is_torch_with_one_less_patience():
    losses = [1.0, 0.9, 0.95, 0.9, 0.91, 0.5, 0.5, 0.49999, 0.6, 0.7, 0.8, 0.9, 0.4]
    ours = ReduceOnPlateau(0.1, factor=0.5, patience=2, min_lr=0.01, threshold=1e-3)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1, min_lr=0.01,
                                                        threshold=1e-3, eps=0.0)
    for k, loss in enumerate(losses):
        ours.observe(loss)
        theirs.step(loss)
        assert ours(k) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12), f"after loss {k}"
