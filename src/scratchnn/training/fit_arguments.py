"""fit's and evaluate's arguments, checked up front: what a slip of the hand gives (a class for an
instance, raw pixels, a NaN, epochs=-1) is one line before anything trains, not an error from
deep inside the loop or a result that quietly means nothing."""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..data.split import refuse_non_finite, refuse_non_real, refuse_raw_pixels
from ..errors import ConfigError, ModelFileError, ShapeError
from ..model import Sequential
from ..model_schema import checked_shapes
from ..nn.activations import Activation
from ..nn.base import generator
from ..nn.losses import check_labels
from .batch_norm_batches import check_batches
from .early_stopping import EarlyStopping
from .memory import check_batch_memory

MAX_COUNT = 1_000_000  # epochs, a starting epoch, evaluations apart: TrainConfig's bound on --epochs


def checked_arguments(model: Sequential, optimizer, x_train, y_train, x_dev, y_dev, batch_size: int | None,
                       counts: tuple[int, int, int], early_stopping: EarlyStopping | None, augment, augment_rng):
    """fit's arguments checked up front, before anything is trained or packed: (x_train, y_train,
    x_dev, y_dev, augment_rng) as arrays (an empty dev set when none is given) and a Generator;
    ``counts``: (epochs, start_epoch, eval_every)."""
    _check_loop(model, optimizer, batch_size, *counts)
    x_train, y_train = as_arrays(x_train, y_train)
    check_data(model, x_train, y_train, "training")
    check_batches(model, len(x_train), batch_size)
    check_batch_memory(model, len(x_train), batch_size)
    if (x_dev is None) != (y_dev is None):
        raise ShapeError("give x_dev and y_dev together (the dev images and their labels), or neither")
    if x_dev is None:
        x_dev, y_dev = x_train[:0], y_train[:0]
    x_dev, y_dev = as_arrays(x_dev, y_dev)
    scaled = x_train.size > 0 and x_train.dtype.kind == "f" and float(np.max(x_train)) <= 1
    check_data(model, x_dev, y_dev, "dev", raw_floats=scaled)  # x_train / 255 but x_dev as it was: refused
    if early_stopping is not None and len(x_dev) == 0:
        raise ConfigError("early stopping watches the dev set: give x_dev and y_dev (it would stop after "
                          f"{early_stopping.patience} epochs with nothing to watch)")
    if augment and augment_rng is None:
        raise ValueError("augment needs augment_rng, the generator of its random transforms")
    if augment and not isinstance(augment_rng, np.random.Generator):
        augment_rng = generator(augment_rng, "augment_rng")  # a seed, as rng takes one
    return x_train, y_train, x_dev, y_dev, augment_rng


def check_objects(who: str, model: Sequential, optimizer=None, *, needs_optimizer: bool = True) -> None:
    """A ConfigError naming what ``who`` (fit, evaluate, lr_find) was given where it takes a
    Sequential and an optimizer object (None or the class SGD were AttributeErrors from inside)."""
    if not isinstance(model, Sequential):
        raise ConfigError(f"{who} takes a Sequential model, got {type(model).__name__}")
    if needs_optimizer and isinstance(optimizer, str):  # Keras's compile(optimizer="adam")
        raise ConfigError(f"{who} needs an optimizer object, got the name {optimizer[:40]!r}: e.g. Adam(1e-3), "
                          "from scratchnn.optim import Adam")
    if needs_optimizer and (isinstance(optimizer, type) or not callable(getattr(optimizer, "step", None))):
        name = getattr(optimizer, "__name__", type(optimizer).__name__)
        raise ConfigError(f"{who} needs an optimizer object, got {name}: e.g. SGD(0.1), not SGD")


def check_output_layer(model: Sequential) -> None:
    """A ConfigError for a model that ends with an activation, trained on the softmax cross-entropy:
    that loss takes raw scores (logits) and applies the softmax itself, so the activation squeezes
    them first (the habits audit: Keras's Dense(10, activation="sigmoid") habit trained without a
    word, its probabilities never above 0.23 and its loss never under 1.46)."""
    last = model.layers[-1] if model.layers else None
    if isinstance(last, Activation):
        raise ConfigError(f"the model ends with {type(last).__name__}(): the loss (SoftmaxCrossEntropy) takes the last "
                          "layer's raw scores (logits) and applies the softmax itself, so an activation after it "
                          "squeezes them; end the model with its last Dense layer")


