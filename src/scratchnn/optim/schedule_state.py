"""What a saved schedule state (``Schedule.state_dict()``) may hold, checked before it is loaded.

A checkpoint's schedule state is read back from a file that may be damaged or edited, so it is
checked before a run resumes into it: a step count of 2.5 or a learning rate of 1e300 would
otherwise resume into a broken or diverging run.
"""
from __future__ import annotations

import math

from ..errors import ConfigError, names_in_message
from ..nn.schema import show

# What a saved state (``state_dict()``) may hold, so a damaged checkpoint cannot resume into a
# diverging run: step and evaluation counts are whole numbers from the least given here (those that
# divide from 1; WarmUp's warmup_steps too), learning rates in [0, MAX_RATE] (a checkpoint's bound on
# the optimizer's), ReduceOnPlateau's best loss null or finite >= 0, and every other number a
# factor, finite and >= 0, above 0 where it divides (a config's lr_gamma has no upper bound).
COUNTS = {"step_size": 1, "every": 1, "total_steps": 1, "patience": 1, "warmup_steps": 0, "bad": 0}
RATES = ("lr", "max_lr", "min_lr")
DIVISORS = ("div_factor", "final_div_factor")
MAX_RATE = 1e6


def check_state(state: dict, where: str = "schedule") -> None:
    """Refuse (ConfigError) a saved schedule state outside those ranges; WarmUp's holds the wrapped one's."""
    if type(state) is not dict:
        raise ConfigError(f"{where} must be an object of numbers, got {show(state)}")
    for key, value in state.items():
        # the key is the file's: quoted and cut when it is not a plain word (a newline broke the one line)
        name = f"{where} {names_in_message([key])}"
        real = isinstance(value, (int, float)) and not isinstance(value, bool)
        if key == "schedule" and "warmup_steps" in state:
            check_state(value, name)
        elif key in COUNTS:
            low = 1 if key == "warmup_steps" and "schedule" in state else COUNTS[key]
            if type(value) is not int or value < low:
                raise ConfigError(f"{name} must be a whole number >= {low}, got {show(value)}")
        elif key == "best" and value is None:
            continue
        elif not (real and (value > 0 if key in DIVISORS else value >= 0)
                  and value <= (MAX_RATE if key in RATES else math.inf) and math.isfinite(value)):
            allowed = (f"a number in [0, {MAX_RATE:g}]" if key in RATES else "a finite number > 0" if key in DIVISORS
                       else "null or a finite number >= 0" if key == "best" else "a finite number >= 0")
            raise ConfigError(f"{name} must be {allowed}, got {show(value)}")
