"""Optimizers: ``step(named_parameters)`` updates each parameter array in place.

State (velocities, moment estimates) is keyed by the parameter's name ("0.W"), so it can be
saved in a checkpoint and restored with ``load_state_dict``. The update rules are the ones
documented for torch.optim.SGD, RMSprop, Adam and AdamW, so runs can be checked against PyTorch.

Notation: θ a parameter, g = ∂L/∂θ, lr the learning rate (read at every step: a schedule may
change it), λ the weight decay, t = ``steps`` (1 during the first update).

This is the textbook path: each ``update`` is its docstring's formulas, one parameter at a time.
``fit`` (with ``fast=True``, the default) runs the same rules through ``scratchnn.fast.flat_optim``
instead: all parameters at once, in place, with no temporary arrays; a test keeps the two equal.
"""
from __future__ import annotations

import math
import weakref

import numpy as np

from ..errors import ConfigError, ShapeError
from .arguments import check, non_negative, unit_interval


class Optimizer:
    """Base class: learning rate, per-parameter state by name, step counter.

    A subclass implements ``update(name, param, grad)``, which changes ``param`` (and its state
    arrays) in place; ``self.steps`` already counts the current step when it runs.
    """

    def __init__(self, lr: float):
        if isinstance(lr, bool) or not isinstance(lr, (int, float, np.integer, np.floating)):
            raise ConfigError(f"the first argument is the learning rate, a number such as 0.1, got a "
                              f"{type(lr).__name__}; the parameters go to each step: "
                              "opt.step(model.named_parameters())")
        if not (lr > 0 and math.isfinite(lr)):
            raise ConfigError(f"learning rate must be > 0, got {lr}")
        self.lr = float(lr)
        self.steps = 0
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self._model = None  # a weak reference to the model ``fit`` trains with it (``attach``)

    def attach(self, model, carry_over: bool = False) -> None:
        """Train ``model`` from now on (``fit`` calls it): a ConfigError if this optimizer keeps
        state (velocities, moment estimates) from steps for another model, keyed by the parameters'
        names ("0.W" is every model's first weight matrix; the habits audit: Adam's m, v and 52 steps
        carried into a fresh model without a word). Plain SGD keeps none, and fit again on the same
        model continues; ``carry_over`` takes the state on purpose (a copy of the same model)."""
        previous = getattr(self, "_model", None)  # (an optimizer of one's own, or saved before it existed)
        keeps = any(getattr(self, "state", {}).values())  # plain SGD's entries are empty: nothing to carry
        if keeps and previous is not None and previous() is not model and not carry_over:
            raise ConfigError(f"this {type(self).__name__} keeps state (momentum, moment estimates) from "
                              f"{self.steps:,} steps for another model, by parameter name: give each model its own "
                              f"optimizer, e.g. a new {type(self).__name__}(...); to go on with this state on purpose "
                              "(a copy of the same model), call optimizer.attach(model, carry_over=True) first")
        self._model = weakref.ref(model)

    def __getstate__(self) -> dict:
        """What a copy keeps (``copy.deepcopy``, serialised objects): all but the weak reference to its model."""
        return {**self.__dict__, "_model": None}

    def step(self, named_parameters) -> None:
        """Apply one update to every (name, param, grad) triple."""
        if callable(named_parameters) or isinstance(named_parameters, (dict, str)):
            raise ConfigError("step takes this step's (name, param, grad) triples: "
                              "opt.step(model.named_parameters()), after model.backward")
        self.steps += 1
        for name, param, grad in named_parameters:
            self.update(name, param, grad)

    def update(self, name: str, param: np.ndarray, grad: np.ndarray) -> None:
        raise NotImplementedError

    def state_slots(self) -> tuple[str, ...]:
        """The names of the state arrays each parameter gets ("m", "v"); none by default."""
        return ()

    def state_dict(self) -> dict:
        """lr, steps and a copy of the state by name: later steps do not change what it holds."""
        state = {name: {k: v.copy() for k, v in slots.items()} for name, slots in self.state.items()}
        return {"lr": self.lr, "steps": self.steps, "state": state}

    def load_state_dict(self, state: dict) -> None:
        """Take ``state_dict()``'s output; state slots this optimizer does not keep are refused."""
        expected = set(self.state_slots())
        for name, slots in state["state"].items():
            if set(slots) != expected:
                raise ConfigError(f"optimizer state for {name} holds {', '.join(sorted(slots)) or 'nothing'}, but "
                                  f"{type(self).__name__} keeps {', '.join(sorted(expected)) or 'nothing'}; "
                                  "it was saved by another optimizer or an older scratchnn: start the run afresh")
        self.lr, self.steps = float(state["lr"]), int(state["steps"])
        self.state = {name: {k: np.array(v) for k, v in s.items()} for name, s in state["state"].items()}

    def _slots(self, name: str, param: np.ndarray) -> dict[str, np.ndarray]:
        """The state of ``name``: zero arrays of the parameter's shape and dtype on first use."""
        state = self.state.get(name)
        if state is None:
            state = self.state[name] = {slot: np.zeros_like(param) for slot in self.state_slots()}
        for slot, array in state.items():
            if array.shape != param.shape:
                raise ShapeError(f"optimizer state {name}.{slot} has shape {array.shape}, "
                                 f"but the parameter has shape {param.shape}")
        return state


