"""Learning-rate schedules: ``schedule(step) -> lr`` with step = updates already done (0 first).

The training loop sets ``optimizer.lr = schedule(optimizer.steps)`` before every update, and
calls ``schedule.observe(dev_loss)`` after every evaluation (only ReduceOnPlateau listens).
``state_dict()`` is a JSON-ready dict of plain numbers that goes into a checkpoint's metadata
(``schedule_state.py`` checks one read back); ``schedule_options.py`` builds a schedule from a
run's options counted in epochs.

>>> s = Cosine(0.1, total_steps=100, warmup_steps=10)
>>> [round(s(k), 4) for k in (0, 9, 10, 55, 100)]
[0.01, 0.1, 0.1, 0.05, 0.0]
"""
from __future__ import annotations

import math

from ..errors import ConfigError
from .arguments import check, count, positive
from .schedule_state import check_state


def _cosine(start: float, end: float, progress: float) -> float:
    """Half a cosine from ``start`` (progress 0) to ``end`` (progress 1)."""
    return end + (start - end) * (1 + math.cos(math.pi * progress)) / 2


def _decayed(schedule: Schedule, times: float) -> float:
    """lr·gamma^times; a gamma above 1 grows the rate, and a ConfigError names it once the power
    passes float's range (Python's OverflowError, at step 10**6 for gamma 1.5)."""
    try:
        return schedule.lr * schedule.gamma ** times
    except OverflowError:
        raise ConfigError(f"{type(schedule).__name__}: lr·gamma^{times:g} passes float's range; gamma "
                          f"{schedule.gamma:g} is above 1 and grows the rate at every step: give a gamma below 1"
                          ) from None


class Schedule:
    """Base class. Its state is its attributes, which are plain numbers."""

    def __call__(self, step: int) -> float:
        raise NotImplementedError

    def observe(self, loss: float) -> None:
        """Called with the dev loss after each evaluation; most schedules ignore it."""

    def state_dict(self) -> dict:
        return dict(vars(self))

    def load_state_dict(self, state: dict) -> None:
        check_state(state)
        for key in vars(self):
            setattr(self, key, state[key])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


class Constant(Schedule):
    """lr at every step."""

    def __init__(self, lr: float):
        self.lr = positive("learning rate", lr)

    def __call__(self, step):
        return self.lr


