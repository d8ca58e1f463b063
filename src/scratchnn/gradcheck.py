"""Finite-difference gradient checks: strong evidence, at the points tried, that every backward pass is right.

For a layer y = f(x) and a random upstream gradient dy, backward must return the
vector-Jacobian product dx = (∂y/∂x)ᵀ·dy. That is the gradient of the scalar s(x) = Σ y·dy,
which central differences estimate independently of backward:

    ∂s/∂xᵢ ≈ (s(x + h·eᵢ) − s(x − h·eᵢ)) / 2h      (error O(h²))

The same holds for every parameter. Checks run in float64 (float32 rounding would swamp the
O(h²) truncation error) and report ‖analytic − numeric‖ / (‖analytic‖ + ‖numeric‖).

A gradient that is truly 0 (a bias right before batch norm: the normalisation removes any
shift) has no relative error to speak of: analytic 1e-17 against the differences' own rounding,
ε·|L|/h ≈ 1e-11, is an error of ~1. ``check_model`` therefore also passes a parameter whose
‖analytic − numeric‖ is within that rounding (``Check.resolution``): a wrong backward differs
by the size of a gradient, millions of times more.
"""
from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from math import nan, sqrt

import numpy as np

from .errors import InferenceBackward
from .model import Sequential
from .optim.arguments import positive
from .nn.activations import ReLU
from .nn.base import LAYER_TYPES, Layer
from .nn.batchnorm import BatchNorm1d
from .nn.conv import Conv2D
from .nn.dense import Dense
from .nn.dropout import Dropout
from .nn.flatten import Flatten
from .nn.losses import SoftmaxCrossEntropy
from .nn.pool import AvgPool2D

TOLERANCE = 1e-7  # a right backward in float64 with h = 1e-5 agrees to ~1e-9
ROUNDING = 100  # a difference within this many times ε·max(|L|, 1)/h per number is the differences' rounding


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """‖a − n‖ / (‖a‖ + ‖n‖), 0 when both are 0; robust where single entries are near 0."""
    denom = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    return 0.0 if denom == 0 else float(np.linalg.norm(analytic - numeric) / denom)


