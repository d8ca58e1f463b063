import json
import math

import numpy as np
import pytest

from scratchnn.errors import ConfigError
from scratchnn.optim import (SCHEDULES, Constant, Cosine, Exponential, OneCycle, ReduceOnPlateau, StepDecay, WarmUp,
                             make_schedule)


def values(schedule, steps):
    return [schedule(k) for k in steps]


def test_constant():
    assert values(Constant(0.1), [0, 1, 10_000]) == [0.1, 0.1, 0.1]


def test_step_decay_is_a_staircase():
    assert values(StepDecay(0.1, step_size=10, gamma=0.5), [0, 9, 10, 19, 20, 25]) == \
        pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025], rel=1e-15)


def test_exponential_is_continuous_and_exact_at_multiples_of_every():
    s = Exponential(0.1, gamma=0.5, every=10)
    assert values(s, [0, 5, 10, 20]) == pytest.approx([0.1, 0.1 * math.sqrt(0.5), 0.05, 0.025], rel=1e-14)
    lrs = values(s, range(40))
    assert all(a > b for a, b in zip(lrs, lrs[1:]))


def test_cosine_with_warm_up_at_key_steps():
    s = Cosine(0.1, total_steps=100, min_lr=0.01, warmup_steps=10)
    # warm-up lr·(step+1)/10; cosine over steps 10..100, its midpoint 55 is halfway between lr and min_lr
    assert values(s, [0, 4, 9, 10, 55, 100, 150]) == \
        pytest.approx([0.01, 0.05, 0.1, 0.1, 0.055, 0.01, 0.01], rel=1e-12)
    lrs = values(s, range(101))
    assert all(a < b for a, b in zip(lrs[:9], lrs[1:10])), "warm-up must rise"
    assert all(a > b for a, b in zip(lrs[10:], lrs[11:])), "annealing must fall"


def test_cosine_without_warm_up_starts_at_lr():
    s = Cosine(0.2, total_steps=4)
    # (1 + cos(π·k/4))/2 for k = 0..4: 1, 0.8536, 0.5, 0.1464, 0
    assert values(s, range(5)) == pytest.approx([0.2, 0.2 * 0.8535534, 0.1, 0.2 * 0.1464466, 0.0], abs=1e-8)


def test_one_cycle_rises_to_max_lr_then_falls_to_the_final_lr():
    s = OneCycle(1.0, total_steps=10, pct_start=0.3, div_factor=25, final_div_factor=1e4)
    # start 1/25 = 0.04, peak at step 0.3·10 − 1 = 2, end 0.04/1e4 = 4e-6 at the last step (9)
    assert values(s, [0, 1, 2, 9, 50]) == pytest.approx([0.04, 0.52, 1.0, 4e-6, 4e-6], rel=1e-12)
    lrs = values(s, range(10))
    assert lrs.index(max(lrs)) == 2 and all(a > b for a, b in zip(lrs[2:], lrs[3:]))


def test_plateau_reduces_after_patience_observations_without_improvement():
    s = ReduceOnPlateau(0.1, factor=0.5, patience=2, min_lr=0.02, threshold=1e-3)
    lrs = []
    for loss in [1.0, 0.9, 0.9, 0.8995, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1]:
        s.observe(loss)
        lrs.append(s(0))
    # 0.9 twice is no improvement; 0.8995 is not better by 0.1% either: drop at the 2nd bad one,
    # then again after two more bad ones, then the floor min_lr
    assert lrs == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.02, 0.02, 0.02])


def test_warm_up_scales_the_first_steps_of_any_schedule():
    s = WarmUp(StepDecay(0.1, step_size=5, gamma=0.5), warmup_steps=4)
    assert values(s, [0, 1, 3, 4, 5]) == pytest.approx([0.025, 0.05, 0.1, 0.1, 0.05])
    plateau = WarmUp(ReduceOnPlateau(0.1, patience=1), warmup_steps=2)
    plateau.observe(1.0)
    plateau.observe(2.0)  # forwarded: one bad observation with patience 1 → ×0.1
    assert plateau(0) == pytest.approx(0.005) and plateau(10) == pytest.approx(0.01)


