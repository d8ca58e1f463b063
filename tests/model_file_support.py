"""Tampering with model files as an attacker would: edit the metadata or the tensors, then
(as anyone can, the digest has no key) put a matching SHA-256 back, so the edit reaches the
loader's deeper checks instead of stopping at the checksum."""
import json

from safetensors import safe_open
from safetensors.numpy import load_file
from safetensors.numpy import save as to_bytes

from scratchnn.io import _digest

FRAME = ("format", "format_version", "sha256")


def file_parts(path) -> tuple[dict, dict[str, str]]:
    """(tensors, raw string metadata) of a safetensors file."""
    with safe_open(str(path), framework="np") as f:
        return load_file(str(path)), dict(f.metadata())


def tampered_bytes(path, *, metadata=None, raw=None, tensors=None, sign: bool = True) -> bytes:
    """The file at ``path`` rewritten: ``metadata(decoded)`` edits the decoded JSON entries in
    place, ``raw(strings)`` the raw header strings, ``tensors(arrays)`` the tensors; ``sign``
    writes the digest the edited file would carry had scratchnn written it."""
    arrays, header = file_parts(path)
    if metadata is not None:
        decoded = {key: json.loads(value) for key, value in header.items() if key not in FRAME}
        metadata(decoded)
        header = {**{k: header[k] for k in FRAME if k in header}, **{k: json.dumps(v) for k, v in decoded.items()}}
    if raw is not None:
        raw(header)
    if tensors is not None:
        tensors(arrays)
    if sign:
        header.pop("sha256", None)
        header["sha256"] = _digest(arrays, header if header.get("format_version") != "1" else None)
    return to_bytes(arrays, metadata=header)


def tamper(path, out=None, **edits):
    """Write ``tampered_bytes(path, **edits)`` to ``out`` (default: over ``path``); returns it."""
    out = out or path
    data = tampered_bytes(path, **edits)
    with open(out, "wb") as f:
        f.write(data)
    return out
