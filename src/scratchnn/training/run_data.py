"""Where a run's data is, and whether it is still the data the run was trained on.

``train`` records each data file as an absolute path with its SHA-256 (``record_data``), so a run
folder works from any directory and a moved or edited file is named as such
(``check_data_files``). Configs from before that hold paths relative to the folder ``train`` ran
in; ``locate_data`` looks for them from the current directory, then the run folder, then the
folder holding ``runs/``. ``model_image_shape`` is the (H, W) a model reads, so images of
another size are refused (``check_image_shape``) instead of being reshaped to fit.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import os
from pathlib import Path

from ..errors import DataError
from .config import TrainConfig

FILES = ("csv", "images", "labels")  # the source fields that name a file (and have a digest)
MNIST_SIDE = 28


def file_sha256(path) -> str:
    """Hex SHA-256 of a file, read in chunks (memory stays flat however large it is)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def absolute_data_paths(config: TrainConfig) -> TrainConfig:
    """A copy whose file and folder fields are absolute (from the current directory)."""
    return dataclasses.replace(config, **{name: os.path.abspath(os.path.expanduser(getattr(config, name)))
                                          for name in (*FILES, "data_dir") if getattr(config, name)})


def record_data(config: TrainConfig) -> TrainConfig:
    """A copy with absolute paths and the SHA-256 of every data file it names (files must exist)."""
    config = absolute_data_paths(config)
    return dataclasses.replace(config, **{f"{name}_sha256": file_sha256(getattr(config, name))
                                          for name in FILES if getattr(config, name)})


def locate_data(config: TrainConfig, run_dir) -> TrainConfig:
    """A copy whose relative data paths (older configs) are made absolute where they exist.

    Tried in order: the current directory, ``run_dir``, and the folder that holds ``runs/`` when
    ``run_dir`` is ``runs/<name>`` (the folder ``train`` ran in by default). A path found nowhere
    is taken from the current directory, so the error that follows names it.
    """
    run_dir = Path(run_dir).absolute()
    bases = [Path.cwd(), run_dir] + ([run_dir.parent.parent] if run_dir.parent.name == "runs" else [])
    found = {}
    for name in (*FILES, "data_dir"):
        value = getattr(config, name)
        if not value or Path(value).is_absolute():
            continue
        candidates = [base / value for base in bases]
        found[name] = os.path.abspath(next((c for c in candidates if c.exists()), candidates[0]))
    return dataclasses.replace(config, **found)


def check_data_files(config: TrainConfig) -> None:
    """A DataError if a data file the run recorded is missing or no longer has its SHA-256."""
    for name in FILES:
        path, digest = getattr(config, name), getattr(config, f"{name}_sha256")
        if not (path and digest):
            continue
        trained_on = f"the run was trained on {path} (sha256 {digest[:12]}...)"
        if not Path(path).is_file():
            raise DataError(f"{trained_on}; that file is missing: put it back, or give the data with --{name}")
        now = file_sha256(path)
        if now != digest:
            raise DataError(f"{trained_on}; that file has changed (sha256 now {now[:12]}...): restore it, "
                            f"or give the data explicitly with --{name}")


def model_image_shape(model, metadata: dict) -> tuple[int, int] | None:
    """The (H, W) of the images ``model`` reads: its metadata's ``image_shape``, else a CNN's input
    (1, H, W), else 28x28 for a 784-input MLP (older models); None when it cannot be known."""
    shape = metadata.get("image_shape")
    if (isinstance(shape, list) and len(shape) == 2
            and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)):
        return shape[0], shape[1]
    if len(model.input_shape) == 3:
        return tuple(model.input_shape[1:])
    if tuple(model.input_shape) == (MNIST_SIDE * MNIST_SIDE,):
        return MNIST_SIDE, MNIST_SIDE
    return None


def check_image_shape(images, name: str, model, metadata: dict) -> None:
    """A DataError naming ``name`` (the data file) when images (N, H, W) do not fit the model."""
    expected = model_image_shape(model, metadata)
    got = tuple(images.shape[1:])
    if expected is None:  # an old model of unusual input: at least the pixel count must match
        if math.prod(got) != math.prod(model.input_shape):
            raise DataError(f"{name}: images are {'x'.join(map(str, got))} ({math.prod(got)} pixels), the model "
                            f"takes {math.prod(model.input_shape)} pixels; give images of the size it was trained on")
        return
    if got != tuple(expected):
        raise DataError(f"{name}: images are {'x'.join(map(str, got))}, the model takes "
                        f"{'x'.join(map(str, expected))} images; give images of the size it was trained on")
