"""Exceptions with one-line messages that say what is wrong and what to do.

The CLI prints ``str(error)`` and exits non-zero; the library raises these and nothing vaguer.
"""
import json
import re


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


class TrainingDiverged(ScratchnnError, ArithmeticError):
    """The loss or the weights became NaN or infinite during training."""


class DoctorStopped(ScratchnnError):
    """``--doctor strict`` stopped a run on an error finding (the CLI exits with code 3)."""

    exit_code = 3


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: the message says what was kept and the command that continues it."""

    def __init__(self, run_dir):
        super().__init__(f"the run folder {run_dir} keeps its last checkpoint; continue with "
                         f"'scratchnn train --resume {run_dir}'")


class PerformanceWarning(UserWarning):
    """Something in the environment makes training slower than it needs to be (never wrong)."""


def names_in_message(names) -> str:
    """Names read from a file, for a one-line message: plain words as they are, anything else
    quoted as JSON and cut to 40 characters, so a made-up name cannot break the line.

    >>> names_in_message(["spin", "a\\nb"])
    'spin, "a\\\\nb"'
    """
    return ", ".join(name if re.fullmatch(r"[\w.-]{1,40}", name, re.ASCII) else json.dumps(name[:40])
                     for name in map(str, names))