def numerical_gradient(f: Callable[[], float], a: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central-difference gradient of the scalar f() with respect to array ``a``, perturbed in place."""
    positive("h (the finite-difference step, e.g. 1e-5)", h)  # h=0 divided by zero: the API fuzz audit
    grad = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        old = a[i]
        a[i] = old + h
        plus = f()
        a[i] = old - h
        minus = f()
        a[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad


@dataclass
class Check:
    """One compared gradient: ``what`` (layer or loss), ``wrt`` ("x", "W", ...), relative error;
    ``difference`` ‖analytic − numeric‖ and the ``resolution`` below which central differences
    cannot tell it from 0 (0: not given)."""
    what: str
    wrt: str
    error: float
    difference: float = nan
    resolution: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error < TOLERANCE or self.difference <= self.resolution

    @property
    def at_rounding(self) -> bool:
        """Passed only as a gradient 0 to rounding (its relative error says nothing)."""
        return self.ok and self.error >= TOLERANCE


def check_layer(layer: Layer, x: np.ndarray, rng: np.random.Generator, training: bool = True,
                h: float = 1e-5) -> list[Check]:
    """Compare a layer's backward with finite differences on its input and every parameter.

    The layer is deep-copied and cast to float64, so the caller's layer is left untouched.
    Layers that draw random numbers in forward (dropout) get their generator rewound before
    every forward, so each evaluation sees the same mask.
    """
    layer = copy.deepcopy(layer).astype(np.float64)
    x = np.array(x, dtype=np.float64)
    rng_state = _layer_rng_state(layer)

    def forward():
        if rng_state is not None:
            layer.rng.bit_generator.state = rng_state
        return layer.forward(x, training=training)

    dy = rng.standard_normal(forward().shape)
    dx = layer.backward(dy)
    algorithm = getattr(layer, "algorithm", None)  # a convolution's: which of the ways to compute it
    name = (f"{type(layer).__name__}{f' {algorithm}' if algorithm else ''} {x.shape} -> {dy.shape}"
            f"{'' if training else ' (inference)'}")
    checks = [Check(name, "x", relative_error(dx, numerical_gradient(lambda: np.sum(forward() * dy), x, h)))]
    analytic = {key: grad.copy() for key, grad in layer.grads.items()}
    for key, param in layer.params.items():
        numeric = numerical_gradient(lambda: np.sum(forward() * dy), param, h)
        checks.append(Check(name, key, relative_error(analytic[key], numeric)))
    return checks


def _layer_rng_state(layer: Layer):
    rng = getattr(layer, "rng", None)
    return copy.deepcopy(rng.bit_generator.state) if isinstance(rng, np.random.Generator) else None


def _after_a_training_pass(layer: Layer, x: np.ndarray) -> Layer | None:
    """A copy of ``layer`` after one training-mode forward on ``x`` (batch norm's running
    statistics moved off 0 and 1), if its inference-mode forward differs from the training one."""
    layer = copy.deepcopy(layer).astype(np.float64)
    x = np.array(x, dtype=np.float64)
    trained = layer.forward(x, training=True)
    layer.release_cache()
    return None if np.allclose(trained, layer.forward(x, training=False)) else layer


def check_loss(loss, logits: np.ndarray, labels: np.ndarray, h: float = 1e-5) -> Check:
    """Compare a loss's backward (∂L/∂logits) with finite differences of its forward."""
    logits = np.array(logits, dtype=np.float64)
    loss.forward(logits, labels)
    analytic = loss.backward()
    numeric = numerical_gradient(lambda: loss.forward(logits, labels), logits, h)
    smoothing = getattr(loss, "label_smoothing", 0)
    name = type(loss).__name__ + (f"(label_smoothing={smoothing:g})" if smoothing else "")
    return Check(name, "logits", relative_error(analytic, numeric))


def check_model(model, loss, x: np.ndarray, labels: np.ndarray, h: float = 1e-5,
                training: bool = False) -> list[Check]:
    """End to end: backprop through loss and every layer vs finite differences of the loss.

    ``training=True`` checks the training-mode passes (batch norm's batch statistics, dropout's
    masks and 1/(1-p) scale): each forward draws the same masks, from the model's generator
    reset to its state before the first."""
    model = copy.deepcopy(model).astype(np.float64)
    x = np.array(x, dtype=np.float64)
    rng_state = model.rng.bit_generator.state

    def value():
        model.rng.bit_generator.state = rng_state  # the same dropout masks every time
        return loss.forward(model.forward(x, training=training), labels)

    value()
    with warnings.catch_warnings():  # the inference-mode gradients are checked on purpose
        warnings.simplefilter("ignore", InferenceBackward)
        model.backward(loss.backward())
    analytic = {name: grad.copy() for name, _, grad in model.named_parameters()}
    what = f"Sequential {model.widths()}" + (" (training)" if training else "")
    rounding = ROUNDING * np.finfo(np.float64).eps * max(abs(float(value())), 1.0) / h
    checks = []
    for name, param, _ in model.named_parameters():
        numeric = numerical_gradient(value, param, h)
        checks.append(Check(what, name, relative_error(analytic[name], numeric),
                            float(np.linalg.norm(analytic[name] - numeric)), rounding * sqrt(param.size)))
    return checks


def standard_cases(rng: np.random.Generator) -> list[tuple[Layer, np.ndarray]]:
    """Every registered layer type's own (layer, input) cases, as each declares them beside its
    backward (``Layer.gradcheck_cases``); ``scratchnn gradcheck`` runs them all. A layer type
    without a case is an error that names it, never a silent gap."""
    return [case for kind in LAYER_TYPES.values() for case in kind.gradcheck_cases(rng)]


def check_everything(seed: int = 0) -> list[Check]:
    """Every layer type (in inference mode too where that computes something else: batch norm's
    running statistics, dropout's identity), the loss, and a small model end to end."""
    rng = np.random.default_rng(seed)
    checks = []
    for layer, x in standard_cases(rng):
        checks += check_layer(layer, x, rng)
        trained = _after_a_training_pass(layer, x)
        if trained is not None:
            checks += check_layer(trained, x, rng, training=False)
    for smoothing in (0.0, 0.1):
        checks.append(check_loss(SoftmaxCrossEntropy(smoothing), rng.standard_normal((6, 10)) * 3,
                                 rng.integers(0, 10, 6)))
    model = Sequential([Dense(8, 6, rng=rng), ReLU(), Dense(6, 10, rng=rng)])
    checks += check_model(model, SoftmaxCrossEntropy(), clear_of_kinks(model, rng, (4, 8)), rng.integers(0, 10, 4))
    # training mode end to end: batch norm on the batch's statistics, dropout's masks and scale
    # (batch norm after the ReLU: right after a Dense it would cancel the bias's gradient, exactly 0)
    trained = Sequential([Dense(8, 6, rng=rng), ReLU(), BatchNorm1d(6), Dropout(0.3), Dense(6, 10, rng=rng)], rng=seed)
    checks += check_model(trained, SoftmaxCrossEntropy(), clear_of_kinks(trained, rng, (6, 8)),
                          rng.integers(0, 10, 6), training=True)
    # a small CNN end to end: the convolution's pixel-major output through pool and flatten (whose
    # own cases see it alone) into the dense layer, images taller than wide
    cnn = Sequential([Conv2D(1, 3, 3, padding=1, bias_init="glorot_uniform", algorithm="im2col", rng=rng), ReLU(),
                      AvgPool2D(2), Flatten(), Dense(18, 10, rng=rng)], input_shape=(1, 6, 4))
    checks += check_model(cnn, SoftmaxCrossEntropy(), clear_of_kinks(cnn, rng, (4, 1, 6, 4)), rng.integers(0, 10, 4))
    return checks


def clear_of_kinks(model: Sequential, rng: np.random.Generator, shape, margin: float = 1e-3,
                   spread: float = 0.01) -> np.ndarray:
    """Random inputs (standard normal) where central differences measure slopes: every ReLU
    input at least ``margin`` from 0, and every unit batch norm normalises varying by ``spread``.

    ReLU has no derivative at its kink, so differences that straddle it (an input within h of 0)
    measure a jump: one pre-activation 6e-6 from 0 made a right backward "fail" with error 0.14.
    Batch norm divides by the batch's standard deviation, so a unit nearly constant over the
    batch (on for one sample of six) curves the loss so sharply that the differences' h² error
    reaches 1e-7. Inputs are drawn again until neither happens (a few draws)."""
    for _ in range(1000):
        x = h = rng.standard_normal(shape)
        for layer in model.layers:  # here no layer before a ReLU or batch norm computes otherwise in training
            if isinstance(layer, ReLU) and np.abs(h).min() < margin or (
                    isinstance(layer, BatchNorm1d) and h.var(axis=0).min() < spread):
                break
            h = layer.forward(h)
        else:
            model.release_caches()
            return x
    raise RuntimeError(f"no input of shape {shape} suits a gradient check of {model.widths()}")
