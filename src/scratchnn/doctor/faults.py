"""The break-it lab: classic from-scratch mistakes, reproduced on purpose (``train --fault NAME``).

Each fault is a few lines that change one thing about a training run just before it starts:
the data, the initial weights, the loss, a gradient or the batch order. Train with one, watch
what the network does, and read what the doctor says: it is never told which fault ran, it
sees only the health signals, as it would on a learner's own network.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..model import Sequential
from ..nn import Dense, Sigmoid


@dataclass
class Setup:
    """What a training run is about to use; a fault changes some of it in place.

    ``shuffle`` False draws batches in the data's order; ``fast`` False trains on the textbook
    layers (a fault that changes a layer's backward pass needs them: the fast path has its own).
    """

    model: Sequential
    x_train: np.ndarray
    y_train: np.ndarray
    x_dev: np.ndarray
    y_dev: np.ndarray
    loss_fn: object
    rng: np.random.Generator
    shuffle: bool = True
    fast: bool = True
    input_scale: float = 1.0  # what a fault multiplied the inputs by (augmentation works on 0..1 images, before it)


@dataclass(frozen=True)
class Fault:
    name: str
    what: str  # what the learner sees happen
    apply: Callable[[Setup], None]
    flags: str = "--preset seed"  # the run that shows it best (README's table; a full batch hides no-shuffle)
    replaces: str = ""  # the options whose effect it replaces ("--init"): set with it, they do nothing

    @property
    def command(self) -> str:
        return f"scratchnn train {self.flags} --fault {self.name}"

    @property
    def told(self) -> str:
        """How a run names it: 'zero-init: every weight ... (--init and --bias-init do nothing with
        it)': a fix followed beside the fault changed nothing, and nothing said so (a web-doctor audit)."""
        verb = "do" if " and " in self.replaces else "does"
        return f"{self.name}: {self.what}" + (f" ({self.replaces} {verb} nothing with it)" if self.replaces else "")


FAULTS: dict[str, Fault] = {}
MINIBATCHES = "--preset seed --batch-size 128 --eval-every 1"  # the seed network, on mini-batches


def fault(name: str, what: str, flags: str = "--preset seed", replaces: str = ""):
    def register(apply: Callable[[Setup], None]):
        FAULTS[name] = Fault(name, what, apply, flags, replaces)
        return apply
    return register


def apply_faults(names, setup: Setup) -> Setup:
    """Apply the named faults in order; an unknown name is a ConfigError listing the known ones."""
    for name in names:
        if name not in FAULTS:
            raise ConfigError(f"unknown fault {name!r}; choose one of {', '.join(FAULTS)}")
        FAULTS[name].apply(setup)
    return setup


def _weighted(model: Sequential):
    return [layer for layer in model.layers if "W" in layer.params]


@fault("unscaled-inputs", "pixels fed as 0..255: the first steps overshoot and the loss explodes")
def unscaled_inputs(setup: Setup) -> None:
    setup.x_train = setup.x_train * 255  # the forgotten `/ 255`
    setup.x_dev = setup.x_dev * 255
    setup.input_scale = 255.0  # an augmenting preset still moves the digits, then feeds them unscaled


class NaiveSoftmaxCrossEntropy:
    """p = exp(z) / Σ exp(z), L = −mean log p[y]: correct on paper, inf or NaN once a logit passes 88
    (exp overflows float32: inf / inf is NaN, and a p[y] rounded to 0 makes log p[y] −inf).
    SoftmaxCrossEntropy subtracts max z first and never overflows."""

    def forward(self, logits: np.ndarray, labels: np.ndarray) -> float:
        exp = np.exp(logits)
        self._probs, self._labels = exp / exp.sum(axis=1, keepdims=True), labels
        with np.errstate(divide="ignore"):  # log 0 = −inf: the divergence fit reports, not a warning
            return -float(np.mean(np.log(self._probs[np.arange(len(labels)), labels])))

    def backward(self) -> np.ndarray:
        dlogits = self._probs.copy()
        dlogits[np.arange(len(self._labels)), self._labels] -= 1
        return dlogits / len(self._labels)


@fault("naive-softmax", "exp(z) without subtracting max z: inf or NaN as soon as a logit passes 88",
       "--preset seed --hidden 128,128,128 --batch-size 128 --eval-every 1 --epochs 5", replaces="--label-smoothing")
def naive_softmax(setup: Setup) -> None:
    setup.loss_fn = NaiveSoftmaxCrossEntropy()


@fault("seed-bias-gradient", "the tutorial's db = sum(dZ) / m: one number for every unit's bias")
def seed_bias_gradient(setup: Setup) -> None:
    for layer in setup.model.layers:
        if isinstance(layer, Dense):
            backward = layer.backward

            def scalar_db(dy, need_dx=True, layer=layer, backward=backward):
                dx = backward(dy, need_dx)
                layer.grads["b"][...] = layer.grads["b"].sum()  # summed over units too: the bug
                return dx
            layer.backward = scalar_db
    setup.fast = False  # the fast path computes Dense gradients itself


@fault("zero-init", "every weight and bias starts at 0: the units stay identical, the loss stays at ln 10",
       replaces="--init and --bias-init")
def zero_init(setup: Setup) -> None:
    for layer in _weighted(setup.model):
        for array in layer.params.values():
            array[...] = 0


@fault("tiny-init", "weights drawn from N(0, 0.0001²): signals and gradients fade layer by layer",
       replaces="--init")
def tiny_init(setup: Setup) -> None:
    for layer in _weighted(setup.model):
        layer.params["W"][...] = setup.rng.normal(0, 1e-4, layer.params["W"].shape)


@fault("huge-init", "weights drawn from N(0, 1) whatever the layer size: logits in the tens or hundreds",
       replaces="--init")
def huge_init(setup: Setup) -> None:
    for layer in _weighted(setup.model):
        layer.params["W"][...] = setup.rng.normal(0, 1, layer.params["W"].shape)


@fault("no-shuffle", "batches in label order (all 0s, then all 1s...): it predicts the last class it saw",
       f"{MINIBATCHES} --epochs 5")
def no_shuffle(setup: Setup) -> None:
    order = np.argsort(setup.y_train, kind="stable")
    setup.x_train, setup.y_train = setup.x_train[order], setup.y_train[order]
    setup.shuffle = False


@fault("shuffled-labels", "training labels shuffled: train accuracy creeps up, dev stays at chance",
       "--preset mlp --epochs 5")
def shuffled_labels(setup: Setup) -> None:
    setup.y_train = setup.rng.permutation(setup.y_train)


@fault("sigmoid-deep", "five sigmoid layers with weights from N(0, 0.01²): the gradient vanishes",
       f"{MINIBATCHES} --epochs 3",
       replaces="--hidden, --activation, --init, --bias-init, --batchnorm, --dropout and --input-dropout")
def sigmoid_deep(setup: Setup) -> None:
    model, rng = setup.model, setup.rng
    features, layers = int(np.prod(model.input_shape)), []
    if len(model.input_shape) != 1:
        raise ConfigError("the sigmoid-deep fault builds an MLP of its own; train it without --conv")
    for width in (128,) * 5:
        layers += [Dense(features, width, init="zeros", bias_init="zeros"), Sigmoid()]
        features = width
    layers.append(Dense(features, model.num_classes, init="zeros", bias_init="zeros"))
    for layer in layers:
        if "W" in layer.params:
            layer.params["W"][...] = rng.normal(0, 0.01, layer.params["W"].shape)
    setup.model = Sequential(layers, model.input_shape, rng=model.rng)
