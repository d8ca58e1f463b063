"""The layer contract every layer follows.

    layer.params   dict[str, ndarray]   e.g. {"W": (D, M), "b": (M,)}; empty for activations
    layer.grads    dict[str, ndarray]   same keys and shapes, overwritten by each backward
    layer.buffers  dict[str, ndarray]   state that is saved but not trained (BatchNorm's running
                                        statistics); empty for most layers
    y  = layer.forward(x, training=False)   caches what backward needs
    dx = layer.backward(dy)                 dL/dx; fills grads; error if no forward came first

Each layer class also says, in its own file, how it is checked and what a model file may say
about it (nothing else has to learn about a new layer; exporting it from ``nn/__init__.py``
registers it):

    gradcheck_cases(rng)          small (layer, x) pairs for the finite-difference check
    required_keywords             {keyword: checker} a model file must give (see ``nn/schema.py``)
    optional_keywords             {keyword: checker} it may give
    config_shapes(args, shape, where)   (output shape, {param or buffer: shape}) for one input
                                  sample of ``shape``, by arithmetic alone

Gradients are overwritten, not accumulated: a sequential stack has no fan-out, so there is no
``zero_grad`` to forget. Layers follow the dtype of their parameters and input, so a model cast
to float64 (``astype``) can be checked against finite differences.
"""
from __future__ import annotations

import warnings

import numpy as np

from ..errors import ConfigError, OtherConvention, ShapeError
from .habits import always_trainable, not_called
from .schema import MAX_UNITS, show

LAYER_TYPES: dict[str, type[Layer]] = {}


class Layer:
    """Base class: subclasses implement ``forward`` and ``backward`` side by side.

    A layer that draws random numbers (dropout) sets ``uses_rng = True`` and reads ``self.rng``;
    the Sequential model that holds it hands it the model's generator, so one seed drives all.
    """

    uses_rng = False
    trains_differently = False  # True: forward(training=True) is another function (dropout, batch norm)
    buffer_names: tuple[str, ...] = ()  # the keys of self.buffers: saved, never trained
    required_keywords: dict = {}  # keyword -> checker(value, where), as in nn/schema.py
    optional_keywords: dict = {}

    def __init_subclass__(cls, register: bool = True, **kwargs):
        super().__init_subclass__(**kwargs)
        known = LAYER_TYPES.get(cls.__name__)
        ours = known is not None and known.__module__.startswith("scratchnn.")
        # so a saved architecture can name its layers; a learner's own class named like one of
        # ours (a Dense with a bug on purpose) must not change what every later load builds
        if register and not (ours and not cls.__module__.startswith("scratchnn.")):
            LAYER_TYPES[cls.__name__] = cls

    trainable = always_trainable  # Keras's layer.trainable = False: refused (nn.habits)
    __call__ = not_called  # layer(x): forward (nn.habits)

    def __init__(self):
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self._cache = None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        """Return dL/dx for upstream gradient ``dy``; ``need_dx=False`` lets the first layer
        of a model skip the (often largest) product it would throw away."""
        raise NotImplementedError

    def config(self) -> dict:
        """Constructor arguments that rebuild this layer (saved as JSON in model files)."""
        return {}

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of one output sample for one input sample of ``input_shape``."""
        return input_shape

    def work_floats(self, input_shape: tuple[int, ...]) -> int:
        """Numbers a forward pass holds per sample besides its output (a work matrix); usually 0."""
        return 0

    @classmethod
    def gradcheck_cases(cls, rng: np.random.Generator) -> list[tuple[Layer, np.ndarray]]:
        """Small (layer, x) pairs whose backward ``scratchnn gradcheck`` compares with finite
        differences; inputs keep clear of kinks (ReLU at 0, max-pool ties)."""
        raise NotImplementedError(f"{cls.__name__} declares no gradient-check case: give it a "
                                  "gradcheck_cases(rng) classmethod beside its backward")

    @classmethod
    def config_shapes(cls, args: dict, shape: tuple[int, ...], where: str):
        """(output shape, {param or buffer name: shape}) for one input sample of ``shape``, from
        keywords already checked against the class's keyword checkers (defaults left out).
        Arithmetic only, nothing allocated; raises ModelFileError naming ``where`` when the layer
        cannot take ``shape``. This default keeps the shape and holds nothing (activations)."""
        return shape, {}

    def astype(self, dtype) -> Layer:
        """Cast parameters, gradients and buffers in place of the old arrays; returns self."""
        for name in self.params:
            self.params[name] = self.params[name].astype(dtype)
            self.grads[name] = np.zeros_like(self.params[name])
        for name in self.buffers:
            self.buffers[name] = self.buffers[name].astype(dtype)
        return self

    def release_cache(self) -> None:
        """Forget what forward stored for backward (and so do the layers this one wraps): after
        an inference pass nothing will go backward, and a big batch's cache is many megabytes."""
        self._cache = None
        for value in vars(self).values():
            if isinstance(value, Layer):
                value.release_cache()

    def __getstate__(self) -> dict:
        """What a copy keeps (``copy.deepcopy``, or Python's serialisation of objects): everything
        but the cache forward left for backward. A copy is a layer that has not run yet, and it can be taken while another thread
        predicts on this one (which rewrites the cache meanwhile)."""
        return {**vars(self), "_cache": None}

    def _take_cache(self):
        """What forward stored for backward; a clear error if forward has not run."""
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return self._cache

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


def layer_from_config(entry: dict) -> Layer:
    """Build a layer from ``{"type": "Dense", "config": {...}}`` as written by ``layer_to_config``."""
    kind = entry.get("type")
    if kind not in LAYER_TYPES:
        known = ", ".join(sorted(LAYER_TYPES))
        raise ConfigError(f"unknown layer type {kind!r}; known types: {known}")
    try:
        with warnings.catch_warnings():  # a saved model is what it is: said when it was built
            warnings.simplefilter("ignore", OtherConvention)
            return LAYER_TYPES[kind](**entry.get("config", {}))
    except TypeError as error:
        raise ConfigError(f"layer {kind}: bad arguments {entry.get('config')!r} ({error})") from None


def layer_to_config(layer: Layer) -> dict:
    return {"type": type(layer).__name__, "config": layer.config()}


def whole_units(value, name: str) -> int:
    """``value`` as a count of units, features or channels: a whole number from 1 to MAX_UNITS, or a
    ConfigError (Dense(784, 2.5) made 2 units, Dense(784, 10**12) a MemoryError of 2.8 PiB)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= MAX_UNITS:
        raise ConfigError(f"{name} must be a whole number from 1 to {MAX_UNITS:,}, got {show(value)}")
    return int(value)


def generator(rng, name: str = "rng") -> np.random.Generator:
    """``np.random.default_rng(rng)``: a Generator is used as it is, a seed (a whole number >= 0, or
    a list of them) or None makes one; anything else is a ConfigError naming ``name`` (rng='x' was
    NumPy's TypeError about SeedSequence entropy)."""
    try:
        return np.random.default_rng(rng)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{name} must be a seed (a whole number >= 0), a numpy Generator or None, got "
                          f"{show(rng)} ({error})") from None


def check_features(layer: Layer, x: np.ndarray, expected: int) -> None:
    """Raise ShapeError unless x is (N, expected)."""
    if x.ndim != 2 or x.shape[1] != expected:
        raise ShapeError(f"{layer!r} expects input of shape (N, {expected}), got {x.shape}")