ALL = {
    "constant": lambda: Constant(0.1),
    "step": lambda: StepDecay(0.1, 3, 0.5),
    "exponential": lambda: Exponential(0.1, 0.9, every=2),
    "cosine": lambda: Cosine(0.1, 20, min_lr=0.001, warmup_steps=3),
    "one-cycle": lambda: OneCycle(0.1, 20),
    "plateau": lambda: ReduceOnPlateau(0.1, factor=0.5, patience=2),
    "warm-plateau": lambda: WarmUp(ReduceOnPlateau(0.1, factor=0.5, patience=1), 5),
}


@pytest.mark.parametrize("name", ALL)
def test_state_round_trips_through_json(name):
    losses = [1.0, 0.9, 0.95, 0.97, 0.99, 0.5, 0.6, 0.7]
    s = ALL[name]()
    for loss in losses[:3]:
        s.observe(loss)
    state = json.loads(json.dumps(s.state_dict(), allow_nan=False))
    restored = ALL[name]()
    restored.load_state_dict(state)
    for loss in losses[3:]:
        s.observe(loss)
        restored.observe(loss)
    assert values(restored, range(25)) == values(s, range(25))
    assert restored.state_dict() == s.state_dict()


DAMAGED_STATES = {
    "lr 1e300": ("plateau", ("lr",), 1e300, r"schedule lr must be a number in \[0, 1e\+06\], got 1e\+300"),
    "a negative count": ("step", ("step_size",), -5, "schedule step_size must be a whole number >= 1, got -5"),
    "a zero divisor": ("one-cycle", ("div_factor",), 0.0, "schedule div_factor must be a finite number > 0"),
    "an endless factor": ("step", ("gamma",), math.inf, "schedule gamma must be a finite number >= 0, got inf"),
    "best below 0": ("plateau", ("best",), -1.0, "schedule best must be null or a finite number >= 0"),
    "no warm-up steps": ("warm-plateau", ("warmup_steps",), 0, "schedule warmup_steps must be a whole number >= 1"),
    "inside the warm-up": ("warm-plateau", ("schedule", "lr"), -0.1, "schedule schedule lr must be a number in"),
}


@pytest.mark.parametrize("name,keys,value,message", DAMAGED_STATES.values(), ids=DAMAGED_STATES.keys())
def test_a_state_out_of_range_is_refused_before_anything_is_restored(name, keys, value, message):
    s = ALL[name]()
    state = json.loads(json.dumps(s.state_dict()))
    target = state
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value
    with pytest.raises(ConfigError, match=message):
        s.load_state_dict(state)
    assert s.state_dict() == ALL[name]().state_dict()


def test_plateau_state_holds_its_counters():
    s = ReduceOnPlateau(0.1, factor=0.5, patience=3)
    assert s.state_dict()["best"] is None
    for loss in (1.0, 1.0, 1.0):
        s.observe(loss)
    assert {k: s.state_dict()[k] for k in ("lr", "best", "bad")} == {"lr": 0.1, "best": 1.0, "bad": 2}


