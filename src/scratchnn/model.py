"""Sequential: a stack of layers applied in order, the whole network as one function."""
from __future__ import annotations

import math
import threading
import warnings
import weakref
from collections.abc import Iterable

import numpy as np

from .data.split import refuse_non_finite, refuse_non_real, refuse_raw_pixels
from .data.tta import check_tta, check_views, image_shape_for, mean_of_views, view_probas
from .display import html_table, text_table
from .errors import InferenceBackward, ModelFileError, ShapeError
from .host.resources import inference_memory
from .model_schema import checked_layer
from .nn.activations import softmax
from .nn.base import LAYER_TYPES, Layer, generator, layer_from_config, layer_to_config
from .nn.habits import OTHER_LIBRARIES, always_trainable, as_array, channels_last, not_called, reshape_hint

_PREDICTING: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> its lock (prediction_lock)
_PREDICTING_LOCK = threading.Lock()


def prediction_lock(model: Sequential) -> threading.RLock:
    """The lock predictions on ``model`` take turns with. Its layers keep work arrays between
    batches (a convolution's im2col matrix) and caches, so two predictions at once on one model
    (threads of a web app) would write into each other's: one model answers one call at a time.
    For predictions in parallel, give each thread its own copy (``copy.deepcopy(model)``, which
    may be taken while the model serves: copies leave the caches and work arrays behind)."""
    with _PREDICTING_LOCK:
        return _PREDICTING.setdefault(model, threading.RLock())


def _check_layers(layers: list) -> None:
    """Each entry a layer object, each object once: ``[Dense(64, 64), ReLU()] * 3`` repeats the
    same Dense, whose gradient would then be overwritten by its other uses' (the math assumes
    every layer has weights of its own)."""
    seen: dict[int, int] = {}
    for i, layer in enumerate(layers):
        if isinstance(layer, type):
            raise ShapeError(f"layer {i} is the class {layer.__name__}, not a layer: write {layer.__name__}(...)")
        if not isinstance(layer, Layer):
            raise ShapeError(f"layer {i} is a {type(layer).__name__}, not a scratchnn layer (nn.Dense, nn.ReLU, ...)")
        if id(layer) in seen:
            raise ShapeError(f"layers {seen[id(layer)]} and {i} are the same {type(layer).__name__} object: "
                             "give each place its own (a list comprehension, not [...] * n)")
        seen[id(layer)] = i


