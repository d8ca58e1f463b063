"""Model files: tensors in safetensors, the architecture and training config as JSON in its metadata.

A file is written to a temporary name in the same folder and moved into place with
``os.replace``, so a crash never leaves a half-written model where a good one was. Reading is
strict: a truncated or corrupted file, a wrong architecture, a missing key or a wrong shape
each give one ``ModelFileError`` that names the file and the problem. Nothing is ever unpickled.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from .errors import ModelFileError, ScratchnnError
from .files import atomic_write_bytes
from .model import Sequential

MODEL_FILE = "model.safetensors"
FORMAT = "scratchnn"
FORMAT_VERSION = 1


def save(model: Sequential, path, *, metadata: dict | None = None) -> Path:
    """Write the model's parameters and architecture (plus JSON-ready ``metadata``) to ``path``."""
    return write_tensors(path, model.state_dict(), {"architecture": model.config(), **(metadata or {})})


def load(path) -> Sequential:
    """Rebuild a model saved by ``save``; ``path`` may be the file or a run folder holding it."""
    path = resolve_model_path(path)
    tensors, metadata = read_tensors(path)
    if "architecture" not in metadata:
        raise ModelFileError(f"{path}: no architecture in the metadata; is this a scratchnn model file?")
    try:
        model = Sequential.from_config(metadata["architecture"])
        model.load_state_dict(tensors)
    except (ScratchnnError, KeyError, TypeError) as error:
        raise ModelFileError(f"{path}: {error}") from None
    return model


def read_metadata(path) -> dict:
    """The JSON metadata of a model or checkpoint file (architecture, config, metrics, ...)."""
    return read_tensors(resolve_model_path(path))[1]


def class_names(model: Sequential, metadata: dict) -> list[str]:
    """The names of the model's classes saved with it ("0".."9", "T-shirt/top"...), else "0", "1"..."""
    classes = metadata.get("classes")
    if isinstance(classes, list) and len(classes) == model.num_classes:
        return [str(c) for c in classes]
    return [str(i) for i in range(model.num_classes)]


def resolve_model_path(path) -> Path:
    """Accept a model file or a run folder that contains ``model.safetensors``."""
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file; train one with 'scratchnn train' "
                             f"or pass a run folder that holds {MODEL_FILE}")
    return path


def write_tensors(path, tensors: dict[str, np.ndarray], metadata: dict) -> Path:
    """Atomically write float tensors plus JSON metadata (and a SHA-256 of the tensor bytes)."""
    from safetensors.numpy import save as to_safetensors_bytes

    tensors = {name: np.ascontiguousarray(t) for name, t in tensors.items()}
    header = {key: json.dumps(value) for key, value in metadata.items()}
    header.update(format=FORMAT, format_version=str(FORMAT_VERSION), sha256=_digest(tensors))
    path = Path(path)
    atomic_write_bytes(path, to_safetensors_bytes(tensors, metadata=header))
    return path


def read_tensors(path) -> tuple[dict[str, np.ndarray], dict]:
    """Read and verify a file written by ``write_tensors``: (tensors, decoded metadata)."""
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="np") as f:
            header = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such file") from None
    except Exception as error:  # safetensors raises its own SafetensorError (and OSError)
        raise ModelFileError(f"{path}: not a readable safetensors file ({error}); "
                             "it is truncated or corrupted: re-save it or train again") from None
    if header.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a scratchnn file (no '{FORMAT}' format tag in its metadata)")
    if int(header.get("format_version", 0)) > FORMAT_VERSION:
        raise ModelFileError(f"{path}: written by a newer scratchnn (format {header['format_version']}); "
                             "upgrade scratchnn to read it")
    if header.get("sha256") != _digest(tensors):
        raise ModelFileError(f"{path}: checksum mismatch, the tensor data is corrupted; "
                             "re-save it or train again")
    for name, tensor in tensors.items():
        if not np.isfinite(tensor).all():
            raise ModelFileError(f"{path}: tensor {name!r} contains NaN or infinite values")
    reserved = {"format", "format_version", "sha256"}
    try:
        metadata = {key: json.loads(value) for key, value in header.items() if key not in reserved}
    except json.JSONDecodeError as error:
        raise ModelFileError(f"{path}: metadata is not valid JSON ({error})") from None
    return tensors, metadata


def _digest(tensors: dict[str, np.ndarray]) -> str:
    sha = hashlib.sha256()
    for name in sorted(tensors):
        sha.update(name.encode())
        sha.update(str(tensors[name].dtype).encode() + str(tensors[name].shape).encode())
        sha.update(np.ascontiguousarray(tensors[name]).tobytes())
    return sha.hexdigest()
