"""Optimizers: ``step(named_parameters)`` updates each parameter array in place.

State (velocities, moment estimates) is keyed by the parameter's name ("0.W"), so it can be
saved in a checkpoint and restored with ``load_state_dict``. The update rules are the ones
documented for torch.optim.SGD, RMSprop, Adam and AdamW, so runs can be checked against PyTorch.

Notation: θ a parameter, g = ∂L/∂θ, lr the learning rate (read at every step: a schedule may
change it), λ the weight decay, t = ``steps`` (1 during the first update).

Speed: every update is a short sequence of in-place NumPy calls (``out=``) through one scratch
array per parameter, allocated on the first step and reused; a step allocates nothing of the
parameters' size. The scratch holds no state and is not saved. When the parameters are views
that tile one flat array and their gradients another (``Sequential.pack_parameters``, which
fit calls), a step updates the flat arrays at once: the update rules are elementwise, so the
numbers are the same, with one NumPy call per operation instead of one per parameter.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError, ShapeError
from ..flat_arrays import tiled_base

FLUSH_EVERY = 50  # steps between sweeps of vanishing state to exactly 0 (see _flush_tiny_state)
TINY = 1e-30
WHOLE = "*"  # the state key of parameters updated as one flat array


def _check(name: str, value, ok: bool, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{name} must be {allowed}, got {value}")


def _unit_interval(name: str, value: float) -> float:
    _check(name, value, 0 <= value < 1, "in [0, 1)")
    return float(value)


def _non_negative(name: str, value: float) -> float:
    _check(name, value, 0 <= value < math.inf, "a finite number >= 0")
    return float(value)


class Optimizer:
    """Base class: learning rate, per-parameter state by name, step counter.

    A subclass implements ``update(name, param, grad)``, which changes ``param`` in place;
    ``self.steps`` already counts the current step when it runs.
    """

    def __init__(self, lr: float):
        if not (lr > 0 and math.isfinite(lr)):
            raise ConfigError(f"learning rate must be > 0, got {lr}")
        self.lr = float(lr)
        self.steps = 0
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self._scratch: dict[str, np.ndarray] = {}  # reusable work arrays, not state
        self._tiled = None  # (the (param, grad) pairs of the last step, their two flat arrays)
        self._layout: list[tuple[str, tuple[int, ...]]] = []  # (name, shape) of each part of WHOLE

    def step(self, named_parameters) -> None:
        """Apply one update to every (name, param, grad) triple."""
        self.steps += 1
        named = list(named_parameters)
        flat = self._flat_arrays(named)
        if not self._arrange_state(named, flat is not None):
            for name, param, grad in named:
                self.update(name, param, grad)
        else:
            self.update(WHOLE, *flat)
        if self.steps % FLUSH_EVERY == 0:
            self._flush_tiny_state()

    def _flat_arrays(self, named) -> tuple[np.ndarray, np.ndarray] | None:
        """(params, grads) as two flat arrays when the parameters, in order, are views that tile
        one array and their gradients another; else None."""
        arrays = [(param, grad) for _, param, grad in named]
        if self._tiled is not None and len(arrays) == len(self._tiled[0]) and \
                all(p is a and g is b for (p, g), (a, b) in zip(arrays, self._tiled[0])):
            return self._tiled[1]  # the same array objects as last step: nothing has moved
        flat = tiled_base([p for p, _ in arrays]), tiled_base([g for _, g in arrays])
        if flat[0] is None or flat[1] is None or flat[0].dtype != flat[1].dtype:
            self._tiled = None
            return None
        self._tiled = (arrays, flat)  # holding the arrays keeps their ids from being reused
        return flat

    def _arrange_state(self, named, flat: bool) -> bool:
        """Put the state in the form this step updates; True: flat, under WHOLE, False: by name.

        Switching is exact (a concatenation or a split): ``load_state_dict`` gives state by name,
        and parameters that stop tiling one array go back to one update per name. State that
        does not belong to exactly these parameters stays by name.
        """
        layout = [(name, param.shape) for name, param, _ in named]
        if WHOLE in self.state and not (flat and layout == self._layout):
            self.state = self._state_by_name()
        if not flat:
            return False
        if WHOLE not in self.state:
            if self.state and set(self.state) != {name for name, _ in layout}:
                return False  # state of other parameters, or of only some of these
            if self.state:
                slots = next(iter(self.state.values())).keys()
                self.state = {WHOLE: {slot: np.concatenate([self.state[name][slot].ravel() for name, _ in layout])
                                      for slot in slots}}
            self._layout = layout
        return True

    def _state_by_name(self) -> dict[str, dict[str, np.ndarray]]:
        """The state with WHOLE split back into one entry per parameter name (copies)."""
        if WHOLE not in self.state:
            return {name: {k: v.copy() for k, v in slots.items()} for name, slots in self.state.items()}
        state, start = {}, 0
        for name, shape in self._layout:
            size = math.prod(shape)
            state[name] = {k: v[start:start + size].reshape(shape).copy() for k, v in self.state[WHOLE].items()}
            start += size
        return state

    def update(self, name: str, param: np.ndarray, grad: np.ndarray) -> None:
        raise NotImplementedError

    def _flush_tiny_state(self) -> None:
        """Set state entries below 1e-30 in magnitude to exactly 0.

        NOTE: where a gradient stays 0 (a dead ReLU unit), the state decays geometrically (Adam's
        m by β1 = 0.9 a step) and within ~800 steps enters float32's subnormal range (< 1.2e-38),
        where x86 CPUs compute 10-100x slower: it made whole Adam epochs 50% slower. Swept every
        50 steps, no entry gets there; the updates change by at most lr·1e-22.
        """
        for slots in self.state.values():
            for array in slots.values():
                array[np.abs(array) < TINY] = 0

    def state_dict(self) -> dict:
        return {"lr": self.lr, "steps": self.steps, "state": self._state_by_name()}

    def load_state_dict(self, state: dict) -> None:
        self.lr, self.steps = float(state["lr"]), int(state["steps"])
        self.state = {name: {k: np.array(v) for k, v in s.items()} for name, s in state["state"].items()}

    def _slots(self, name: str, param: np.ndarray, *slots: str) -> dict[str, np.ndarray]:
        """The state of ``name``: zero arrays of the parameter's shape and dtype on first use."""
        state = self.state.get(name)
        if state is None:
            state = self.state[name] = {slot: np.zeros_like(param) for slot in slots}
        elif state[slots[0]].shape != param.shape:
            raise ShapeError(f"optimizer state {name}.{slots[0]} has shape {state[slots[0]].shape}, "
                             f"but the parameter has shape {param.shape}")
        return state

    def _work(self, name: str, param: np.ndarray, rows: int = 1) -> np.ndarray:
        """A reusable (rows, *param.shape) work array for ``name``; its contents are garbage."""
        work = self._scratch.get(name)
        if work is None or len(work) < rows or work.shape[1:] != param.shape or work.dtype != param.dtype:
            work = self._scratch[name] = np.empty((rows, *param.shape), param.dtype)
        return work


