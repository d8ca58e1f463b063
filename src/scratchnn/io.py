"""Model files: tensors in safetensors, the architecture and training config as JSON in its metadata.

A file is written to a temporary name in the same folder and moved into place with
``os.replace``, so a crash never leaves a half-written model where a good one was.

Reading treats the file as hostile and checks, in this order, before it builds anything:
the header's size; the format tag and version; the size and nesting depth of each metadata
entry before it is parsed; the whole metadata against ``model_schema`` (types, ranges, known
layers and keywords); every tensor's dtype (float32) and shape against the shapes the
architecture implies, from the header alone, without reading tensor data. Only then are the
tensors read, the SHA-256 verified and the values checked to be finite. Each problem is one
``ModelFileError`` that names the file. Nothing is ever unpickled.

The SHA-256 (format 2) covers the tensors and every metadata entry, so an edited architecture
or class list is caught. Files of format 1 (scratchnn before the digest covered metadata) are
still read: their tensors are verified, their metadata is fully checked against the schema,
but an edit to it that stays valid (other class names, say) cannot be detected.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .errors import ModelFileError, ScratchnnError, names_in_message, shell_word
from .files import atomic_write_bytes, why_unreadable
from .model import Sequential, negative_variances
from .model_schema import check_metadata, show

MODEL_FILE = "model.safetensors"
ENSEMBLE_FILE = "ensemble.toml"  # the seeds of `train --seeds`' folder (training/ensemble_run.py)
FORMAT = "scratchnn"
FORMAT_VERSION = 2  # 2: the digest covers the metadata too; 1: the tensors only
MAX_HEADER_BYTES = 8 * 2**20  # the safetensors JSON header: tensor table plus our metadata
MAX_DEPTH = 16  # nesting of one metadata entry (ours go 4 deep)
RESERVED = ("format", "format_version", "sha256")
DTYPE = "F32"  # the only tensor type scratchnn writes and reads (safetensors' name for float32)

Shapes = dict[str, tuple[int, ...]]
# check(metadata, architecture's state shapes or None, the file's tensor shapes): raise ModelFileError
LayoutCheck = Callable[[dict, "Shapes | None", Shapes], None]


OTHER_FORMATS = {".h5": "Keras", ".hdf5": "Keras", ".keras": "Keras", ".pt": "PyTorch", ".pth": "PyTorch",
                 ".pkl": "Python's object serialisation", ".onnx": "ONNX"}  # names promising another format


def save(model: Sequential, path, *, metadata: dict | None = None) -> Path:
    """Write the model's parameters and architecture (plus JSON-ready ``metadata``) to ``path``."""
    suffix = Path(path).suffix.lower()
    if suffix in OTHER_FORMATS:  # the habits audit: "m.h5" held a safetensors file no Keras could open
        raise ModelFileError(f"{path}: io.save writes a safetensors file, which {OTHER_FORMATS[suffix]} cannot read "
                             f"under that name; name it {Path(path).with_suffix('.safetensors').name}")
    taken = sorted(set(metadata or {}) & {"architecture", *RESERVED})
    if taken:
        raise ModelFileError(f"metadata key {taken[0]!r} is the file's own (the model's architecture, format and "
                             "checksum): name yours otherwise, e.g. 'notes'")
    bad = [name for name, value in model.state_dict().items() if not np.isfinite(value).all()]
    if bad:  # load refuses such a file: never write one (the API fuzz audit)
        raise ModelFileError(f"{path}: tensor {bad[0]!r} holds NaN or infinite values, so the file could not be "
                             "loaded; train it again (a lower learning rate), or save it before it diverges")
    negative = negative_variances(model.named_buffers())
    if negative:
        raise ModelFileError(f"{path}: tensor {negative[0]!r}, a batch norm's running variance, holds values below 0, "
                             "so the file could not be loaded; give the layer its own statistics back (train it)")
    metadata = {"architecture": model.config(), **(metadata or {})}
    try:  # what load would refuse (classes that are not the model's outputs, say) is refused here
        check_metadata(json.loads(json.dumps(metadata)))
    except ModelFileError as error:
        raise ModelFileError(f"{path}: {error}; fix the metadata, a file saying so could not be loaded") from None
    return write_tensors(path, model.state_dict(), metadata)


