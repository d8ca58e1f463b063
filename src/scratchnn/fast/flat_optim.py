"""Flat optimizer state: the textbook update rules over all (packed) parameters at once, in place.

``optim.optimizers`` writes each rule as its formulas, one parameter at a time, allocating a
temporary array per operation. Here the same rules run over the flat arrays that
``packing.pack_parameters`` makes: the state of each slot ("m", "v") is one flat array too, and
every operation writes into a reused scratch array (``out=``), so a step allocates nothing and
makes one NumPy call per operation for the whole model.

The optimizer's own ``state`` keeps its by-name entries, as views into the flat state, so
``state_dict`` (and a checkpoint) holds the same names and slots whichever path trained.

SGD and RMSprop perform the textbook's operations in the textbook's order: the numbers are the
same, bit for bit, but for one step the textbook does not take: every FLUSH_EVERY steps, state
entries below 1e-30 in magnitude are set to exactly 0 (``FlatStep.flush_tiny_state``, against
subnormal slowdowns), which moves an update by at most ~lr·1e-13 (a flushed v met by a gradient
itself ~1e-15; far below float32's resolution of any weight). Adam folds the bias corrections
into two scalars,

    lr·m̂/(√v̂ + ε) = c·m/(√v + ε·k),   k = √(1 − β2ᵗ),   c = lr·k/(1 − β1ᵗ),

which saves two passes over the parameters and changes the update by float rounding only.

Every rule is elementwise, so with ``blocks`` a step (of THREADED_STEP parameters or more) runs
on each thread's block of the flat arrays, chunk by chunk (Adam's ~10 passes over a chunk while
it is in cache): the same numbers, bit for bit.
"""
from __future__ import annotations

import math

import numpy as np

from ..optim.optimizers import SGD, Adam, AdamW, Optimizer, RMSprop
from .threads import Blocks, chunks

FLUSH_EVERY = 50  # steps between sweeps of vanishing state to exactly 0 (see FlatStep.flush_tiny_state)
TINY = 1e-30
# Numbers a step's passes take at a time on a thread. Adam over 900,000 float32 parameters (cnn-
# best's), 2 threads: 2.44 ms in whole-array passes on one; in chunks of 2^17 .. 2^20 numbers
# 1.19 / 1.06 / 1.24 / 1.27 ms (its four arrays' chunks, 1 MB each at 2^18, stay in L2).
STEP_CHUNK = 1 << 18
# Fewer parameters than this step on one thread: the MLP benchmark's 235,000 (Adam 0.44 -> 0.34 ms
# a step on 2 threads, best of 50) trained ~4% slower per epoch on 2 (alternating A/B), handing
# the block to the other thread costing more there than it saves.
THREADED_STEP = 1 << 19


def sgd(opt: SGD, param, grad, state, work):
    s = work[0]
    g = grad
    if opt.weight_decay:
        g = np.multiply(param, opt.weight_decay, out=s)
        g += grad
    if not opt.momentum:
        param -= np.multiply(g, opt.lr, out=s)  # s may be g itself: fine, elementwise
        return
    b = state["velocity"]
    b *= opt.momentum
    b += g
    if opt.nesterov:
        param -= np.multiply(g, opt.lr, out=s)
        param -= np.multiply(b, opt.lr * opt.momentum, out=s)
    else:
        param -= np.multiply(b, opt.lr, out=s)


def rmsprop(opt: RMSprop, param, grad, state, work):
    g, s = grad, work[0]
    if opt.weight_decay:  # g + λθ is needed twice, next to g², so it takes the second work row
        g = np.multiply(param, opt.weight_decay, out=work[1])
        g += grad
    v = state["v"]
    np.square(g, out=s)
    s *= 1 - opt.alpha
    v *= opt.alpha
    v += s
    np.sqrt(v, out=s)
    s += opt.eps
    u = np.divide(g, s, out=s)
    if opt.momentum:
        b = state["velocity"]
        b *= opt.momentum
        b += u
        u = np.multiply(b, opt.lr, out=s)
    else:
        u *= opt.lr
    param -= u