class SGD(Optimizer):
    """Gradient descent with optional momentum μ, Nesterov momentum and L2 weight decay λ.

        g ← g + λ·θ                                  (weight_decay > 0: coupled L2 penalty)
        b ← μ·b + g,   b = g at the first step       (momentum > 0; slot "velocity")
        θ ← θ − lr·b            (momentum)       θ ← θ − lr·(g + μ·b)   (nesterov)

    With μ = λ = 0 it is the seed's update θ ← θ − lr·g. Same as torch.optim.SGD (dampening 0).
    """

    def __init__(self, lr: float, momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0):
        super().__init__(lr)
        self.momentum = _unit_interval("momentum", momentum)
        self.weight_decay = _non_negative("weight_decay", weight_decay)
        if nesterov and not self.momentum:
            raise ConfigError(f"nesterov requires momentum > 0, got momentum {momentum}")
        self.nesterov = bool(nesterov)

    def update(self, name, param, grad):
        lr, mu = self.lr, self.momentum
        s = self._work(name, param)[0]
        g = grad
        if self.weight_decay:
            g = np.multiply(param, self.weight_decay, out=s)
            g += grad
        if not mu:
            param -= np.multiply(g, lr, out=s)  # s may be g itself: fine, elementwise
            return
        if name not in self.state:
            b = g.astype(param.dtype, copy=True)
            self.state[name] = {"velocity": b}
        else:
            b = self.state[name]["velocity"]
            b *= mu
            b += g
        if self.nesterov:
            param -= np.multiply(g, lr, out=s)
            param -= np.multiply(b, lr * mu, out=s)
        else:
            param -= np.multiply(b, lr, out=s)


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
        self.alpha = _unit_interval("alpha", alpha)
        _check("eps", eps, 0 < eps < math.inf, "> 0")
        self.eps = float(eps)
        self.momentum = _unit_interval("momentum", momentum)
        self.weight_decay = _non_negative("weight_decay", weight_decay)

    def update(self, name, param, grad):
        a = self.alpha
        state = self._slots(name, param, *(("v", "velocity") if self.momentum else ("v",)))
        v = state["v"]
        if self.weight_decay:
            # NOTE: g + λθ is needed twice, next to g², so this case takes a second work row
            g, s = self._work(name, param, 2)
            np.multiply(param, self.weight_decay, out=g)
            g += grad
        else:
            g, s = grad, self._work(name, param)[0]
        np.square(g, out=s)
        s *= 1 - a
        v *= a
        v += s
        np.sqrt(v, out=s)
        s += self.eps
        u = np.divide(g, s, out=s)
        if self.momentum:
            b = state["velocity"]
            b *= self.momentum
            b += u
            u = np.multiply(b, self.lr, out=s)
        else:
            u *= self.lr
        param -= u