def load(path) -> Sequential:
    """Rebuild a model saved by ``save``; ``path`` may be the file or a run folder holding it."""
    path = resolve_model_path(path)
    tensors, metadata = read_tensors(path, check=model_layout)
    try:
        model = Sequential.from_config(metadata["architecture"])
        model.load_state_dict(tensors)
    except (ScratchnnError, KeyError, TypeError) as error:
        raise ModelFileError(f"{path}: {error}") from None
    return model


def read_metadata(path) -> dict:
    """The JSON metadata of a model file (architecture, config, metrics, ...), verified as ``load`` does."""
    return read_tensors(resolve_model_path(path), check=model_layout)[1]


def class_names(model: Sequential, metadata: dict) -> list[str]:
    """The names of the model's classes saved with it ("0".."9", "T-shirt/top"...), else "0", "1"..."""
    classes = metadata.get("classes")
    if isinstance(classes, list) and len(classes) == model.num_classes:
        return [str(c) for c in classes]
    return [str(i) for i in range(model.num_classes)]


def runs_inside(folder) -> list[str]:
    """The names of the folders in ``folder`` that hold a model file, sorted: the members of an
    ensemble that ``train --seeds`` trained (seed-0, seed-1, ...)."""
    try:
        return sorted(sub.name for sub in Path(folder).iterdir() if (sub / MODEL_FILE).is_file())
    except OSError:
        return []


def folder_to_resume(run_dir) -> Path:
    """The folder ``train --resume`` should be given to finish ``run_dir``: its ensemble's, for a
    member of one (it goes on from that member, then trains the rest; the member's own resume left
    them untrained), else ``run_dir`` itself."""
    run_dir = Path(run_dir)
    member_of = run_dir.resolve().parent
    if not (member_of / ENSEMBLE_FILE).is_file():
        return run_dir
    return run_dir.parent if run_dir.name not in ("", "..") else member_of


def resolve_model_path(path) -> Path:
    """Accept a model file or a run folder that contains ``model.safetensors``."""
    path = Path(path)
    if path.is_dir() and not (path / MODEL_FILE).exists() and (members := runs_inside(path)):
        raise ModelFileError(f"{path} holds the runs {names_in_message(members, most=4)} "
                             f"(train --seeds), not one model: give one of them ({path / members[0]}); evaluate, "
                             "predict and serve also take the folder, to use them together")
    if path.is_dir() and not (path / MODEL_FILE).exists() and (path / ENSEMBLE_FILE).is_file():
        raise ModelFileError(f"{path}: an ensemble (train --seeds) none of whose members has finished; complete it "
                             f"with 'scratchnn train --resume {shell_word(path)}'")  # it was "no such model file"
    if path.is_dir():
        path = path / MODEL_FILE
    elif path.is_file() and path.suffix != ".safetensors" and any(  # run/config.toml, an ensemble's ensemble.toml
            (path.parent / name).is_file() for name in (MODEL_FILE, ENSEMBLE_FILE)):
        raise ModelFileError(f"{path} is a file of the run folder {path.parent}, not a model file; give the folder, or "
                             f"a {MODEL_FILE}")  # the advice audit: its header "claimed 4.4e18 bytes"
    if path.exists() and not path.is_file():  # a device or a pipe: nothing a model file can be
        raise ModelFileError(f"{path}: not a regular file; give a model file ({MODEL_FILE}) or its run folder")
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file; train one with 'scratchnn train' "
                             f"or pass a run folder that holds {MODEL_FILE}")
    return path


def model_layout(metadata: dict, state: Shapes | None, tensors: Shapes) -> None:
    """A model file holds exactly the parameters and buffers of its architecture."""
    if state is None:
        raise ModelFileError("no architecture in the metadata; is this a scratchnn model file?")
    if metadata.get("kind") == "checkpoint":  # it read "tensor '1.W' is missing (14 of 14 are); re-save the model"
        raise ModelFileError(f"a training checkpoint, not a model file: give the run folder's {MODEL_FILE}, or "
                             "the run folder itself ('scratchnn train --resume FOLDER' finishes a run that has none)")
    check_shapes(tensors, state)


def check_shapes(tensors: Shapes, expected: Shapes, prefix: str = "") -> None:
    """Every expected tensor present with its shape, none extra; errors name the key."""
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing:
        raise ModelFileError(f"tensor {prefix + missing[0]!r} is missing ({len(missing)} of the "
                             f"architecture's {len(expected)} are); re-save the model")
    if extra:
        raise ModelFileError(f"tensor {prefix + extra[0]!r} does not belong to the architecture "
                             f"({len(extra)} such); re-save the model")
    for name, shape in expected.items():
        if tensors[name] != shape:
            raise ModelFileError(f"tensor {prefix + name!r} has shape {tensors[name]}, model expects {shape}")