def test_make_schedule_converts_epochs_to_steps():
    step = make_schedule("step", 0.1, steps_per_epoch=10, epochs=9)
    assert (step.step_size, step.gamma) == (30, 0.1)  # a third of the run, ×0.1
    exp = make_schedule("exponential", 0.1, steps_per_epoch=10, epochs=8)
    assert exp(80) == pytest.approx(0.001) and exp(40) == pytest.approx(0.01)
    assert make_schedule("exponential", 0.1, steps_per_epoch=10, epochs=8, gamma=0.5)(10) == pytest.approx(0.05)
    cos = make_schedule("cosine", 0.1, steps_per_epoch=10, epochs=5, warmup_epochs=0.5, min_lr=0.01)
    assert (cos.total_steps, cos.warmup_steps, cos(4), cos(50)) == (50, 5, pytest.approx(0.1), 0.01)
    one = make_schedule("one-cycle", 0.1, steps_per_epoch=10, epochs=5)
    assert max(values(one, range(50))) == pytest.approx(0.1) and one.total_steps == 50
    plateau = make_schedule("plateau", 0.1, steps_per_epoch=3, epochs=5, factor=0.5, patience=4, min_lr=0.01)
    assert (plateau.factor, plateau.patience, plateau.min_lr) == (0.5, 4, 0.01)
    assert set(SCHEDULES) == {"constant", "step", "exponential", "cosine", "one-cycle", "plateau"}


@pytest.mark.parametrize("name", ["constant", "step", "exponential", "plateau"])
def test_make_schedule_adds_warm_up(name):
    s = make_schedule(name, 0.1, steps_per_epoch=10, epochs=30, warmup_epochs=1)
    assert isinstance(s, WarmUp) and s.warmup_steps == 10
    assert s(0) == pytest.approx(s.schedule(0) / 10) and s(9) == s.schedule(9) and s(0) == pytest.approx(0.01)


@pytest.mark.parametrize("call, message", [
    (lambda: make_schedule("linear", 0.1, steps_per_epoch=1, epochs=5), r"unknown schedule 'linear'; choose one of"),
    (lambda: make_schedule("one-cycle", 0.1, steps_per_epoch=1, epochs=5, warmup_epochs=1), "its own warm-up"),
    (lambda: make_schedule("cosine", 0.1, steps_per_epoch=1, epochs=5, gamma=0.5),
     "gamma does not apply to the cosine schedule, only to step and exponential"),
    (lambda: make_schedule("step", 0.1, steps_per_epoch=1, epochs=5, min_lr=0.01), "min_lr does not apply"),
    (lambda: make_schedule("cosine", 0.1, steps_per_epoch=1, epochs=5, warmup_epochs=5),
     r"warmup_epochs must be >= 0 and shorter than the run \(epochs = 5\), got 5"),
    (lambda: make_schedule("constant", 0.1, steps_per_epoch=0, epochs=5), "steps_per_epoch must be a whole number >= 1"),
    (lambda: make_schedule("step", 0.1, steps_per_epoch=2, epochs=5, gamma=-1), "gamma must be > 0, got -1"),
    (lambda: Cosine(0.1, 10, min_lr=0.2), r"min_lr must be in \[0, lr = 0.1\], got 0.2"),
    (lambda: ReduceOnPlateau(0.1, factor=1.0), r"factor must be in \(0, 1\), got 1.0"),
    (lambda: ReduceOnPlateau(0.1, patience=0), "patience must be a whole number >= 1, got 0"),
    (lambda: StepDecay(0.1, step_size=2.5), "step_size must be a whole number >= 1, got 2.5"),
    (lambda: OneCycle(0.1, 10, pct_start=1.0), r"pct_start must be in \(0, 1\), got 1.0"),
    (lambda: OneCycle(0.1, 10, pct_start=0), r"pct_start must be in \(0, 1\), got 0"),
    (lambda: ReduceOnPlateau(0.1, factor=0), r"factor must be in \(0, 1\), got 0"),
    (lambda: ReduceOnPlateau(0.1, threshold=1.0), r"threshold must be in \[0, 1\), got 1.0"),
    (lambda: Constant(0), "learning rate must be > 0, got 0"),
])
def test_bad_values_raise_config_error(call, message):
    with pytest.raises(ConfigError, match=message):
        call()


