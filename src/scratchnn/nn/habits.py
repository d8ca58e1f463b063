"""What Keras and PyTorch users write, and scratchnn's way to do the same: the texts of the
errors that point from one to the other (the habits audit: model.fit, model.parameters(),
layer.trainable = False... were bare AttributeErrors, or set and then ignored)."""
from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError

# Keras's layer.trainable = False was set as a plain attribute and trained on (the habits audit)
NO_FREEZING = ("scratchnn trains every parameter: it has no frozen layers (Keras's trainable = False, PyTorch's "
               "requires_grad_(False)); in a loop of your own, step only the others: opt.step([t for t in "
               "model.named_parameters() if not t[0].startswith('0.')]) keeps layer 0 as it is")


def as_array(x):
    """``x`` as NumPy sees it; a PyTorch tensor's values (``x.detach().cpu().numpy()``: one that
    requires grad, an ``nn.Parameter``, refuses ``np.asarray``, the second review), any other as
    ``np.asarray`` takes it. Duck-typed: scratchnn never imports torch."""
    if not isinstance(x, np.ndarray) and callable(getattr(x, "detach", None)) and hasattr(x, "numpy"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _refuse_freezing(self, value) -> None:
    if value is not True:  # trainable = True, a harmless line of ported Keras code, changes nothing
        raise ConfigError(NO_FREEZING)


always_trainable = property(lambda self: True, _refuse_freezing,  # Layer's and Sequential's trainable
                            doc="Always True: fit trains every parameter (NO_FREEZING: how to keep some as they are)")


def not_called(self, *args, **kwargs):
    """Keras's and PyTorch's ``model(x)`` and ``layer(x)``: a TypeError that says which method
    gives what (Keras's call ends in the softmax, PyTorch's gives the logits: one ``__call__`` of
    ours would silently mean the other library's to half of them)."""
    if hasattr(self, "predict_proba"):  # a Sequential
        raise TypeError("a scratchnn model is not called: model.forward(x) gives the logits (PyTorch's model(x)), "
                        "model.predict_proba(x) the probabilities (Keras's model(x), which ends in a softmax), "
                        "model.predict(x) the classes")
    raise TypeError(f"a scratchnn layer is not called: {type(self).__name__}.forward(x) gives its output for a "
                    "batch x; Sequential([...]) chains layers (Keras's functional layer(x) builds no graph here)")


# Keras's and PyTorch's model methods, and scratchnn's way to do the same (Sequential.__getattr__)
OTHER_LIBRARIES = {
    "fit": "from scratchnn.training.fit import fit; fit(model, optimizer, x, y, epochs=..., batch_size=...)",
    "compile": "nothing to compile: give fit the optimizer, fit(model, Adam(1e-3), x, y, ...)",
    "evaluate": "from scratchnn.training.fit import evaluate; loss, accuracy = evaluate(model, x, y)",
    "save": "from scratchnn import io; io.save(model, 'model.safetensors')",
    "add": "give Sequential every layer at once: Sequential([Dense(784, 64), ReLU(), Dense(64, 10)])",
    "parameters": "model.named_parameters() gives (name, array, gradient) triples",
    "zero_grad": "nothing to zero: each backward writes the gradients afresh (they do not add up)",
    "train": "model.forward(x, training=True): the mode is an argument of each pass",
    "eval": "model.forward(x) (training=False, the default): the mode is an argument of each pass",
    "to": "scratchnn runs on NumPy arrays on the CPU; model.astype(np.float64) changes the precision",
    "cuda": "scratchnn runs on NumPy arrays on the CPU",
}


def channels_last(input_shape, first_layer=None) -> str:
    """How to say a model's ``input_shape`` (H, W, C) the channels-first way scratchnn's layers take
    images (C, H, W), '' for another shape (the habits audit: input_shape=(28, 28, 1) was told
    "give input_shape what the data is", which it was, in Keras's layout). A model that starts
    with a Dense layer reads flat rows (the advice audit: it was told (1, 28, 28), refused again)."""
    shape = tuple(input_shape)
    if len(shape) != 3 or shape[2] not in (1, 3) or shape[0] in (1, 3):
        return ""
    if type(first_layer).__name__ == "Dense":
        return (f"input_shape {shape} is an image, as Keras keeps it; a model that starts with Dense reads flat rows: "
                f"input_shape=({math.prod(shape)},), and x.reshape(len(x), -1)")
    return (f"input_shape {shape} is channels last, as Keras keeps images; scratchnn's are channels first: "
            f"input_shape=({shape[2]}, {shape[0]}, {shape[1]}), and x.transpose(0, 3, 1, 2)")


def reshape_hint(input_shape: tuple[int, ...], shape: tuple[int, ...], single: bool = False) -> str:
    """How to reshape a batch of ``shape`` that holds images a model of ``input_shape`` takes, in
    another layout ('' when there is none): Keras's channels last, flattened rows, the tutorial's
    X of (784, m). ``single``: one image, given without its batch axis (it gets its own transpose)."""
    size, want = math.prod(shape), tuple(input_shape)
    if len(want) == 3 and shape[-2:] == want[1:] and want[0] == 1:  # (N, H, W) for a CNN
        images = size // (want[1] * want[2])
        return (f": {images} image(s) of {want[1]}x{want[2]} without their channel axis; "
                f"add it with x.reshape(-1, 1, {want[1]}, {want[2]})")
    if len(want) == 3 and len(shape) >= 2 and shape[1:] in ((math.prod(want),), (*want[1:], want[0])):
        how = "flattened" if len(shape) == 2 else "channels last"  # (N, 784), or (N, 28, 28, 1) as Keras keeps it
        turn = "x.transpose(2, 0, 1)" if single else "x.transpose(0, 3, 1, 2)"  # one (28, 28, 1) image: 3 axes
        return (f": {shape[0]} image(s) {how}; a CNN takes (N, {', '.join(map(str, want))}): "
                + (f"x.reshape(-1, {', '.join(map(str, want))})" if len(shape) == 2 else turn))
    if len(want) == 1 and len(shape) == 2 and shape[0] == want[0]:  # the tutorial's X of (784, m)
        return f": {shape[1]} sample(s) in columns, as the tutorial's X; scratchnn takes the batch first, x.T"
    if len(want) == 1 and size % want[0] == 0 and (len(shape) >= 3 or size == want[0]):  # images, for an MLP
        return (f": {size // want[0]} image(s) of {want[0]} pixels, not flattened; "
                f"flatten with x.reshape(-1, {want[0]})")
    return ""