def json_ready(value):
    """``value`` with NaN/inf floats as None and NumPy scalars as Python ones: valid JSON, which
    JavaScript's JSON.parse and other strict readers take (Python writes NaN, which they refuse)."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_tensors(path, tensors: dict[str, np.ndarray], metadata: dict) -> Path:
    """Atomically write float32 tensors plus JSON metadata, and a SHA-256 of both."""
    from safetensors.numpy import save as to_safetensors_bytes

    tensors = {name: np.ascontiguousarray(t) for name, t in tensors.items()}
    for name, tensor in tensors.items():
        if tensor.dtype != np.float32:
            raise ModelFileError(f"{path}: tensor {name!r} is {tensor.dtype}; scratchnn files hold float32, "
                                 "cast the model with .astype(np.float32) before saving")
    header = {key: json.dumps(value) for key, value in metadata.items()}
    for key, text in header.items():  # what read_tensors would refuse is refused before writing
        if nesting_depth(text) > MAX_DEPTH:
            raise ModelFileError(f"metadata {show(key)} nests {nesting_depth(text):,} levels deep; a model file "
                                 f"holds at most {MAX_DEPTH}, so it could not be read back")
    header.update(format=FORMAT, format_version=str(FORMAT_VERSION))
    header["sha256"] = _digest(tensors, header)
    path = Path(path)
    try:
        data = to_safetensors_bytes(tensors, metadata=header)
    except BaseException as error:
        # safetensors' Rust code panics where memory runs out (ulimit -v): a BaseException that escaped
        # every handler with a Rust backtrace (the resource audit); said for what it is
        if type(error).__name__ != "PanicException":
            raise
        raise MemoryError(f"safetensors could not build {path.name} ({' '.join(str(error).split())[:80]})") from None
    if int.from_bytes(data[:8], "little") > MAX_HEADER_BYTES:
        raise ModelFileError(f"the metadata takes {int.from_bytes(data[:8], 'little'):,} bytes; a model file's "
                             f"header holds at most {MAX_HEADER_BYTES:,}, so it could not be read back: keep "
                             "large data beside the model, not in it")
    atomic_write_bytes(path, data)
    return path


def read_tensors(path, check: LayoutCheck | None = None,
                 remedy: str = "re-save it or train again") -> tuple[dict[str, np.ndarray], dict]:
    """Read and verify a file written by ``write_tensors``: (tensors, decoded metadata).

    ``check`` sees the checked metadata, the architecture's parameter shapes and the file's
    tensor shapes before any tensor is read, and raises ModelFileError if they do not fit.
    ``remedy``: what an error of a damaged file tells the user to do.
    """
    path = Path(path)
    _check_header_size(path)

    def read(f):  # one open file for the header and the tensors: a file replaced meanwhile cannot mix
        header = f.metadata() or {}
        layout = {key: (f.get_slice(key).get_dtype(), tuple(f.get_slice(key).get_shape())) for key in f.keys()}
        try:
            version = _format_version(header)
            metadata = _decode(header)
            state = check_metadata(metadata)
            for name, (dtype, _) in layout.items():
                if dtype != DTYPE:
                    raise ModelFileError(f"tensor {name!r} is {dtype}, not float32 ({DTYPE}); "
                                         "re-save it with scratchnn")
            if check is not None:
                check(metadata, state, {name: shape for name, (_, shape) in layout.items()})
        except ModelFileError as error:
            raise ModelFileError(f"{path}: {error}") from None
        return header, version, metadata, {key: f.get_tensor(key) for key in f.keys()}

    header, version, metadata, tensors = _open(path, read, remedy)
    if "sha256" not in header:
        raise ModelFileError(f"{path}: the checksum (sha256) is missing from its metadata; "
                             f"the file was not written whole by scratchnn: {remedy}")
    if header["sha256"] != _digest(tensors, header if version >= 2 else None):
        what = "tensors or metadata were" if version >= 2 else "tensor data was"
        raise ModelFileError(f"{path}: checksum mismatch, the {what} changed after saving; {remedy}")
    for name, tensor in tensors.items():
        if not np.isfinite(tensor).all():
            raise ModelFileError(f"{path}: tensor {name!r} contains NaN or infinite values")
    for name in negative_variances(tensors.items()):
        raise ModelFileError(f"{path}: tensor {name!r}, a batch norm's running variance, holds values below 0, "
                             f"which no variance can; {remedy}")
    return tensors, metadata


def _open(path: Path, read, remedy: str = "re-save it or train again"):
    """``read(f)`` on the file opened by safetensors; its errors become one ModelFileError."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="np") as f:
            return read(f)
    except ModelFileError:
        raise
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such file") from None
    except Exception as error:  # safetensors raises its own SafetensorError (and OSError)
        raise ModelFileError(f"{path}: not a readable safetensors file ({show(str(error), 120)}); "
                             f"it is truncated or corrupted: {remedy}") from None