def test_a_plateau_without_a_threshold_counts_an_equal_loss_as_no_improvement():
    s = ReduceOnPlateau(0.1, factor=0.5, patience=2, threshold=0)
    for loss in (1.0, 1.0, 0.999999, 0.999999, 0.999999):
        s.observe(loss)
    assert s(0) == 0.05 and s.best == 0.999999  # 1.0 again: bad; any drop at all: better; then two bad ones


def test_the_loop_contract_lr_of_step_k_is_schedule_of_updates_done():
    """optimizer.lr = schedule(optimizer.steps) before each update: the first update uses schedule(0)."""
    from scratchnn.optim import SGD
    opt, s, used = SGD(1.0), Cosine(0.1, total_steps=4, warmup_steps=2), []
    param = np.zeros(1)
    for _ in range(4):
        opt.lr = s(opt.steps)
        used.append(opt.lr)
        opt.step([("w", param, np.ones(1))])
    assert used == pytest.approx([0.05, 0.1, 0.1, 0.05])
    assert param[0] == pytest.approx(-0.3)


@pytest.mark.parametrize("steps_per_epoch, epochs, warmup_epochs, warmup_steps", [
    (1, 1, 0.0333, 0),  # `--epochs 1` shrank a preset's warm-up; full-batch training has one step
    (1, 2, 1.6, 1),     # 1.6 steps round to 2, the whole run: one step is left to decay
    (10, 2, 1.0, 10),   # unchanged where the warm-up fits
])
def test_a_cosine_warm_up_rounded_up_to_the_whole_run_leaves_a_step_to_decay(steps_per_epoch, epochs,
                                                                              warmup_epochs, warmup_steps):
    schedule = make_schedule("cosine", 0.1, steps_per_epoch=steps_per_epoch, epochs=epochs,
                             warmup_epochs=warmup_epochs)
    assert schedule.warmup_steps == warmup_steps
    assert schedule(steps_per_epoch * epochs - 1) <= 0.1


def test_arguments_that_are_not_numbers_are_named_not_compared():
    """The API fuzz audit: Cosine('x', 10) and StepDecay(0.1, 5, gamma=None) were TypeErrors from a
    comparison, and Cosine(0.1, 10)(-1) a ZeroDivisionError."""
    from scratchnn.optim.schedules import Cosine, StepDecay

    with pytest.raises(ConfigError, match="learning rate must be > 0, got 'x'"):
        Cosine("x", 10)
    with pytest.raises(ConfigError, match="gamma must be > 0, got None"):
        StepDecay(0.1, 5, gamma=None)
    with pytest.raises(ConfigError, match="total_steps must be a whole number >= 1, got nan"):
        Cosine(0.1, float("nan"))
    assert Cosine(0.1, 10)(-1) == Cosine(0.1, 10)(0) == 0.1


def test_a_growing_gamma_is_named_where_its_power_passes_floats_range():
    """The API fuzz audit: Exponential(0.1, 1.5)(10**6) was Python's OverflowError; below the
    overflow a gamma above 1 still gives the rate it asks for (an old run's recorded one resumes)."""
    from scratchnn.optim.schedules import Exponential, StepDecay

    for schedule in (Exponential(0.1, 1.5), StepDecay(0.1, 1, gamma=1.5)):
        with pytest.raises(ConfigError, match=r"passes float's range; gamma 1.5 is above 1 .*: give a gamma below 1$"):
            schedule(10**6)
        assert schedule(2) == pytest.approx(0.225)
    assert Exponential(0.1, 0.5)(10**6) == 0.0


def test_a_saved_schedule_key_from_a_hostile_file_stays_on_one_line():
    """Found by the metadata fuzz test in CI: a checkpoint's schedule key with a newline was echoed
    into the error as it was, breaking the one-line message."""
    from scratchnn.optim.schedule_state import check_state

    with pytest.raises(ConfigError) as raised:
        check_state({"ñu\n삛": [1]}, "checkpoint schedule")
    assert "\n" not in str(raised.value) and str(raised.value).startswith('checkpoint schedule "\\u00f1u\\n')
