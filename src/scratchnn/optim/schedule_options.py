"""A schedule from a run's options counted in epochs, and which schedule uses which option.

``make_schedule("cosine", 3e-3, steps_per_epoch=71, epochs=30, warmup_epochs=1)`` is what a run
of cnn-best builds (``TrainConfig.build_schedule``); ``check_schedule_options`` is the rule that
both it and ``TrainConfig.validate`` apply, so an option the schedule ignores (``--lr-gamma`` with
cosine) is an error before any training.
"""
from __future__ import annotations

from ..errors import ConfigError
from .arguments import count
from .schedules import SCHEDULES, Constant, Cosine, Exponential, OneCycle, ReduceOnPlateau, Schedule, StepDecay, WarmUp


# Which schedules use which option (the one place this rule is written; TrainConfig asks it too).
OPTION_USERS = {
    "warmup_epochs": ("constant", "step", "exponential", "cosine", "plateau"),  # one-cycle warms up itself
    "gamma": ("step", "exponential"),
    "factor": ("plateau",),
    "step_epochs": ("step",),
    "min_lr": ("cosine", "plateau"),
}


def check_schedule_options(name: str, epochs: int, options: dict, spell: dict[str, str] | None = None) -> None:
    """Refuse an option that schedule ``name`` does not use, and a warm-up as long as the run.

    ``options`` maps OPTION_USERS keys to values (None or 0: not set); ``spell`` names them as
    the caller's user typed them (``{"gamma": "--lr-gamma"}``), several keys may share a spelling.

    >>> check_schedule_options("cosine", 10, {"gamma": 0.5})
    Traceback (most recent call last):
    ...
    scratchnn.errors.ConfigError: gamma does not apply to the cosine schedule, only to step and exponential
    """
    spell = spell or {}
    warmup = options.get("warmup_epochs") or 0
    if warmup and name == "one-cycle":
        raise ConfigError(f"the one-cycle schedule has its own warm-up (30% of the run); "
                          f"set {spell.get('warmup_epochs', 'warmup_epochs')} to 0")
    if not 0 <= warmup < epochs:
        raise ConfigError(f"{spell.get('warmup_epochs', 'warmup_epochs')} must be >= 0 and shorter than the run "
                          f"(epochs = {epochs}), got {warmup:.10g}")
    for option, value in options.items():
        if not value or name in OPTION_USERS[option]:
            continue
        spelled = spell.get(option, option)
        users = [s for key, keys_users in OPTION_USERS.items() if spell.get(key, key) == spelled for s in keys_users]
        raise ConfigError(f"{spelled} does not apply to the {name} schedule, only to {' and '.join(users)}")
    factor = options.get("factor")
    if factor and name == "plateau" and not 0 < factor < 1:  # the schedule's own check, in the user's words
        raise ConfigError(f"{spell.get('factor', 'factor')} multiplies the learning rate on a plateau and must be in "
                          f"(0, 1), got {factor:.10g}")


def make_schedule(name: str, lr: float, *, steps_per_epoch: int, epochs: int, warmup_epochs: float = 0.0,
                  min_lr: float = 0.0, gamma: float | None = None, step_epochs: int | None = None,
                  factor: float = 0.1, patience: int = 2) -> Schedule:
    """Build schedule ``name`` (a key of SCHEDULES) from options counted in epochs.

    step: ×gamma (default 0.1) every step_epochs (default max(1, epochs // 3)) epochs.
    exponential: ×gamma per epoch, smoothly; default gamma = 0.01^(1/epochs), so lr/100 at the end.
    cosine: to min_lr at the end. one-cycle: peak lr, has its own warm-up (30% of the run).
    plateau: ×factor after ``patience`` evaluations without improvement, not below min_lr.
    warmup_epochs (rounded to whole steps) adds a linear warm-up to all but one-cycle. Cosine
    warms up on its own clock (its half cosine fills the steps after the warm-up, so it still
    ends at min_lr); the others are wrapped in WarmUp, which scales their first steps and leaves
    their clock alone (a step decay still falls at its epoch).
    An option the schedule does not use (gamma for cosine, say) is an error.

    >>> make_schedule("step", 0.1, steps_per_epoch=10, epochs=9)
    StepDecay(lr=0.1, step_size=30, gamma=0.1)
    """
    if name not in SCHEDULES:
        raise ConfigError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")
    steps_per_epoch, epochs = count("steps_per_epoch", steps_per_epoch), count("epochs", epochs)
    check_schedule_options(name, epochs, {"warmup_epochs": warmup_epochs, "gamma": gamma,
                                          "step_epochs": step_epochs, "min_lr": min_lr})
    total = steps_per_epoch * epochs
    warmup = max(1, round(warmup_epochs * steps_per_epoch)) if warmup_epochs else 0
    if name == "constant":
        schedule = Constant(lr)
    elif name == "step":
        step_epochs = max(1, epochs // 3) if step_epochs is None else count("step_epochs", step_epochs)
        schedule = StepDecay(lr, step_epochs * steps_per_epoch, 0.1 if gamma is None else gamma)
    elif name == "exponential":
        schedule = Exponential(lr, 0.01 ** (1 / epochs) if gamma is None else gamma, every=steps_per_epoch)
    elif name == "cosine":  # a warm-up rounded up to the whole run (1 step an epoch) leaves it 1 step to decay
        return Cosine(lr, total, min_lr=min_lr, warmup_steps=min(warmup, total - 1))
    elif name == "one-cycle":
        return OneCycle(lr, max(2, total))
    else:
        schedule = ReduceOnPlateau(lr, factor=factor, patience=patience, min_lr=min_lr)
    return WarmUp(schedule, warmup) if warmup else schedule