def _check_header_size(path: Path) -> None:
    """Refuse a header larger than MAX_HEADER_BYTES before safetensors reads and parses it."""
    try:
        with open(path, "rb") as f:
            start = f.read(8)
    except OSError as error:
        raise ModelFileError(f"{path}: {why_unreadable(error)}") from None
    claimed = int.from_bytes(start, "little") if len(start) == 8 else 0
    if claimed > MAX_HEADER_BYTES:
        raise ModelFileError(f"{path}: not a readable safetensors file (its header claims {claimed:,} bytes, "
                             f"at most {MAX_HEADER_BYTES:,} are allowed); it is corrupted or not a scratchnn model")


def _format_version(header: dict) -> int:
    if header.get("format") != FORMAT:
        raise ModelFileError(f"not a scratchnn file (no '{FORMAT}' format tag in its metadata)")
    version = header.get("format_version")
    if not (isinstance(version, str) and re.fullmatch(r"[0-9]{1,6}", version) and int(version) >= 1):
        raise ModelFileError(f"format_version must be a whole number >= 1, got {show(version)}; "
                             "the file is corrupted")
    if int(version) > FORMAT_VERSION:
        raise ModelFileError(f"written by a newer scratchnn (format {version}); upgrade scratchnn to read it")
    return int(version)


_BRACKETS = np.zeros(256, np.int8)
_BRACKETS[[ord("["), ord("{")]], _BRACKETS[[ord("]"), ord("}")]] = 1, -1


def nesting_depth(text: str) -> int:
    r"""How deep the brackets of JSON ``text`` nest; brackets inside strings do not count.

    Vectorised, so a hostile megabyte costs milliseconds: a quote is escaped when an odd run of
    backslashes precedes it; the other quotes open and close strings in turn.

    >>> nesting_depth('{"a": [1, {"b": "]]["}]}')
    3
    >>> nesting_depth(r'["\"[[", "\\", []]')
    2
    """
    data = np.frombuffer(text.encode(), np.uint8)
    backslash = data == ord("\\")
    count = np.cumsum(backslash, dtype=np.int32)
    run = count - np.maximum.accumulate(np.where(backslash, 0, count))  # backslashes ending here
    escaped = np.zeros(len(data), bool)
    escaped[1:] = run[:-1] % 2 == 1
    quotes = (data == ord('"')) & ~escaped
    inside = np.cumsum(quotes, dtype=np.int32) % 2 == 1  # between an opening quote and its closing one
    return int(np.cumsum(np.where(inside, 0, _BRACKETS[data]), dtype=np.int32).max(initial=0))


def _decode(header: dict) -> dict:
    """Parse every metadata entry, after bounding how deep it nests (deep JSON exhausts the stack)."""
    metadata = {}
    for key, text in header.items():
        if key in RESERVED:
            continue
        depth = nesting_depth(text)
        if depth > MAX_DEPTH:
            raise ModelFileError(f"metadata {show(key)} nests {depth:,} levels deep (at most {MAX_DEPTH}); "
                                 "the file is corrupted")
        try:
            metadata[key] = json.loads(text)
        except (ValueError, RecursionError) as error:
            raise ModelFileError(f"metadata {show(key)} is not valid JSON ({show(str(error), 80)})") from None
    return metadata


def _digest(tensors: dict[str, np.ndarray], header: dict[str, str] | None) -> str:
    """SHA-256 of the tensors (name, dtype, shape, bytes) and, from format 2, of the header's
    entries other than the digest itself, as canonical JSON (sorted keys)."""
    sha = hashlib.sha256()
    for name in sorted(tensors):
        sha.update(name.encode())
        sha.update(str(tensors[name].dtype).encode() + str(tensors[name].shape).encode())
        sha.update(np.ascontiguousarray(tensors[name]).tobytes())
    if header is not None:
        sha.update(json.dumps({k: v for k, v in header.items() if k != "sha256"}, sort_keys=True).encode())
    return sha.hexdigest()
