"""What a model file's metadata may say, checked before anything is built or allocated.

A model file is hostile until proven otherwise: its JSON metadata could name a layer of 10⁹
units, a kernel of -5, a width of ``"lots"`` or ``512.7``. ``state_shapes`` checks an
architecture against what each layer class declares in its own file (``required_keywords`` and
``optional_keywords``, with the checkers of ``nn/schema.py``) and works out, by arithmetic alone
(each class's ``config_shapes``), the shape of every parameter and buffer the model would have:
the loader compares those with the shapes in the safetensors header before it reads a tensor
or builds a layer. The layer shapes must chain (a Dense layer takes exactly what the layer
before gives), as forward would require, so a model that loads also runs.

Bounds (far above any MNIST-sized network, far below what would exhaust a machine):
    MAX_UNITS       units, features or channels of one layer, and one side of an input (nn/schema.py)
    MAX_PARAMETERS  numbers in all parameters and buffers together (512 MiB of float32)
    MAX_SAMPLE      numbers in one sample at any layer (input, output, a convolution's or pool's work matrix)

Every check raises ``ModelFileError`` with a message that names the offending entry; the
loader puts the file's path in front.
"""
from __future__ import annotations

import math

from .errors import ModelFileError
from .nn.base import LAYER_TYPES
from .nn.schema import MAX_SAMPLE, MAX_UNITS, check_int, is_number, show

MAX_LAYERS = 1024
MAX_PARAMETERS = 2**27  # 134,217,728
MAX_TEXT = 1000  # characters of a class name or a short string


def check_type(value, kind: type, where: str, name: str):
    if type(value) is not kind:
        raise ModelFileError(f"{where} must be {name}, got {type(value).__name__} {show(value)}")
    return value


def checked_layer(entry, index: int) -> tuple[str, dict]:
    """The checked (type, keyword arguments) of layer ``index``."""
    where = f"architecture layer {index}"
    check_type(entry, dict, where, "an object {\"type\": ..., \"config\": {...}}")
    kind = entry.get("type")
    if type(kind) is not str or kind not in LAYER_TYPES:
        raise ModelFileError(f"{where}: unknown layer type {show(kind)}; known types: {', '.join(sorted(LAYER_TYPES))}")
    if set(entry) - {"type", "config"}:
        raise ModelFileError(f"{where} ({kind}): unexpected entries {sorted(set(entry) - {'type', 'config'})}")
    config = check_type(entry.get("config", {}), dict, f"{where} ({kind}) config", "an object")
    required, optional = LAYER_TYPES[kind].required_keywords, LAYER_TYPES[kind].optional_keywords
    unknown = sorted(set(config) - set(required) - set(optional))
    missing = sorted(set(required) - set(config))
    if unknown or missing:
        raise ModelFileError(f"{where} ({kind}): " + "; ".join(
            part for part in (unknown and f"unknown keywords {unknown}", missing and f"missing keywords {missing}")
            if part) + f"; {kind} takes {', '.join([*required, *optional])}")
    args = {key: {**required, **optional}[key](value, f"{where} ({kind}) {key}") for key, value in config.items()}
    return kind, args


def state_shapes(architecture) -> dict[str, tuple[int, ...]]:
    """The shape of every parameter and buffer ("0.W", "3.running_mean") the architecture needs.

    Checks the whole architecture first: ``{"input_shape": [...], "layers": [{"type": ...,
    "config": {...}}, ...]}`` as ``Sequential.config()`` writes it, every layer known, every
    keyword known and in range, every layer taking what the one before gives, and the totals
    bounded. Nothing is allocated.
    """
    return checked_shapes(architecture)[0]


