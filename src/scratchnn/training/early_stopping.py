"""Early stopping: stop when the dev metric has not improved for ``patience`` evaluations."""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..errors import ConfigError

MONITORS = {"dev_loss": "min", "dev_accuracy": "max"}


class EarlyStopping:
    """Watch ``monitor`` after every evaluation; ``update`` returns True when training should stop.

    An evaluation improves when it beats the best so far by more than ``min_delta``. With
    ``restore_best`` the model gets the weights of its best evaluation back when training ends
    (``restore``), as Keras' ``restore_best_weights`` does. The best weights are part of the
    state, so a resumed run stops and restores exactly like an uninterrupted one.
    """

    def __init__(self, monitor: str = "dev_loss", patience: int = 5, min_delta: float = 0.0,
                 restore_best: bool = True):
        if monitor not in MONITORS:
            raise ConfigError(f"early stopping can monitor {' or '.join(MONITORS)}, got {monitor!r}")
        if isinstance(patience, bool) or not isinstance(patience, numbers.Real) or not (
                patience >= 1 and float(patience).is_integer()):  # 3.0 is 3 evaluations, "3" no number
            raise ConfigError(f"patience is a whole number of evaluations >= 1, got {str(patience)[:40]!r}")
        if isinstance(min_delta, bool) or not isinstance(min_delta, numbers.Real) or not 0 <= min_delta < math.inf:
            raise ConfigError(f"min_delta is how much better an evaluation must be to count, a number >= 0, got "
                              f"{str(min_delta)[:40]!r}")
        self.monitor, self.patience, self.min_delta, self.restore_best = monitor, int(patience), min_delta, restore_best
        self.reset()

    def reset(self) -> None:
        """Forget every evaluation seen: ``fit`` calls it when a run begins (start_epoch 0), as Keras
        does, so one EarlyStopping serves several runs (the habits audit: a second model was given
        the first one's best weights when it stopped)."""
        self.best = math.inf if MONITORS[self.monitor] == "min" else -math.inf
        self.best_epoch, self.bad_evaluations = 0, 0
        self.best_weights: dict[str, np.ndarray] = {}

    def update(self, epoch: int, value: float, model) -> bool:
        """Record one evaluation of the monitored metric; True means stop now."""
        better = value < self.best - self.min_delta if MONITORS[self.monitor] == "min" \
            else value > self.best + self.min_delta
        if better:
            self.best, self.best_epoch, self.bad_evaluations = value, epoch, 0
            if self.restore_best:
                self.best_weights = model.state_dict()  # copies
        else:
            self.bad_evaluations += 1
        return self.bad_evaluations >= self.patience

    def restore(self, model) -> bool:
        """Put the best weights back into ``model``; False if there is nothing to restore."""
        if not (self.restore_best and self.best_weights):
            return False
        model.load_state_dict(self.best_weights)
        return True

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_evaluations": self.bad_evaluations,
                "best_weights": self.best_weights}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch = float(state["best"]), int(state["best_epoch"])
        self.bad_evaluations = int(state["bad_evaluations"])
        self.best_weights = {name: np.array(array) for name, array in state["best_weights"].items()}
