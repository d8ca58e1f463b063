"""Exceptions with one-line messages that say what is wrong and what to do.

The CLI prints ``str(error)`` and exits non-zero; the library raises these and nothing vaguer.
"""
import errno
import json
import re
import shlex
import sys


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # a newline, a tab, C1, Unicode's line breaks


def one_line(text) -> str:
    """``text`` with its control characters written as escapes (a newline in a file's name as
    \\n), so a message stays one line and names the file as it is (spaces kept)."""
    return _CONTROL.sub(lambda found: repr(found.group())[1:-1], str(text))


def shell_word(value) -> str:
    """A path (or value) as one word of a command the user may paste into a shell: quoted where it
    must be (spaces, quotes, ``$``, ``;``), ``./`` before a relative path that starts with ``-`` (or
    it reads as a flag), and bash's ``$'...'`` with escapes for control characters (the paths audit:
    'scratchnn train --resume runs/a;b run' ran b).

    >>> shell_word("runs/run one"), shell_word("-d"), shell_word("runs/x")
    ("'runs/run one'", './-d', 'runs/x')
    """
    text = str(value)
    if text.startswith("-"):
        text = "./" + text
    if not _CONTROL.search(text):
        return shlex.quote(text)
    return "$'" + "".join((f"\\x{ord(c):02x}" if ord(c) < 0x80 else f"\\u{ord(c):04x}") if _CONTROL.match(c)
                          else "\\" + c if c in "\\'" else c for c in text) + "'"


def readable(text: str) -> str:
    r"""``text`` with the bytes of a file name Python could not decode (lone surrogates) as \xNN
    escapes, so a page or a log naming the file can be written as UTF-8.

    >>> print(readable("runs/caf\udce9"))
    runs/caf\xe9
    """
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def undecodable_name(name: str) -> str | None:
    r"""Why ``name`` (a path as Python decoded it) cannot be written as UTF-8 text, or None: bytes
    the file system's encoding could not decode, which Python keeps as lone surrogates (a folder
    named in Latin-1; in a C locale without UTF-8 mode, any name that is not ASCII).

    >>> print(undecodable_name("runs/d\udcff"))
    'runs/d\\xff' holds bytes that are not UTF-8 text: rename it
    """
    try:
        name.encode("utf-8")
        return None
    except UnicodeEncodeError:
        pass
    try:
        decoded = name.encode("utf-8", "surrogateescape").decode("utf-8")
    except UnicodeDecodeError:
        return f"{readable(name)!r} holds bytes that are not UTF-8 text: rename it"
    return (f"{decoded!r} is read as {sys.getfilesystemencoding()} here (a C locale): run scratchnn with "
            "PYTHONUTF8=1, or in a UTF-8 locale (LANG=C.UTF-8)")


class ScratchnnError(Exception):
    """Base class of every error scratchnn raises on purpose."""


class DataError(ScratchnnError, ValueError):
    """A data file or dataset is missing, corrupt or malformed."""


class ModelFileError(ScratchnnError, ValueError):
    """A model or checkpoint file cannot be read or does not fit the model."""


class ShapeError(ScratchnnError, ValueError):
    """An array has the wrong shape, dtype or values for where it is used."""


class ConfigError(ScratchnnError, ValueError):
    """A training option or configuration value is invalid."""


class ImageError(ScratchnnError, ValueError):
    """A photo cannot be read (missing, not an image, corrupt, too large) or holds no digit."""


class MissingExtra(ScratchnnError, ImportError):
    """An optional part of scratchnn is not installed (the message names the pip extra)."""


class TrainingDiverged(ScratchnnError, ArithmeticError):
    """The loss or the weights became NaN or infinite during training."""


class DoctorStopped(ScratchnnError):
    """``--doctor strict`` stopped a run on an error finding (the CLI exits with code 3)."""

    exit_code = 3


class OtherConvention(UserWarning):
    """A setting that reads as another library's convention (Keras's batch-norm momentum of 0.99):
    said when a learner builds the layer, not when a saved model is rebuilt (nn.base.layer_from_config)."""