class SGD(Optimizer):
    """Gradient descent with optional momentum μ, Nesterov momentum and L2 weight decay λ.

        g ← g + λ·θ                                  (weight_decay > 0: coupled L2 penalty)
        b ← μ·b + g                                  (momentum > 0; slot "velocity", starts at 0)
        θ ← θ − lr·b            (momentum)       θ ← θ − lr·(g + μ·b)   (nesterov)

    With μ = λ = 0 it is the seed's update θ ← θ − lr·g. Same as torch.optim.SGD (dampening 0,
    whose b = g at the first step is μ·0 + g).
    """

    def __init__(self, lr: float, momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0):
        super().__init__(lr)
        self.momentum = unit_interval("momentum", momentum)
        self.weight_decay = non_negative("weight_decay", weight_decay)
        if nesterov and not self.momentum:
            raise ConfigError(f"nesterov requires momentum > 0, got momentum {momentum}")
        self.nesterov = bool(nesterov)

    def state_slots(self):
        return ("velocity",) if self.momentum else ()

    def update(self, name, param, grad):
        lr, mu = self.lr, self.momentum
        g = grad + self.weight_decay * param if self.weight_decay else grad
        if not mu:
            param -= lr * g
            return
        b = self._slots(name, param)["velocity"]
        b[...] = mu * b + g
        if self.nesterov:
            param -= lr * g
            param -= (lr * mu) * b
        else:
            param -= lr * b


class RMSprop(Optimizer):
    """Divide the step by a running root mean square of the gradient (Hinton's RMSprop).

        g ← g + λ·θ                                  (weight_decay > 0: coupled L2 penalty)
        v ← α·v + (1 − α)·g²                         (slot "v", starts at 0)
        u = g / (√v + ε)                             (NOTE: ε outside the root, as in PyTorch)
        θ ← θ − lr·u                                 (momentum μ = 0)
        b ← μ·b + u,  θ ← θ − lr·b                   (momentum μ > 0; slot "velocity", starts at 0)

    Same as torch.optim.RMSprop with centered=False.
    """

    def __init__(self, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8, momentum: float = 0.0,
                 weight_decay: float = 0.0):
        super().__init__(lr)
        self.alpha = unit_interval("alpha", alpha)
        check("eps", eps, 0 < eps < math.inf, "> 0")
        self.eps = float(eps)
        self.momentum = unit_interval("momentum", momentum)
        self.weight_decay = non_negative("weight_decay", weight_decay)

    def state_slots(self):
        return ("v", "velocity") if self.momentum else ("v",)

    def update(self, name, param, grad):
        a, state = self.alpha, self._slots(name, param)
        g = grad + self.weight_decay * param if self.weight_decay else grad
        v = state["v"]
        v[...] = a * v + (1 - a) * g**2
        u = g / (np.sqrt(v) + self.eps)
        if self.momentum:
            b = state["velocity"]
            b[...] = self.momentum * b + u
            u = b
        param -= self.lr * u