def check_parameters(model: Sequential) -> None:
    """Each parameter a NumPy float array of the shape its layer makes: one assigned by hand (a
    torch tensor, a torch Linear's (out, in) weight) failed deep inside a product, the fast path
    with another error than the textbook one (the habits audit). A learner's own layers are theirs."""
    try:
        shapes, _ = checked_shapes(model.config())
    except (ModelFileError, KeyError, TypeError):  # a layer of the learner's own: no config to check against
        return
    for name, value, _ in model.named_parameters():
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
            kind = type(value).__name__ + (f" of {value.dtype}" if hasattr(value, "dtype") else "")
            raise ConfigError(f"parameter {name} is a {kind}: parameters are NumPy float arrays; assign "
                              "np.asarray(tensor.detach(), np.float32), or load them with model.load_state_dict")
        want = tuple(shapes.get(name, value.shape))
        if value.shape != want:
            turned = " (transposed? a torch Linear's weight is (out, in), a Dense's W (in, out): weight.T)"
            raise ShapeError(f"parameter {name} has shape {value.shape}, but its layer makes {want}"
                             + (turned if value.shape == want[::-1] else ""))


def _check_loop(model: Sequential, optimizer, batch_size, epochs, start_epoch, eval_every) -> None:
    """The loop's own arguments: what a slip of the hand gives (a class for an instance; epochs=-1
    returned [] without a word, start_epoch=-3 trained epochs -2 to 2; the API fuzz audit)."""
    check_objects("fit", model, optimizer)
    check_parameters(model)
    for name, value, low, high in (("epochs", epochs, 1, MAX_COUNT), ("start_epoch", start_epoch, 0, MAX_COUNT),
                                   ("eval_every", eval_every, 1, MAX_COUNT), ("batch_size", batch_size or 0, 0, None)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low or (high and value > high):
            span = f"from {low} to {high:,}" if high else f">= {low} (0 or None: the full batch)"
            raise ConfigError(f"{name} is a whole number {span}, got {repr(value)[:40]}")
    if start_epoch > epochs:
        raise ConfigError(f"start_epoch {start_epoch} is past epochs {epochs}: there is nothing left to train")
    check_eps(model, optimizer)


def check_eps(model: Sequential, optimizer) -> None:
    """A ConfigError for an optimizer's ε (Adam's, RMSprop's) that is 0 in the model's numbers:
    a weight whose gradient is always 0 (a border pixel's) then moves by 0 / (√0 + 0) = NaN, and
    training 'diverged' at its second step, blamed on the learning rate (the numerics audit: eps
    1e-50 in float32, and the default 1e-8 of a model cast to float16)."""
    eps = getattr(optimizer, "eps", None)
    dtype = np.dtype(model.dtype)
    if isinstance(eps, float) and dtype.kind == "f" and dtype.type(eps) == 0:
        fits = next(value for value in (1e-8, 1e-4) if dtype.type(value) != 0)
        raise ConfigError(f"{type(optimizer).__name__}'s eps {eps:g} is 0 in {dtype} (the model's numbers): a weight "
                          f"whose gradient is always 0 would move by 0/0, NaN; use eps={fits:g} or more")


def as_arrays(x, labels) -> tuple[np.ndarray, np.ndarray]:
    """Lists (of pixel rows, of labels) as arrays, as predict takes them; arrays as they are."""
    return (x if isinstance(x, np.ndarray) else np.asarray(x),
            labels if isinstance(labels, np.ndarray) else np.asarray(labels))


def check_data(model: Sequential, x: np.ndarray, labels: np.ndarray, name: str, empty: bool = False,
               raw_floats: bool = False) -> None:
    """Validate once, up front, what the loop would otherwise trip over mid-training. Training data
    may be floats of 0..255 (the lab feeds them on purpose, and the doctor names them); with
    ``raw_floats`` such floats are refused as predict refuses them: a dev set beside scaled training
    data, an evaluation (the habits audit: x_test.astype("float32") without / 255 gave a dev loss
    of 49 and a batch-normed model's dev accuracy as 0.52 for 0.79)."""
    if x.ndim == 1 and labels.ndim > 1 and math.prod(labels.shape[1:]) == math.prod(model.input_shape):
        raise ShapeError(f"the {name} data has shape {x.shape} and its labels {labels.shape}: swapped, by the look "
                         "of it; give the images first, then the labels")  # else: "raw pixels 0..255" of labels
    refuse_non_real(x, f"the {name} data")
    refuse_raw_pixels(x, f"the {name} data", whole_floats=raw_floats)
    if x.shape[1:] != model.input_shape:
        raise ShapeError(f"{name} data has samples of shape {x.shape[1:]}, model expects {model.input_shape}"
                         + model.reshape_hint(x.shape))
    if len(x) == 0 and empty:
        return
    if name == "training" and len(x) == 0:
        raise ShapeError("no training data: the training set is empty")
    refuse_non_finite(x, model.dtype, f"{name} data")
    check_labels(labels, len(x), model.num_classes)