class InferenceBackward(UserWarning):
    """A backward pass after an inference-mode forward on a network with dropout or batch norm:
    in a hand-written training loop, ``model.forward(x, training=True)`` was forgotten. (A check
    of the inference-mode gradients does it on purpose and silences this warning.)"""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: the message says what was kept and the command that continues it."""

    def __init__(self, run_dir, checkpoint: bool = True, flags: str = "", kept: str = ""):
        self.run_dir, self.checkpoint, self.kept = run_dir, checkpoint, kept
        command = f"scratchnn train --resume {shell_word(run_dir)}{flags}"
        super().__init__((f"the run folder {run_dir} keeps its last checkpoint; continue with '{command}'" if checkpoint
                          else f"the run folder {run_dir} has no checkpoint to go on from (--checkpoint-every 0, or "
                               f"stopped in its first epoch); '{command}' starts it over")
                         + (f" ({kept})" if kept else ""))

    def with_flags(self, flags: str) -> "RunInterrupted":
        """The same, its command with ``flags`` the run was started with that --resume does not keep
        (``--no-report``: the disk audit, following the command wrote the report the user turned off)."""
        return type(self)(self.run_dir, self.checkpoint, flags, self.kept)


class OutputClosed(BrokenPipeError):
    """A run's output was closed under it (piped into ``head``, which quit): ``kept`` says what its
    folder keeps and the command that goes on, as RunInterrupted does."""

    def __init__(self, run_dir, checkpoint: bool = True, flags: str = ""):
        super().__init__(errno.EPIPE, "Broken pipe")
        self.run_dir, self.checkpoint = run_dir, checkpoint
        self.kept = RunInterrupted(run_dir, checkpoint, flags).args[0]

    def with_flags(self, flags: str) -> "OutputClosed":
        """As RunInterrupted.with_flags."""
        return type(self)(self.run_dir, self.checkpoint, flags)


class RunNotSaved(ScratchnnError):
    """A file of a training run could not be written (a full disk, a folder made read-only): the
    message names the file and the system's reason, what the run folder keeps, and how to go on."""

    def __init__(self, error: OSError, run_dir, checkpoint: bool = True, flags: str = ""):
        self.error, self.run_dir, self.checkpoint = error, run_dir, checkpoint
        where = f"{error.filename}: " if error.filename is not None else ""
        hint = OS_ERROR_HINTS.get(error.errno, "").split(":")[0]  # what to do is said after it
        command = f"scratchnn train --resume {shell_word(run_dir)}{flags}"
        kept = (f"the run folder {run_dir} keeps its last checkpoint: once that is mended, '{command}' goes on from it"
                if checkpoint else f"the run folder {run_dir} has no checkpoint yet: once that is mended, '{command}' "
                "starts it over")
        reason = error.strerror or str(error) or type(error).__name__
        super().__init__(one_line(f"{where}{reason}{f' ({hint})' if hint else ''}; {kept}"))  # names as they are

    def with_flags(self, flags: str) -> "RunNotSaved":
        """As RunInterrupted.with_flags."""
        return type(self)(self.error, self.run_dir, self.checkpoint, flags)


class PerformanceWarning(UserWarning):
    """Something in the environment makes training slower than it needs to be (never wrong)."""


def huge_number(value) -> str:
    """'a 400-digit number' for an integer past 2**63 (a TOML file or JSON may hold any; float() of
    one past ~1.8e308 is an OverflowError, and none is a sensible setting), else ''."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2 ** 63:
        return f"a {len(str(abs(value)))}-digit number"
    return ""


def names_in_message(names, most: int | None = None) -> str:
    """Names read from a file, for a one-line message: plain words as they are, anything else
    quoted as JSON and cut to 40 characters, so a made-up name cannot break the line; the first
    ``most`` of them and "..." when there are more.

    >>> names_in_message(["spin", "a\\nb"])
    'spin, "a\\\\nb"'
    >>> names_in_message(["seed-0", "seed-1", "seed-2"], most=2)
    'seed-0, seed-1, ...'
    """
    names = list(map(str, names))
    shown = ", ".join(name if re.fullmatch(r"[\w.-]{1,40}", name, re.ASCII) else json.dumps(name[:40])
                      for name in names[:most])
    return shown + (", ..." if most is not None and len(names) > most else "")


OS_ERROR_HINTS = {errno.ENOENT: "its folder does not exist and cannot be made there",
                  errno.EACCES: "this user may not use it: check its permissions, or choose a place you can use",
                  errno.EPERM: "this user may not use it: check its permissions, or choose a place you can use",
                  errno.EROFS: "a read-only file system: choose another place",
                  errno.ENOSPC: "the disk is full: free some space",
                  errno.EISDIR: "a folder, where a file was expected",
                  errno.ENOTDIR: "part of the path is a file, not a folder",
                  errno.EEXIST: "part of the path is a file, not a folder"}


def os_error_message(error: OSError) -> str:
    """A file the system refused, in one line: '/proc/run: No such file or directory (its folder
    does not exist and cannot be made there)'. For the CLI's last line of defence; the library's
    readers raise their own, more precise errors first.

    >>> os_error_message(PermissionError(13, "Permission denied", "/srv/runs"))
    '/srv/runs: Permission denied (this user may not use it: check its permissions, or choose a place you can use)'
    """
    where = f"{error.filename}: " if error.filename is not None else ""
    reason = error.strerror or str(error) or type(error).__name__
    hint = OS_ERROR_HINTS.get(error.errno)
    return one_line(f"{where}{reason}" + (f" ({hint})" if hint else ""))  # one line, whatever the name
