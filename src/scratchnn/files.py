"""Writing files safely: every file scratchnn saves goes through ``atomic_write_bytes``."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

# NOTE: reading the umask means setting it; done once at import, before any thread could race
UMASK = os.umask(0o022)
os.umask(UMASK)


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write to a temporary file in the same folder, flush to disk, then rename over ``path``.

    A crash or a full disk leaves the old file (or none), never half a file. The file gets the
    permissions a plain ``open(path, "w")`` would give (mkstemp's are owner-only).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~UMASK)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
