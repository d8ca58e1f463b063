"""Files copied out of a downloaded zip archive, within bounds (EMNIST's six splits come in one).

The archive is checked against its published checksum before it is unpacked; each member is
checked again by the zip's own CRC-32 as it is read (``zipfile`` raises at the end of a member
whose bytes do not match). A damaged or hostile archive (cut off, flipped bytes, an unknown
compression, an encrypted member) gives one line saying so, never a traceback. A member may not
be larger than ``max_bytes``, whatever its header says: the bytes are counted as they are
copied. Each file is written to a temporary name, synced and renamed, so a folder never holds
half a file.

Only stored and deflated members are read (EMNIST's are deflated): ``zipfile`` inflates a
deflated member at most a block at a time, but hands a bzip2 or LZMA member's compressed bytes
to the decoder whole, and a kilobyte of damaged bzip2 (the fuzzer found one) decoded to 30 MB
in one call, before any size check could see it.
"""
from __future__ import annotations

import lzma
import os
import tempfile
import zipfile
import zlib
from pathlib import Path

BLOCK = 1 << 20
BOUNDED = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}  # what is read a block at a time
# what zipfile raises on a damaged archive: a bad directory or CRC, a cut-off or corrupt compressed
# stream, a compression method or an encryption it does not know, a size past what it supports
DAMAGED = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, lzma.LZMAError, EOFError, ValueError,
           NotImplementedError, RuntimeError)


def unpack(archive: Path, members: dict[str, Path], max_bytes: int) -> str | None:
    """Copy each member (its name in the archive) to its path; None on success, else why not."""
    try:
        with zipfile.ZipFile(archive) as zipped:
            for name, target in members.items():
                problem = _copy(zipped, name, target, max_bytes)
                if problem is not None:
                    return f"{archive.name}: {name}: {problem}"
    except OSError as error:
        return f"{archive.name} cannot be unpacked ({error.strerror or error})"
    except DAMAGED as error:
        return f"{archive.name} cannot be unpacked, it is damaged ({str(error)[:200] or type(error).__name__})"
    return None


def _copy(zipped: zipfile.ZipFile, name: str, target: Path, max_bytes: int) -> str | None:
    try:
        info = zipped.getinfo(name)
    except KeyError:
        return "not in the archive"
    if info.file_size > max_bytes:
        return f"{info.file_size:,} bytes, more than the {max_bytes:,} a member may have"
    if info.compress_type not in BOUNDED:
        return (f"compression method {info.compress_type} (bzip2 is 12, LZMA 14) is not read here: only stored or "
                "deflated members, whose decoding stays bounded; unpack it with another tool")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        copied = 0
        with os.fdopen(fd, "wb") as out, zipped.open(info) as member:
            while block := member.read(BLOCK):
                copied += len(block)
                if copied > max_bytes:
                    return f"more than the {max_bytes:,} bytes a member may have"
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
        return None
    finally:
        Path(tmp).unlink(missing_ok=True)  # gone already after a successful os.replace
