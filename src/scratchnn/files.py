"""Files written and read safely: every file scratchnn saves goes through ``atomic_write_bytes``;
the small text files a user hands it (configs, search spaces) are read by ``read_small_text``;
a folder one process works in at a time (a run, a sweep) is held by ``folder_lock``."""
from __future__ import annotations

import codecs
import errno
import os
import re
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import ConfigError, os_error_message

# NOTE: reading the umask means setting it; done once at import, before any thread could race
UMASK = os.umask(0o022)
os.umask(UMASK)
WINDOWS = os.name == "nt"
# Windows refuses to rename onto a file another program has open (a spreadsheet showing
# metrics.csv, a virus scan, the page's Runs tab reading it): most let go within moments
REPLACE_TRIES, REPLACE_WAIT = 10, 0.05
STALE_WRITE = 600.0  # seconds: a write takes seconds at most, so a temporary file this old was left by a kill


class FileInUse(PermissionError):
    """Windows: the file cannot be replaced, another program holds it open (or it is read-only)."""

    def __str__(self):  # one line wherever it is shown, not "[Errno None] ..."
        return f"{self.filename}: {self.strerror}"


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write to a temporary file in the same folder, flush to disk, then rename over ``path``.

    A crash or a full disk leaves the old file (or none), never half a file. Durability matters
    here: a checkpoint is what a killed run resumes from, so after a power cut it must be either
    the old one or the new one. Hence the order: the temporary file's bytes are fsynced before
    the rename (or the rename could reach the disk before the data, leaving an empty file under
    the old name), and the folder is fsynced after it (the rename is an entry in the folder;
    until the folder is on disk, a power cut can undo it). A file written over keeps its
    permissions; a new one gets those a plain ``open(path, "w")`` would give (mkstemp's are
    owner-only). A symbolic link at ``path`` is replaced, never followed: a link planted in a run
    folder cannot send a write elsewhere. A device, pipe or socket at ``path`` (or linked from it,
    as /dev/stdout is) is refused: replacing /dev/null would break it for every program.
    """
    path = Path(path)
    if path.is_dir():  # the rename would fail, naming the temporary file, after the whole write
        raise IsADirectoryError(errno.EISDIR, "a folder is in the way of the file: move or rename the folder",
                                str(path))
    if _special(path):  # the rename would put a file where /dev/null was, for every program (the fuzz audit)
        raise ConfigError(f"{path} is not a regular file (a device, a pipe or a socket), and writing here would "
                          "replace it; give the name of a file to write")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:  # name the file asked for, not the temporary one
        raise type(error)(error.errno, error.strerror, str(path)) from error
    try:
        try:
            with os.fdopen(fd, "wb") as f:
                if hasattr(os, "fchmod"):  # not on Windows before Python 3.13 (nor needed: no mode bits there)
                    os.fchmod(f.fileno(), _mode_for(path))
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except OSError as error:  # a full disk: the system names no file, so name the one asked for
            raise type(error)(error.errno, error.strerror, str(path)) from error
        try:
            _replace(tmp, path)
        except OSError as error:  # likewise, when the system's error names the temporary file
            if error.filename is None:
                raise
            raise type(error)(error.errno, error.strerror, str(path)) from error
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)
    _remove_stale_writes(path)
    return path


def _remove_stale_writes(path: Path) -> None:
    """The temporary files of earlier writes of ``path`` killed before their rename, untouched
    for STALE_WRITE (the crash audit: five of predict's and io.save's piled up beside their files
    after ten kills; a run folder's own are swept by --resume)."""
    left = re.compile(rf"\.{re.escape(path.name)}\.[a-z0-9_]{{8}}\.tmp")  # mkstemp's 8 characters
    now = time.time()
    try:
        names = [entry for entry in os.scandir(path.parent) if left.fullmatch(entry.name)]
    except OSError:  # a folder we may write in but not list: they can wait
        return
    for old in names:
        try:
            if old.is_file(follow_symlinks=False) and now - old.stat(follow_symlinks=False).st_mtime > STALE_WRITE:
                os.unlink(old.path)
        except OSError:  # gone meanwhile, or another user's: the others are still looked at
            pass


def _special(path: Path) -> bool:
    """Whether ``path`` is (or links to) a device, a pipe or a socket."""
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError):
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _mode_for(path: Path) -> int:
    """The permission bits of the regular file at ``path``, or a new file's (0o666 less the umask)."""
    try:
        info = path.lstat()
    except OSError:
        info = None
    return stat.S_IMODE(info.st_mode) if info and stat.S_ISREG(info.st_mode) else 0o666 & ~UMASK


