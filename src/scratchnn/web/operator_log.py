"""What the person running ``scratchnn serve`` sees in its console: runs started, stopped, loaded
and failed, and requests refused (a proxy that changes the Host, a page of another site), one
line each with the time. A student who says "it says refused" then has a line to point to.

The lines go to the ``scratchnn.serve`` logger; ``serve`` prints it at INFO. Refusals are at
most one line per kind every ``QUIET_SECONDS``: a hostile page that keeps asking must not flood it.
"""
from __future__ import annotations

import logging
import threading
import time

OPERATOR = logging.getLogger("scratchnn.serve")
QUIET_SECONDS = 10.0
_last: dict[str, float] = {}
_lock = threading.Lock()


def refused(kind: str, message: str, *args) -> None:
    """Log a refused request (WARNING), unless one of this ``kind`` was logged in the last QUIET_SECONDS."""
    now = time.monotonic()
    with _lock:
        if now - _last.get(kind, -QUIET_SECONDS) < QUIET_SECONDS:
            return
        _last[kind] = now
    OPERATOR.warning(message, *args)


def print_to_console() -> None:
    """Show the operator's lines on stderr, with the time (``scratchnn serve`` calls this)."""
    if OPERATOR.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    OPERATOR.addHandler(handler)
    OPERATOR.setLevel(logging.INFO)
    OPERATOR.propagate = False
