"""One process at a time in a folder: a run being trained, a sweep being run.

The lock is a small file made with O_CREAT | O_EXCL (the system makes it for exactly one of two
processes asking at once) holding the owner's pid and host name, removed when the work ends.
A lock whose owner was killed (kill -9, a power cut) stays behind: on the same host, a pid that
no longer exists means the lock is stale and is taken over; another host's lock cannot be
checked from here, so the message says which file to delete once that work is known to be over.
"""
from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import ConfigError, os_error_message
from .files import read_small_text

EMPTY_STALE_AFTER = 60.0  # seconds: a lock still empty this long lost its owner between making and writing it


@contextmanager
def folder_lock(folder: Path, name: str, work: str, unwritable: str = "") -> Iterator[None]:
    """Hold ``folder/name`` while ``work`` ("a running sweep", "a training run") goes on there:
    a second process gets a ConfigError naming the holder. ``unwritable``: what to say after the
    system's reason when the lock cannot be made (a read-only folder), before any work is done."""
    lock, mine = Path(folder) / name, f"{os.getpid()} {socket.gethostname()}\n"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            try:
                holder = read_small_text(lock, 1024, f"the lock file of {work}").split()
            except ConfigError:
                if not lock.exists():  # its owner let go between our try and the read: try again
                    continue
                raise
            if not _gone(holder, lock):
                who = f"pid {holder[0]} on {holder[1]}" if len(holder) == 2 else "a process that is starting"
                raise ConfigError(f"{folder} is in use by {work} ({who}); wait for it to end, or if it "
                                  f"is gone, delete {lock}") from None
            lock.unlink(missing_ok=True)  # its owner was killed: take it over
        except OSError as error:  # a read-only or full disk, a folder not ours: said before the work begins
            raise ConfigError(f"{os_error_message(error)}{'; ' + unwritable if unwritable else ''}") from None
    else:
        raise ConfigError(f"{folder}: cannot take {lock}; delete it if no other process works there")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:  # read back as UTF-8: a host named "Jürgen-PC"
            file.write(mine)
        yield
    finally:
        lock.unlink(missing_ok=True)


def _gone(holder: list[str], lock: Path) -> bool:
    """True when the lock's owner ran on this host and its process no longer exists (or is this
    one: a container restarted with the same pid), or the lock is empty and a minute old (its
    owner was killed between making it and writing it)."""
    if not holder:
        return time.time() - lock.stat().st_mtime > EMPTY_STALE_AFTER
    if len(holder) != 2 or holder[1] != socket.gethostname() or not holder[0].isdigit() or os.name == "nt":
        return False  # another machine's, or Windows (where os.kill(pid, 0) would signal it): let the user say
    if int(holder[0]) == os.getpid():
        return True
    try:
        os.kill(int(holder[0]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