def checked_shapes(architecture) -> tuple[dict[str, tuple[int, ...]], list[tuple[int, ...]]]:
    """(``state_shapes``, the shape of one sample after each layer): the same checks. A training
    config uses it to size the first Dense layer after its convolutions, to refuse a network it
    could never save before anything is built, and to work out a training step's memory."""
    if architecture is None or type(architecture) is not dict:
        raise ModelFileError("the architecture must be an object with 'input_shape' and 'layers', "
                             f"got {type(architecture).__name__} {show(architecture)}")
    unknown = sorted(set(architecture) - {"input_shape", "layers"})
    if unknown:
        raise ModelFileError(f"the architecture has unknown entries {unknown}")
    layers = check_type(architecture.get("layers"), list, "architecture layers", "a list of layers")
    if not 1 <= len(layers) <= MAX_LAYERS:
        raise ModelFileError(f"architecture layers must hold 1 to {MAX_LAYERS:,} layers, got {len(layers):,}")
    checked = [checked_layer(entry, i) for i, entry in enumerate(layers)]
    shape = architecture.get("input_shape")
    if shape is None:
        if checked[0][0] != "Dense":
            raise ModelFileError("the architecture has no input_shape and its first layer is not Dense")
        shape = [checked[0][1]["in_features"]]
    check_type(shape, list, "architecture input_shape", "a list of 1 to 3 sizes")
    if not 1 <= len(shape) <= 3:
        raise ModelFileError(f"architecture input_shape must hold 1 to 3 sizes, got {show(shape)}")
    shape = tuple(check_int(s, "architecture input_shape entry", 1, MAX_UNITS) for s in shape)
    shapes: dict[str, tuple[int, ...]] = {}
    outputs: list[tuple[int, ...]] = []
    for i, (kind, args) in enumerate(checked):
        if math.prod(shape) > MAX_SAMPLE:
            raise ModelFileError(f"architecture layer {i} ({kind}) gets samples of {math.prod(shape):,} "
                                 f"numbers (at most {MAX_SAMPLE:,})")
        shape, own = LAYER_TYPES[kind].config_shapes(args, shape, f"architecture layer {i} ({kind})")
        shapes.update((f"{i}.{name}", s) for name, s in own.items())
        outputs.append(shape)
    if math.prod(shape) > MAX_SAMPLE:
        raise ModelFileError(f"the architecture's output has {math.prod(shape):,} numbers a sample")
    total = sum(math.prod(s) for s in shapes.values())
    if total > MAX_PARAMETERS:
        raise ModelFileError(f"the architecture has {total:,} parameters and buffers (at most {MAX_PARAMETERS:,})")
    if len(shape) != 1:
        raise ModelFileError(f"the architecture must end in class scores (N, C), it ends in {shape}")
    return shapes, outputs


# --- the other entries a model file's metadata may hold (unknown ones are kept, unread)

def _strings(value, where):
    check_type(value, list, where, "a list of strings")
    if len(value) > MAX_UNITS or not all(type(v) is str and len(v) <= MAX_TEXT for v in value):
        raise ModelFileError(f"{where} must be a list of strings (each at most {MAX_TEXT} characters)")


def _image_shape(value, where):
    if type(value) is not list or len(value) != 2:
        raise ModelFileError(f"{where} must be [height, width], got {show(value)}")
    for side in value:
        check_int(side, f"{where} entry", 1, MAX_UNITS)


def _numbers(value, where):
    check_type(value, dict, where, "an object of numbers")
    for key, number in value.items():
        if number is not None and not is_number(number):
            raise ModelFileError(f"{where} {show(key)} must be a number, got {show(number)}")


def _optional_numbers(value, where):
    if value is not None:
        _numbers(value, where)


def _optional_object(value, where):
    if value is not None:
        check_type(value, dict, where, "an object")


def _text(value, where):
    if type(value) is not str or len(value) > MAX_TEXT:
        raise ModelFileError(f"{where} must be a string of at most {MAX_TEXT} characters, got {show(value)}")


METADATA_SCHEMA = {"config": _optional_object, "classes": _strings, "image_shape": _image_shape,
                   "metrics": _numbers, "created": _text, "scratchnn_version": _text, "kind": _text,
                   "augmentation": _optional_numbers}


def check_metadata(metadata: dict) -> dict[str, tuple[int, ...]] | None:
    """Check every known entry; the architecture's ``state_shapes``, or None if it has none."""
    for key, check in METADATA_SCHEMA.items():
        if key in metadata:
            check(metadata[key], f"metadata {key!r}")
    if "architecture" not in metadata:
        return None
    state, outputs = checked_shapes(metadata["architecture"])
    _fits_architecture(metadata, _input_shape(metadata["architecture"]), outputs[-1][0])
    return state


def _input_shape(architecture: dict) -> tuple[int, ...]:
    """A checked architecture's input_shape (its first Dense layer's in_features when it gives none)."""
    shape = architecture.get("input_shape")
    return tuple(shape) if shape is not None else (architecture["layers"][0]["config"]["in_features"],)


def _fits_architecture(metadata: dict, input_shape: tuple[int, ...], num_classes: int) -> None:
    """Refuse an ``image_shape`` other than the model's input (H, W of a CNN's (C, H, W), H·W
    inputs of an MLP) and ``classes`` that do not name the model's outputs one by one."""
    if "image_shape" in metadata:
        height, width = metadata["image_shape"]
        fits = (height, width) == input_shape[1:] if len(input_shape) == 3 else height * width == math.prod(input_shape)
        if not fits:
            raise ModelFileError(f"metadata 'image_shape' says {height}x{width} images, the architecture's input_shape "
                                 f"is {input_shape}")
    if "classes" in metadata and len(metadata["classes"]) != num_classes:
        raise ModelFileError(f"metadata 'classes' names {len(metadata['classes']):,} classes, the architecture has "
                             f"{num_classes:,} outputs")


def buffer_names() -> set[str]:
    """Names of the state saved with the parameters but never trained (BatchNorm's running
    statistics), as every registered layer type declares them."""
    return {name for cls in LAYER_TYPES.values() for name in cls.buffer_names}