def _replace(tmp: str, path: Path) -> None:
    """``os.replace``; on Windows a file held open by another program is tried again for a moment,
    then FileInUse names it."""
    for attempt in range(REPLACE_TRIES if WINDOWS else 1):
        try:
            return os.replace(tmp, path)
        except PermissionError:
            if not WINDOWS:
                raise
            if attempt + 1 < REPLACE_TRIES:
                time.sleep(REPLACE_WAIT)
    # errno None: not the generic "no permission" hint, which would send the user elsewhere
    raise FileInUse(None, "another program has the file open (a spreadsheet, an editor, a virus scan) or it "
                    "is read-only: close that program and try again", str(path))


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename into it) to disk; POSIX only, where folders can be opened.

    NOTE: some filesystems refuse fsync on a folder (EINVAL); there the rename is as durable as
    the filesystem makes it, and the file itself is already complete.
    """
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def read_at_most(path, limit: int) -> bytes:
    """The bytes of ``path``, but never more than ``limit`` + 1 of them: more than ``limit`` means
    the file is too big, found without reading (or holding) the rest. A file's size on disk is
    no bound: /dev/zero says 0. OSError as ``open`` raises it, and ``NotARegularFile``."""
    with open_regular(path) as file:
        return file.read(limit + 1)


class NotARegularFile(OSError):
    """A pipe, a device or a socket where a file was expected."""


def open_regular(path):
    """``open(path, "rb")`` for a regular file; NotARegularFile for anything else. A named pipe
    that nobody writes to would block ``open`` for ever (a run folder's table made one hangs the
    page's Runs list), so it is opened without waiting, and looked at before it is read."""
    nonblocking = getattr(os, "O_NONBLOCK", 0)  # not on Windows, whose open() does not wait for a writer
    fd = os.open(path, os.O_RDONLY | nonblocking | getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))
        if not stat.S_ISREG(mode):
            raise NotARegularFile(errno.EINVAL, "a pipe, device or socket, not a file", str(path))
        if nonblocking:
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def why_unreadable(error: OSError) -> str:
    """Why ``open`` failed, in the words every one-line error uses: "no such file", "a folder, not
    a file" or "cannot be read (Permission denied)"."""
    if isinstance(error, FileNotFoundError):
        return "no such file"
    if isinstance(error, IsADirectoryError) or (  # Windows says "Permission denied" of a folder
            isinstance(error, PermissionError) and error.filename and os.path.isdir(error.filename)):
        return "a folder, not a file"
    if isinstance(error, NotARegularFile):
        return "a pipe, device or socket, not a file"
    return f"cannot be read ({error.strerror or error})"


def read_small_text(path, limit: int, what: str) -> str:
    """The UTF-8 text of ``path`` (without the BOM Windows editors may put first), a file of at
    most ``limit`` bytes; a one-line ConfigError naming the file and ``what`` it should be ("a
    config file") otherwise, and a UTF-16 file as such. No more than ``limit`` + 1 bytes are ever
    read: a huge or endless file (/dev/zero) is refused, not loaded."""
    path = Path(path)
    try:
        data = read_at_most(path, limit)
    except OSError as error:
        raise ConfigError(f"{path}: {why_unreadable(error)}; give {what}") from None
    if len(data) > limit:
        raise ConfigError(f"{path}: over {limit // 1024:,} KiB, too big for {what}, which is a few lines")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):  # Notepad's "Unicode", PowerShell 5's >
        raise ConfigError(f"{path}: saved as UTF-16: save it as UTF-8 (it should be {what})")
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0  # Notepad's and PowerShell's UTF-8
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text (byte {bom + error.start}); give {what}") from None


# ------------------------------------------------------------------ one process at a time in a folder
# A run being trained, a sweep being run. The lock is a small file made with O_CREAT | O_EXCL (the
# system makes it for exactly one of two processes asking at once) holding the owner's pid and host
# name, removed when the work ends. A lock whose owner was killed (kill -9, a power cut) stays behind:
# on the same host, a pid that no longer exists means the lock is stale and is taken over; another
# host's lock cannot be checked from here, so the message says which file to delete once that work is
# known to be over.

def modified_at(path: Path) -> float:
    """``path``'s modification time for ordering files newest first, one over a minute in the
    future counting as the oldest: a folder copied from a machine whose clock was ahead stayed
    "newest" until that date (the locale audit: the server served a copied run over the one just
    trained, and listed it first)."""
    modified = path.stat().st_mtime
    return modified if modified <= time.time() + 60 else 0.0


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


def lock_held(folder: Path, name: str) -> bool:
    """Whether ``folder/name`` (a folder_lock) is held by a process that may still run: one of this
    machine that exists, or any of another machine's."""
    lock = Path(folder) / name
    try:
        return not _gone(read_small_text(lock, 1024, "a lock file").split(), lock)
    except (OSError, ConfigError):  # none, or gone meanwhile: not held
        return False


def _gone(holder: list[str], lock: Path) -> bool:
    """True when the lock's owner ran on this host and its process no longer exists (or is this
    one: a container restarted with the same pid), or the lock is empty and a minute old (its
    owner was killed between making it and writing it) or dated in the future (copied from a
    machine whose clock was ahead: it held a folder until that date, the locale audit)."""
    if not holder:
        return abs(time.time() - lock.stat().st_mtime) > EMPTY_STALE_AFTER  # (a time ahead: another clock's)
    if len(holder) != 2 or holder[1] != socket.gethostname() or not (holder[0].isascii() and holder[0].isdigit()):
        return False  # another machine's: let the user say
    return process_gone(int(holder[0]))


def process_gone(pid: int) -> bool:
    """Whether no process ``pid`` runs on this machine (this one's own pid counts as gone: a
    container restarted with the same pid); False when it cannot be told (Windows, where
    os.kill(pid, 0) would signal it; another user's process)."""
    if os.name == "nt":
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return False