class Adam(Optimizer):
    """Adam: momentum on g and a per-coordinate step size from the running mean of g².

        g ← g + λ·θ                                  (weight_decay > 0: coupled L2, Adam only)
        m ← β1·m + (1 − β1)·g,  v ← β2·v + (1 − β2)·g²        (the moments, start at 0)
        m̂ = m / (1 − β1ᵗ),      v̂ = v / (1 − β2ᵗ)              (bias correction)
        θ ← θ − lr·m̂ / (√v̂ + ε)

    The first step moves every coordinate by ≈ lr (m̂/√v̂ = g/|g|). Same as torch.optim.Adam
    (amsgrad=False). ``AdamW`` replaces the coupled L2 term by decoupled weight decay.

    NOTE: the state holds the sums μ = m/(1 − β1) and ν = v/(1 − β2) (slots "m_sum", "v_sum"):
    μ ← β1·μ + g and ν ← β2·ν + g² need one multiplication fewer each than the averages, and the
    factors (1 − β1), (1 − β2) join the bias corrections. Adam's step is memory-bound, so ten
    passes over the parameter instead of twelve make it ~15% faster; the numbers are the same
    up to float rounding.
    """

    decoupled = False

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(lr)
        self.beta1 = _unit_interval("beta1", beta1)
        self.beta2 = _unit_interval("beta2", beta2)
        _check("eps", eps, 0 < eps < math.inf, "> 0")
        self.eps = float(eps)
        self.weight_decay = _non_negative("weight_decay", weight_decay)

    def update(self, name, param, grad):
        lr, wd, b1, b2, t = self.lr, self.weight_decay, self.beta1, self.beta2, self.steps
        state = self._slots(name, param, "m_sum", "v_sum")
        mu, nu = state["m_sum"], state["v_sum"]
        s = self._work(name, param)[0]
        if wd and self.decoupled:
            param *= 1 - lr * wd
        g = grad
        if wd and not self.decoupled:
            g = np.multiply(param, wd, out=s)
            g += grad
        mu *= b1
        mu += g
        nu *= b2
        nu += np.multiply(g, g, out=s)  # s may be g itself: fine, elementwise
        # lr·m̂/(√v̂ + ε) = c·μ/(√ν + ε/k), with k = √((1 − β2)/(1 − β2ᵗ)), c = lr·(1 − β1)/((1 − β1ᵗ)·k)
        k = math.sqrt((1 - b2) / (1 - b2 ** t))
        np.sqrt(nu, out=s)
        s += self.eps / k
        np.divide(mu, s, out=s)
        s *= lr * (1 - b1) / ((1 - b1 ** t) * k)
        param -= s


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): before the Adam step,

        θ ← θ − lr·λ·θ

    instead of adding λ·θ to g, so the decay is not rescaled by 1/√v̂. Same as torch.optim.AdamW.
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