class Sequential:
    """Layers applied in order: x (N, *input_shape) -> logits (N, C).

    >>> from scratchnn import Dense, ReLU
    >>> model = Sequential([Dense(784, 10, rng=0), ReLU(), Dense(10, 10, rng=1)])
    >>> model.predict(np.zeros((3, 784), np.float32)).shape
    (3,)
    >>> [name for name, _, _ in model.named_parameters()]
    ['0.W', '0.b', '2.W', '2.b']
    """

    def __init__(self, layers: Iterable[Layer], input_shape: Iterable[int] | None = None,
                 rng: np.random.Generator | int | None = None):
        if isinstance(layers, Layer) or not isinstance(layers, Iterable):  # Sequential(Dense(...)), Sequential(None)
            raise ShapeError(f"Sequential takes a list of layers, got {type(layers).__name__}: "
                             "Sequential([Dense(784, 10), ...])")
        self.layers = list(layers)
        _check_layers(self.layers)
        self.rng = generator(rng)  # the one generator behind dropout masks
        for layer in self.layers:
            if layer.uses_rng:
                layer.rng = self.rng
        if not self.layers:
            raise ShapeError("a Sequential model needs at least one layer")
        if input_shape is None:
            first = self.layers[0]
            if not hasattr(first, "in_features"):
                raise ShapeError(f"give input_shape: it cannot be inferred from {first!r}")
            input_shape = (first.in_features,)
        if isinstance(input_shape, (int, np.integer)):
            input_shape = (input_shape,)  # 784 means (784,)
        self.input_shape = tuple(int(s) for s in input_shape)
        self._check_chain()

    def _check_chain(self) -> None:
        """Each layer takes what the one before gives (what loading a model file checks), so a
        model that could never be read back is refused here, not after it is saved. A network with
        a learner's own layer class is not checked."""
        if any(LAYER_TYPES.get(type(layer).__name__) is not type(layer) or not type(layer).__module__.startswith(
                "scratchnn.") for layer in self.layers):
            return  # the fast path's own layers, or a learner's, which may change the shape undeclared
        shape = self.input_shape
        try:
            for i, entry in enumerate(self.config()["layers"]):
                kind, args = checked_layer(entry, i)
                shape, _ = LAYER_TYPES[kind].config_shapes(args, shape, f"layer {i} ({kind})")
        except ModelFileError as error:
            said = str(error).replace("architecture layer", "layer")
            fix = (channels_last(self.input_shape, self.layers[0])
                   or "give input_shape what the data is, and the first layer the same"
                   if "the input gives" in said
                   else "use smaller windows, a larger stride or less padding" if "work matrix" in said
                   else "make each layer take what the one before gives")
            raise ShapeError(f"{said}; {fix}") from None

    # --- the two passes -------------------------------------------------------------------
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Logits (N, C) for a batch x (N, *input_shape): each layer's output is the next one's input.

        NOTE: one pass at a time per model (the layers keep what backward needs, and work arrays);
        from several threads predict with ``predict_proba``, whose calls take turns. Training is
        not thread-safe either."""
        for _, _, x in self.forward_steps(x, training):
            pass
        return x

    def forward_steps(self, x: np.ndarray, training: bool = False):
        """The forward pass one layer at a time: yields (index, layer, its output) in order.

        ``forward`` is this run to the end; ``explain`` and the web page read every step.
        """
        if not isinstance(x, np.ndarray):  # a list, a torch tensor from a DataLoader (predict and fit take them)
            x = as_array(x)
        if x.dtype.kind in "uib":  # uint8 pixels: logits in the hundreds; predict and fit refuse them too
            refuse_raw_pixels(x, "the input")
            x = x.astype(self.dtype)
        if x.shape[1:] != self.input_shape:
            raise ShapeError(f"model expects input of shape (N, {', '.join(map(str, self.input_shape))}),"
                             f" got {x.shape}" + self.reshape_hint(x.shape))
        self._trained_forward = training
        for i, layer in enumerate(self.layers):
            x = layer.forward(x, training=training)
            yield i, layer, x

    def backward(self, dlogits: np.ndarray, need_dx: bool = False) -> np.ndarray | None:
        """Backpropagate ∂L/∂logits through every layer, filling each layer's grads.

        Layers in front of the first one with parameters have nothing to learn, so unless
        ``need_dx`` asks for ∂L/∂x the pass stops there and skips the input gradient
        (for the seed network that is the (N, 784) product, most of the backward work).
        """
        if not getattr(self, "_trained_forward", True):
            differ = sorted({type(layer).__name__ for layer in self.layers if layer.trains_differently})
            if differ:
                warnings.warn(InferenceBackward(
                    f"backward after forward(x) in inference mode: {' and '.join(differ)} ran as at test time "
                    "(no dropout masks; batch norm's running statistics used and not updated); "
                    "to train, call model.forward(x, training=True)"), stacklevel=2)
        dx = None
        for _, _, _, dx in self.backward_steps(dlogits, need_dx):
            pass
        return dx if need_dx else None

    def backward_steps(self, dlogits: np.ndarray, need_dx: bool = False):
        """The backward pass one layer at a time, last layer first: yields (index, layer,
        ∂L/∂(its output), ∂L/∂(its input)) once the layer has filled its grads.

        ``backward`` is this run to the end; ``explain`` records every step.
        """
        layers = self.layers
        stop = 0 if need_dx else next((k for k, layer in enumerate(layers) if layer.params), 0)
        dy = dlogits
        for k in range(len(layers) - 1, stop - 1, -1):
            dx = layers[k].backward(dy, need_dx=need_dx or k > stop)
            yield k, layers[k], dy, dx
            dy = dx

    @property
    def layers_owner(self) -> Sequential:
        """The model whose layers (and so whose work arrays) these are: itself; a fast net of a
        model shares that model's (fast.inference_net)."""
        return self

    def release_caches(self) -> None:
        """Drop what every layer's forward kept for a backward pass (``Layer.release_cache``)."""
        for layer in self.layers:
            layer.release_cache()

    # --- inference --------------------------------------------------------------------------
    def predict_proba(self, x: np.ndarray, batch_size: int | None = None, *, tta: int = 1,
                      image_shape: tuple[int, int] | None = None, views: str = "digits") -> np.ndarray:
        """Class probabilities (N, C) for x (N, *input_shape), computed in batches
        (by default of ``inference_batch_size()`` rows).

        ``tta=N`` averages the softmax over the original and N − 1 fixed small moves of each
        image (test-time augmentation, ``scratchnn.data.tta``): shifts and rotations for
        ``views="digits"``, mirrors and shifts for ``"clothes"``; pixels must be in [0, 1]. An
        MLP's rows are seen as ``image_shape`` (H, W) images, square by default. With TTA a
        batch holds ``batch_size // tta`` images (at least one) and all their views. Safe to
        call from several threads: calls on one model take turns (``prediction_lock``).
        """
        return mean_of_views(self.view_probas(x, batch_size, tta=tta, image_shape=image_shape, views=views))

    def view_probas(self, x: np.ndarray, batch_size: int | None = None, *, tta: int = 1,
                    image_shape: tuple[int, int] | None = None, views: str = "digits") -> np.ndarray:
        """The class probabilities of each TTA view apart: (tta, N, C), row 0 for the images as
        they are; ``predict_proba`` is their mean. Arguments as in ``predict_proba``."""
        x = self._checked_input(x)
        if batch_size is not None and not (isinstance(batch_size, (int, np.integer)) and batch_size > 0):
            raise ShapeError(f"batch_size must be a whole number above 0 (rows per batch), got {batch_size!r}")
        batch_size = batch_size or self.inference_batch_size()
        shape = image_shape_for(self.input_shape, image_shape) if check_tta(tta) > 1 else None
        check_views(views)

        def proba(batch):
            return softmax(self.forward(batch))

        rows = max(1, batch_size // tta)  # each row's views go through in the same batch
        with prediction_lock(self.layers_owner):  # safe from several threads: one call at a time
            parts = [view_probas(proba, x[i:i + rows], tta, shape, views) for i in range(0, len(x), rows)]
            self.release_caches()  # no backward follows a prediction
        probas = np.concatenate(parts, axis=1) if parts else np.zeros((tta, 0, self.num_classes), x.dtype)
        if not math.isfinite(probas.sum()):  # argmax of a NaN row is 0: every image 'a 0', without a word
            raise ShapeError(self._why_not_finite(np.count_nonzero(~np.isfinite(probas).all(axis=(0, 2))),
                                                  probas.shape[1]))
        return probas

    def _why_not_finite(self, rows: int, total: int) -> str:
        """Why ``rows`` of ``total`` answers are NaN or infinite: the parameters or batch-norm
        statistics that are, or a running variance below 0 (whose square root is NaN), if any."""
        bad = [name for name, value in self._live_state().items() if not np.isfinite(value).all()]
        negative = negative_variances(self.named_buffers())
        why = (f"its parameters {', '.join(bad[:3])}{'...' * (len(bad) > 3)} hold NaN or infinite values (a training "
               "that diverged, or weights loaded so); train it again" if bad else
               f"its batch norm's running variance {negative[0]} holds values below 0; train it again or load "
               "its saved state" if negative else "its layers overflow on them")
        return f"the model's outputs are NaN or infinite for {rows:,} of {total:,} images: {why}"

    def predict(self, x: np.ndarray, batch_size: int | None = None, *, tta: int = 1,
                image_shape: tuple[int, int] | None = None, views: str = "digits") -> np.ndarray:
        """Predicted class index (N,) for x (N, *input_shape); ``tta``, ``views`` as in ``predict_proba``."""
        return self.predict_proba(x, batch_size, tta=tta, image_shape=image_shape, views=views).argmax(axis=1)

    def inference_batch_size(self, memory: int | None = None, largest: int = 4096) -> int:
        """Rows per inference batch (1..largest) whose forward pass fits in ``memory`` bytes
        (default ``inference_memory()``).

        Per sample a forward pass holds every layer's output and its work arrays
        (``Layer.work_floats``: a convolution's or pool's im2col matrix). The benchmark CNN needs ~400 kB
        a digit, so 4,096 digits at once would take 1.6 GB; the MLPs need ~10 kB.
        """
        memory = inference_memory() if memory is None else memory
        return rows_that_fit(self.layers, self.input_shape, self.dtype, memory, largest)

    def _checked_input(self, x) -> np.ndarray:
        x = np.asarray(x)
        refuse_non_real(x)
        refuse_raw_pixels(x, whole_floats=True)
        given = x.shape
        if x.ndim == len(self.input_shape):  # one sample: make it a batch of one
            x = x[None]
        if x.shape[1:] != self.input_shape:
            raise ShapeError(f"model expects samples of shape {self.input_shape}, got an array of shape {given}"
                             + self.reshape_hint(x.shape, single=x.shape != given))
        refuse_non_finite(x, self.dtype, "input")
        return x.astype(self.dtype, copy=False)

    def reshape_hint(self, shape: tuple[int, ...], single: bool = False) -> str:
        """How to reshape images the model does take in another layout ('' when there is none);
        ``single``: one image, given without its batch axis (nn.habits.reshape_hint)."""
        return reshape_hint(self.input_shape, tuple(shape), single)

    # --- parameters ---------------------------------------------------------------------------
    def named_parameters(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """(name, param, grad) triples; names are "<layer index>.<param>", e.g. "0.W"."""
        return [(f"{i}.{key}", layer.params[key], layer.grads[key])
                for i, layer in enumerate(self.layers) for key in layer.params]

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every parameter and buffer by name ("0.W", "3.running_mean"): what a model file holds.

        Copies, taken now: ``best = model.state_dict()`` stays what it was while training goes on,
        and ``model.load_state_dict(best)`` brings it back."""
        return {name: array.copy() for name, array in self._live_state().items()}

    def _live_state(self) -> dict[str, np.ndarray]:
        """state_dict's arrays themselves (what training writes into)."""
        return {**{name: param for name, param, _ in self.named_parameters()}, **dict(self.named_buffers())}

    def named_buffers(self) -> list[tuple[str, np.ndarray]]:
        """(name, array) of every buffer ("3.running_var"): state the layers keep that no gradient
        trains (batch norm's running statistics); the arrays themselves, not copies."""
        return [(f"{i}.{key}", buffer) for i, layer in enumerate(self.layers) for key, buffer in layer.buffers.items()]

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy arrays into parameters and buffers; strict: every key present, every shape equal."""
        own = self._live_state()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing or unexpected:
            raise ShapeError(f"state does not fit the model: missing {missing}, unexpected {unexpected}")
        for name, param in own.items():
            value = np.asarray(state[name])
            if value.shape != param.shape:
                raise ShapeError(f"parameter {name!r} has shape {value.shape}, model expects {param.shape}")
            if value.dtype.kind in "fc" and not np.isfinite(value).all():  # io.load refuses them too
                raise ShapeError(f"parameter {name!r} holds {np.count_nonzero(~np.isfinite(value)):,} NaN or "
                                 "infinite value(s): weights of a training that diverged? Load finite ones")
        for name, param in own.items():  # all checked first: a refused state changes nothing
            param[...] = np.asarray(state[name])

    @property
    def num_parameters(self) -> int:
        return sum(p.size for _, p, _ in self.named_parameters())

    @property
    def num_classes(self) -> int:
        return self.output_shapes()[-1][-1]

    @property
    def dtype(self) -> np.dtype:
        params = self.named_parameters()
        return params[0][1].dtype if params else np.dtype(np.float32)

    def astype(self, dtype) -> Sequential:
        """Cast every parameter (float64 for gradient checks); returns self."""
        for layer in self.layers:
            layer.astype(dtype)
        return self

    # --- description --------------------------------------------------------------------------
    def output_shapes(self) -> list[tuple[int, ...]]:
        shapes, shape = [], self.input_shape
        for layer in self.layers:
            shape = layer.output_shape(shape)
            shapes.append(shape)
        return shapes

    def widths(self) -> str:
        """The layer widths in one line, e.g. "784 -> 10 -> 10": the input, then the output of
        every layer with weights and of every layer that changes the shape (pooling, Flatten)."""
        shapes, before = [self.input_shape], self.input_shape
        for layer, shape in zip(self.layers, self.output_shapes()):
            if "W" in layer.params or shape != before:
                shapes.append(shape)
            before = shape
        return " -> ".join("x".join(map(str, shape)) for shape in shapes)

    trainable = always_trainable  # Keras's model.trainable = False: refused (nn.habits)
    __call__ = not_called  # model(x): which method gives what (nn.habits)

    def __getattr__(self, name: str):
        """Keras's and PyTorch's names (model.fit, model.parameters...) point to scratchnn's way."""
        if name in OTHER_LIBRARIES:
            raise AttributeError(f"Sequential has no {name}() (Keras's or PyTorch's): {OTHER_LIBRARIES[name]}")
        if isinstance(getattr(type(self), name, None), property):  # it failed inside: its own error, not ours
            return object.__getattribute__(self, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def summary(self) -> str:
        """A table of layers, output shapes and parameter counts (like Keras' ``summary``);
        ``print(model)`` prints it, and a notebook shows it as an HTML table."""
        return text_table(*self._summary_table(), numeric=(0, 3)) + "\n" + self._summary_footer()

    def _repr_html_(self) -> str:
        """The summary as an HTML table: what Jupyter shows for ``model`` in a cell."""
        return html_table(*self._summary_table(), caption=f"Sequential {self.widths()}",
                          footer=self._summary_footer(), numeric=(0, 3))

    def _summary_table(self) -> tuple[list[str], list[list[str]]]:
        rows = [[str(i), repr(layer), "(N, " + ", ".join(map(str, shape)) + ")",
                 f"{sum(p.size for p in layer.params.values()):,}"]
                for i, (layer, shape) in enumerate(zip(self.layers, self.output_shapes()))]
        return ["#", "Layer", "Output shape", "Params"], rows

    def _summary_footer(self) -> str:
        return f"Input (N, {', '.join(map(str, self.input_shape))}); total parameters: {self.num_parameters:,}"

    def __str__(self) -> str:
        return self.summary()

    def config(self) -> dict:
        """The architecture as JSON-ready data; ``Sequential.from_config`` rebuilds it."""
        return {"input_shape": list(self.input_shape), "layers": [layer_to_config(l) for l in self.layers]}

    @classmethod
    def from_config(cls, config: dict) -> Sequential:
        return cls([layer_from_config(entry) for entry in config["layers"]], config.get("input_shape"))

    def __repr__(self) -> str:
        inner = ",\n".join(f"  {layer!r}" for layer in self.layers)
        return f"Sequential([\n{inner}\n])"


def negative_variances(named) -> list[str]:
    """The names of ``named``'s (name, array) pairs that are a batch norm's running variance holding
    a value below 0, which no variance can (its square root is NaN, and so every prediction)."""
    return [name for name, array in named if name.endswith(".running_var") and np.any(np.asarray(array) < 0)]


def rows_that_fit(layers, input_shape: tuple[int, ...], dtype, memory: int, largest: int) -> int:
    """Rows (1..largest) whose pass through ``layers`` holds at most ``memory`` bytes: per sample
    every layer's output and work arrays (``Layer.work_floats``), in numbers of ``dtype``."""
    floats, shape = 0, tuple(input_shape)
    for layer in layers:
        floats += layer.work_floats(shape)
        shape = layer.output_shape(shape)
        floats += int(np.prod(shape))
    return int(np.clip(memory // (floats * np.dtype(dtype).itemsize), 1, largest))