class Adam(Optimizer):
    """Adam: momentum on g and a per-coordinate step size from the running mean of g².

        g ← g + λ·θ                                  (weight_decay > 0: coupled L2, Adam only)
        m ← β1·m + (1 − β1)·g,  v ← β2·v + (1 − β2)·g²        (the moments, start at 0)
        m̂ = m / (1 − β1ᵗ),      v̂ = v / (1 − β2ᵗ)              (bias correction)
        θ ← θ − lr·m̂ / (√v̂ + ε)

    The first step moves every coordinate by ≈ lr (m̂/√v̂ = g/|g|). Same as torch.optim.Adam
    (amsgrad=False). ``AdamW`` replaces the coupled L2 term by decoupled weight decay.
    """

    decoupled = False

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(lr)
        self.beta1 = unit_interval("beta1", beta1)
        self.beta2 = unit_interval("beta2", beta2)
        check("eps", eps, 0 < eps < math.inf, "> 0")
        self.eps = float(eps)
        self.weight_decay = non_negative("weight_decay", weight_decay)

    def state_slots(self):
        return ("m", "v")

    def load_state_dict(self, state: dict) -> None:
        """As every optimizer's; the sums μ = m/(1 − β1) and ν = v/(1 − β2) that scratchnn kept
        before 2026-12-02 (slots "m_sum", "v_sum") are taken as the m and v they stand for: the
        runs it interrupted then could not be resumed (the compatibility audit)."""
        kept = {name: {"m": np.asarray(slots["m_sum"]) * (1 - self.beta1),
                       "v": np.asarray(slots["v_sum"]) * (1 - self.beta2)}
                for name, slots in state["state"].items() if set(slots) == {"m_sum", "v_sum"}}
        super().load_state_dict({**state, "state": {**state["state"], **kept}})

    def update(self, name, param, grad):
        lr, wd, b1, b2, t = self.lr, self.weight_decay, self.beta1, self.beta2, self.steps
        state = self._slots(name, param)
        m, v = state["m"], state["v"]
        if wd and self.decoupled:
            param *= 1 - lr * wd                     # AdamW: θ ← θ − lr·λ·θ
        g = grad + wd * param if wd and not self.decoupled else grad
        m[...] = b1 * m + (1 - b1) * g
        v[...] = b2 * v + (1 - b2) * g**2
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        param -= lr * m_hat / (np.sqrt(v_hat) + self.eps)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019), in PyTorch's convention:
    before the Adam step,

        θ ← θ − lr·λ·θ

    instead of adding λ·θ to g, so the decay is not rescaled by 1/√v̂. Same as torch.optim.AdamW.
    The paper scales λ·θ by the schedule's multiplier alone, not by the base rate, so a λ taken
    from it is ~1/lr times stronger than the same number here.
    """

    decoupled = True

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 weight_decay: float = 0.01):
        super().__init__(lr, beta1, beta2, eps, weight_decay)


OPTIMIZERS = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW}


def make_optimizer(name: str, lr: float, *, momentum: float = 0.0, nesterov: bool = False,
                   weight_decay: float = 0.0) -> Optimizer:
    """Build the optimizer ``name`` (a key of OPTIMIZERS) from command-line style options.

    ``momentum`` applies to sgd and rmsprop, ``nesterov`` to sgd only; passing them to another
    optimizer is an error rather than silently ignored. ``weight_decay`` is used as given
    (so "adamw" with weight_decay 0 is Adam).

    >>> make_optimizer("sgd", 0.1, momentum=0.9, nesterov=True).nesterov
    True
    """
    if name not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    if nesterov and name != "sgd":
        raise ConfigError(f"nesterov applies only to sgd, not {name}")
    if momentum and name not in ("sgd", "rmsprop"):
        raise ConfigError(f"momentum applies only to sgd and rmsprop, not {name} (it has beta1)")
    if name == "sgd":
        return SGD(lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    if name == "rmsprop":
        return RMSprop(lr, momentum=momentum, weight_decay=weight_decay)
    return OPTIMIZERS[name](lr, weight_decay=weight_decay)
