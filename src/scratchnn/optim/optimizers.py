"""Optimizers: ``step(named_parameters)`` updates each parameter array in place.

State (velocities, moment estimates) is keyed by the parameter's name ("0.W"), so it can be
saved in a checkpoint and restored with ``load_state_dict``.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError


class Optimizer:
    """Base class: learning rate, per-parameter state by name, step counter."""

    def __init__(self, lr: float):
        if not lr > 0:
            raise ConfigError(f"learning rate must be > 0, got {lr}")
        self.lr = float(lr)
        self.steps = 0
        self.state: dict[str, dict[str, np.ndarray]] = {}

    def step(self, named_parameters) -> None:
        """Apply one update to every (name, param, grad) triple."""
        self.steps += 1
        for name, param, grad in named_parameters:
            self.update(name, param, grad)

    def update(self, name: str, param: np.ndarray, grad: np.ndarray) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {"lr": self.lr, "steps": self.steps,
                "state": {name: {k: v.copy() for k, v in s.items()} for name, s in self.state.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.lr, self.steps = float(state["lr"]), int(state["steps"])
        self.state = {name: {k: np.array(v) for k, v in s.items()} for name, s in state["state"].items()}


class SGD(Optimizer):
    """Plain gradient descent, the seed's update: θ ← θ − lr·∂L/∂θ."""

    def update(self, name, param, grad):
        param -= self.lr * grad
