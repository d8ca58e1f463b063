"""How a command stopped by Ctrl+C or SIGTERM ends: by that signal, once it has kept what it could.

SIGTERM (kill, a container or a job scheduler stopping the process) is turned into the
KeyboardInterrupt Ctrl+C raises, so a run keeps its checkpoint and says how to resume instead of
vanishing without a word; ``main`` returns INTERRUPTED, and ``console`` then ends the process by
the signal that stopped it (``stopped_by``), as Python itself does. The shell sees a signal, not
an exit code: a loop of runs in a script stops at one Ctrl+C, and a service manager sees a stop,
not a failure. (Windows has no such ending: there it exits 130.)
"""
from __future__ import annotations

import os
import signal
import sys

INTERRUPTED = 130  # what main() returns for Ctrl+C or SIGTERM (128 + SIGINT, the shells' convention)
stopped_by = signal.SIGINT  # the signal behind the last interruption (Ctrl+C raises KeyboardInterrupt itself)


def interrupted_by(signum: int):
    """Raise KeyboardInterrupt for ``signum`` (SIGINT or SIGTERM), which ``end_by_signal`` ends by."""
    global stopped_by
    stopped_by = signum
    raise KeyboardInterrupt


def terminated(signum, frame):
    """The SIGTERM handler, and SIGXCPU's (a CPU-time limit, ``ulimit -t``: the run died at once,
    without a word or its last epoch, the resource audit): a KeyboardInterrupt, as Ctrl+C gives.
    SIGXCPU comes again each second until the hard limit: later ones are ignored while the run
    saves what it keeps."""
    if signum == getattr(signal, "SIGXCPU", None):
        signal.signal(signum, signal.SIG_IGN)
    interrupted_by(signum)


STOPPING = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGXCPU") if hasattr(signal, name))


def end_by_signal() -> None:
    """End this process by ``stopped_by`` (POSIX), its output flushed first."""
    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(stopped_by, signal.SIG_DFL)
    os.kill(os.getpid(), stopped_by)