class StepDecay(Schedule):
    """lr·gamma^⌊step / step_size⌋: multiply by gamma every step_size steps (torch StepLR).

    >>> s = StepDecay(0.1, step_size=30, gamma=0.5)
    >>> [s(k) for k in (0, 29, 30, 60)]  # a staircase: 0.1·0.5^⌊k/30⌋
    [0.1, 0.1, 0.05, 0.025]
    """

    def __init__(self, lr: float, step_size: int, gamma: float = 0.1):
        self.lr = positive("learning rate", lr)
        self.step_size = count("step_size", step_size)
        self.gamma = positive("gamma", gamma)

    def __call__(self, step):
        return _decayed(self, step // self.step_size)


class Exponential(Schedule):
    """lr·gamma^(step / every): continuous decay by gamma per ``every`` steps.

    Continuous, not a staircase (that is StepDecay): with ``every`` = steps per epoch the lr
    falls a little at every batch and by exactly gamma over each epoch. every = 1 is torch's
    ExponentialLR.

    >>> s = Exponential(0.1, gamma=0.5, every=10)
    >>> [round(s(k), 4) for k in (0, 5, 10, 20)]  # 0.1·0.5^(k/10): smooth, halved every 10 steps
    [0.1, 0.0707, 0.05, 0.025]
    """

    def __init__(self, lr: float, gamma: float, every: int = 1):
        self.lr = positive("learning rate", lr)
        self.gamma = positive("gamma", gamma)
        self.every = count("every", every)

    def __call__(self, step):
        return _decayed(self, step / self.every)


class Cosine(Schedule):
    """Linear warm-up, then cosine annealing from lr to min_lr, reached at total_steps.

        step < w:            lr·(step + 1)/w                       (w = warmup_steps; never 0)
        w ≤ step < total:    min_lr + (lr − min_lr)·(1 + cos(π·p))/2,  p = (step − w)/(total − w)
        step ≥ total:        min_lr

    With w = 0 this is torch's CosineAnnealingLR(T_max=total_steps, eta_min=min_lr) up to
    total_steps; torch then rises again along the cosine, we stay at min_lr.
    """

    def __init__(self, lr: float, total_steps: int, min_lr: float = 0.0, warmup_steps: int = 0):
        self.lr = positive("learning rate", lr)
        self.total_steps = count("total_steps", total_steps)
        check("min_lr", min_lr, 0 <= min_lr <= lr, f"in [0, lr = {lr}]")
        self.min_lr = float(min_lr)
        self.warmup_steps = count("warmup_steps", warmup_steps, 0)
        check("warmup_steps", warmup_steps, warmup_steps < total_steps, f"< total_steps = {total_steps}")

    def __call__(self, step):
        w = self.warmup_steps
        if w and step < w:  # w = 0: no warm-up (a step before 0 was a division by 0, the API fuzz audit)
            return self.lr * (step + 1) / w
        if step >= self.total_steps:
            return self.min_lr
        return _cosine(self.lr, self.min_lr, max(step - w, 0) / (self.total_steps - w))


class OneCycle(Schedule):
    """Smith's 1cycle policy, lr only: torch's OneCycleLR (cosine, two phases, no momentum cycling).

        start = max_lr/div_factor,   end = start/final_div_factor,   a = pct_start·total − 1
        step ≤ a:     cosine from start up to max_lr,   progress step/a
        step > a:     cosine from max_lr down to end,   progress (step − a)/(total − 1 − a)
        step ≥ total − 1:  end   (torch raises past total_steps)
    """

    def __init__(self, max_lr: float, total_steps: int, pct_start: float = 0.3, div_factor: float = 25.0,
                 final_div_factor: float = 1e4):
        self.max_lr = positive("max_lr", max_lr)
        self.total_steps = count("total_steps", total_steps, 2)
        check("pct_start", pct_start, 0 < pct_start < 1, "in (0, 1)")
        self.pct_start = float(pct_start)
        self.div_factor = positive("div_factor", div_factor)
        self.final_div_factor = positive("final_div_factor", final_div_factor)

    def __call__(self, step):
        start = self.max_lr / self.div_factor
        end = start / self.final_div_factor
        peak, last = self.pct_start * self.total_steps - 1, self.total_steps - 1
        if step >= last:
            return end
        if step <= peak:
            return _cosine(start, self.max_lr, step / peak if peak > 0 else 1.0)
        return _cosine(self.max_lr, end, (step - peak) / (last - peak))


class ReduceOnPlateau(Schedule):
    """Multiply lr by ``factor`` (not below min_lr) after ``patience`` observations in a row
    without a relative improvement: a loss improves when loss < best·(1 − threshold).

    NOTE: the lr drops at the patience-th bad observation (Keras, and our EarlyStopping); torch's
    ReduceLROnPlateau waits one more, so our patience p is torch's p − 1. The counter restarts
    after a drop. ``lr``, ``best`` and ``bad`` are the state (``best`` None before any loss).
    """

    def __init__(self, lr: float, factor: float = 0.1, patience: int = 2, min_lr: float = 0.0,
                 threshold: float = 1e-4):
        self.lr = positive("learning rate", lr)
        check("factor", factor, 0 < factor < 1, "in (0, 1)")
        self.factor = float(factor)
        self.patience = count("patience", patience)
        check("min_lr", min_lr, 0 <= min_lr <= lr, f"in [0, lr = {lr}]")
        self.min_lr = float(min_lr)
        check("threshold", threshold, 0 <= threshold < 1, "in [0, 1)")
        self.threshold = float(threshold)
        self.best: float | None = None
        self.bad = 0

    def __call__(self, step):
        return self.lr

    def observe(self, loss):
        if self.best is None or loss < self.best * (1 - self.threshold):
            self.best, self.bad = float(loss), 0
            return
        self.bad += 1
        if self.bad >= self.patience:
            self.lr, self.bad = max(self.lr * self.factor, self.min_lr), 0


class WarmUp(Schedule):
    """Linear warm-up in front of any schedule: lr = schedule(step)·min(1, (step + 1)/warmup_steps).

    The wrapped schedule's clock is not shifted: it runs from step 0, warm-up only scales its
    first ``warmup_steps`` values (torch: LinearLR(1/w, 1, w − 1) chained with the schedule).
    """

    def __init__(self, schedule: Schedule, warmup_steps: int):
        self.schedule = schedule
        self.warmup_steps = count("warmup_steps", warmup_steps)

    def __call__(self, step):
        return self.schedule(step) * min(1.0, (step + 1) / self.warmup_steps)

    def observe(self, loss):
        self.schedule.observe(loss)

    def state_dict(self):
        return {"warmup_steps": self.warmup_steps, "schedule": self.schedule.state_dict()}

    def load_state_dict(self, state):
        check_state(state)
        self.warmup_steps = state["warmup_steps"]
        self.schedule.load_state_dict(state["schedule"])


SCHEDULES = {"constant": Constant, "step": StepDecay, "exponential": Exponential, "cosine": Cosine,
             "one-cycle": OneCycle, "plateau": ReduceOnPlateau}