def adam(opt: Adam, param, grad, state, work):
    lr, wd, b1, b2, t = opt.lr, opt.weight_decay, opt.beta1, opt.beta2, opt.steps
    m, v, s = state["m"], state["v"], work[0]
    if wd and opt.decoupled:
        param *= 1 - lr * wd
    g = grad
    if wd and not opt.decoupled:  # g + λθ is needed twice, so it takes the second work row
        g = np.multiply(param, wd, out=work[1])
        g += grad
    m *= b1
    m += np.multiply(g, 1 - b1, out=s)
    np.square(g, out=s)
    s *= 1 - b2
    v *= b2
    v += s
    k = math.sqrt(1 - b2 ** t)
    np.sqrt(v, out=s)
    s += opt.eps * k
    np.divide(m, s, out=s)
    s *= lr * k / (1 - b1 ** t)
    param -= s


KERNELS = {SGD: sgd, RMSprop: rmsprop, Adam: adam, AdamW: adam}


def work_rows(opt: Optimizer) -> int:
    """Scratch arrays a kernel needs: a second one holds g + λθ for coupled weight decay."""
    return 2 if getattr(opt, "weight_decay", 0) and not isinstance(opt, (SGD, AdamW)) else 1


class FlatStep:
    """``step()`` = ``optimizer.step(named_parameters)`` over packed parameters, at once.

    ``named`` are the model's (name, param, grad) triples, ``flat_params``/``flat_grads`` the
    arrays they tile, in that order. The optimizer's state by name (restored from a checkpoint,
    or empty) is copied into flat arrays, one per slot, and replaced by views of them.
    """

    def __init__(self, optimizer: Optimizer, named, flat_params: np.ndarray, flat_grads: np.ndarray,
                 blocks: Blocks | None = None):
        self.optimizer, self.kernel = optimizer, KERNELS[type(optimizer)]
        self.blocks = blocks if blocks is not None and flat_params.size >= THREADED_STEP else Blocks(1)
        self.params, self.grads = flat_params, flat_grads
        self.arrays = [param for _, param, _ in named]
        self.state = {slot: np.empty_like(flat_params) for slot in optimizer.state_slots()}
        start = 0
        for name, param, _ in named:
            end = start + param.size
            slots = optimizer._slots(name, param)  # the state by name: zeros if new, shapes checked
            for slot, flat in self.state.items():
                flat[start:end] = slots[slot].ravel()
                slots[slot] = flat[start:end].reshape(param.shape)
            start = end
        self.work = np.empty((work_rows(optimizer), flat_params.size), flat_params.dtype)

    @classmethod
    def for_model(cls, optimizer: Optimizer, model, packed, blocks: Blocks | None = None) -> FlatStep | None:
        """The flat step for ``model`` packed as ``packed``, or None for an optimizer it does
        not know (a user's subclass: it then steps by name, through its own ``update``)."""
        if packed is None or type(optimizer) not in KERNELS:
            return None
        return cls(optimizer, model.named_parameters(), *packed, blocks=blocks)

    def step(self, named_parameters) -> None:
        """One update of every parameter; ``named_parameters`` must be the packed ones."""
        if any(p is not q for (_, p, _), q in zip(named_parameters, self.arrays)):
            raise RuntimeError("the model's parameters were replaced during fit; the fast path updates "
                               "the packed arrays only (train with fast=False, or do not replace them)")
        self.optimizer.steps += 1

        def update(start, stop):
            for a, b in chunks(start, stop, 1, STEP_CHUNK):
                state = {slot: flat[a:b] for slot, flat in self.state.items()}
                self.kernel(self.optimizer, self.params[a:b], self.grads[a:b], state, self.work[:, a:b])

        self.blocks.run(update, self.params.size, self.params.size)
        if self.optimizer.steps % FLUSH_EVERY == 0:
            self.flush_tiny_state()

    def flush_tiny_state(self) -> None:
        """Set state entries below 1e-30 in magnitude to exactly 0.

        NOTE: where a gradient stays 0 (a dead ReLU unit), the state decays geometrically (Adam's
        m by β1 = 0.9 a step) and within ~800 steps enters float32's subnormal range (< 1.2e-38),
        where x86 CPUs compute 10-100x slower: it made whole Adam epochs 50% slower. Swept every
        50 steps, no entry gets there; the updates change by at most ~lr·1e-13 (module docstring).
        """
        for flat in self.state.values():
            flat[np.abs(flat) < TINY] = 0
