"""DataSource: what the user asked to train or evaluate on (a named dataset, a CSV or an IDX pair)."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, DataError
from .idx import read_idx_pair
from .kaggle_csv import read_kaggle_csv
from .sources import SPLITS, get_dataset, load_dataset

DIGITS = tuple(str(digit) for digit in range(10))  # classes of a CSV or IDX pair of digits
MAX_CLASSES = 256  # labels are uint8
MAX_NAME = 40  # characters of a class name (--class-names)
FIELDS = ("dataset", "csv", "images", "labels", "data_dir")


@dataclass(frozen=True, eq=False)  # eq=False: == on arrays is elementwise, not a bool
class LabeledImages:
    """images uint8 (N, H, W), labels uint8 (N,) in 0..C-1, and the C class names."""
    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.images)

    def describe(self) -> str:
        """'28x28 images of 10 classes (0..9)', or with the classes' names: what was read, in words."""
        names = ("0.." + self.classes[-1] if list(self.classes) == [str(k) for k in range(len(self.classes))]
                 else ", ".join(self.classes[:12]) + ("..." if len(self.classes) > 12 else ""))
        height, width = self.images.shape[1:3]
        return f"{height}x{width} images of {len(self.classes)} classes ({names})"


@dataclass(frozen=True)
class DataSource:
    """Exactly one of: ``dataset`` (with optional ``data_dir``), ``csv``, or ``images`` + ``labels``.

    ``data_dir`` only steers where a named dataset is looked for; other sources ignore it.

    >>> DataSource(csv="t10k.csv.gz").describe()
    'csv t10k.csv.gz'
    """

    dataset: str | None = None
    csv: str | None = None
    images: str | None = None
    labels: str | None = None
    data_dir: str | None = None

    def validate(self) -> DataSource:
        """Self, or a ConfigError (DataError for an unknown dataset name) saying what to give."""
        if (self.images is None) != (self.labels is None):
            given, missing = ("--images", "--labels") if self.labels is None else ("--labels", "--images")
            raise ConfigError(f"{given} needs {missing}: an IDX source is a pair of files (images and labels)")
        kinds = [kind for kind in ("dataset", "csv", "images") if getattr(self, kind) is not None]
        if len(kinds) != 1:
            got = f" (got {', '.join('--' + kind for kind in kinds)})" if kinds else ""
            raise ConfigError("give exactly one data source: --dataset NAME, --csv FILE, or "
                              f"--images FILE --labels FILE{got}")
        if self.dataset is not None:
            get_dataset(self.dataset)
        return self

    def describe(self) -> str:
        """One line for logs: 'dataset mnist', 'csv FILE' or 'idx IMAGES + LABELS'."""
        if self.dataset is not None:
            return f"dataset {self.dataset}" + (f" (--data-dir {self.data_dir})" if self.data_dir else "")
        if self.csv is not None:
            return f"csv {self.csv}"
        return f"idx {self.images} + {self.labels}"

    def to_dict(self) -> dict[str, str]:
        """The fields that are set (JSON and TOML friendly: no None)."""
        return {key: value for key, value in dataclasses.asdict(self).items() if value is not None}

    @classmethod
    def from_dict(cls, values: dict) -> DataSource:
        """The inverse of ``to_dict``; "" counts as not set (TOML has no null). Validated."""
        unknown = sorted(set(values) - set(FIELDS))
        if unknown:
            raise ConfigError(f"unknown data source key(s) {', '.join(unknown)}; known: {', '.join(FIELDS)}")
        return cls(**{key: (str(value) if value not in (None, "") else None)
                      for key, value in values.items()}).validate()

    def load(self, split: str = "train", *, download: bool = True, progress: bool = True,
             transpose: bool = False) -> LabeledImages:
        """The labelled images of ``split``: "train", or "test" (named datasets only); ``transpose``
        turns each image over its diagonal (EMNIST's files hold them so)."""
        data = self._load(split, download, progress)
        if not transpose:
            return data
        return dataclasses.replace(data, images=np.ascontiguousarray(data.images.transpose(0, 2, 1)))

    def _load(self, split: str, download: bool, progress: bool) -> LabeledImages:
        self.validate()
        if split not in SPLITS:
            raise DataError(f"unknown split {split!r}; choose 'train' or 'test'")
        if self.dataset is not None:
            images, labels = load_dataset(self.dataset, split, self.data_dir, download=download,
                                          progress=progress)
            return LabeledImages(images, labels, get_dataset(self.dataset).classes)
        if split != "train":
            raise DataError(f"{self.describe()} has no separate {split} split (a CSV or an IDX pair is one set, "
                            "split into train and dev); a named dataset (--dataset mnist) has one")
        if self.csv is not None:
            images, labels = _read_once((self.csv,), lambda: read_kaggle_csv(self.csv))
            if labels is None:
                raise DataError(f"{self.csv}: has no label column (a Kaggle test file?), so it cannot be "
                                "trained on, scored or shown with its labels; use a CSV whose header starts with "
                                "'label' (predict MODEL --csv FILE --submission OUT reads one without)")
        else:
            images, labels = _read_once((self.images, self.labels),
                                        lambda: read_idx_pair(self.images, self.labels, num_classes=MAX_CLASSES))
        return LabeledImages(images, labels, numbered_classes(labels))


def named_classes(text: str) -> tuple[str, ...]:
    """The class names of ``--class-names a,b,c`` (for the labels 0, 1, 2), or a ConfigError."""
    names = tuple(name.strip() for name in text.split(","))
    bad = next((name for name in names if not name or len(name) > MAX_NAME or not name.isprintable()), None)
    if bad is not None:
        shown = repr(bad[:MAX_NAME])
        shown = shown if len(shown) <= 50 else shown[:47] + "..."  # escapes of unprintable characters are long
        raise ConfigError(f"--class-names: {shown} is not a class name: a name is 1 to {MAX_NAME} "
                          "printable characters, and names are separated by commas")
    if not 2 <= len(names) <= MAX_CLASSES:
        raise ConfigError(f"--class-names gives {len(names)} name(s); a network tells 2 to {MAX_CLASSES} classes apart")
    twice = next((name for k, name in enumerate(names) if name in names[:k]), None)
    if twice is not None:
        raise ConfigError(f"--class-names names two classes {twice!r}; give each class its own name")
    return names


def numbered_classes(labels: np.ndarray) -> tuple[str, ...]:
    """The class names of a CSV or IDX pair, whose labels are class numbers: the digits "0".."9",
    or "0".."K-1" when a label is above 9 (K = the largest label + 1: letters, signs...)."""
    top = int(labels.max(initial=0))
    return DIGITS if top < len(DIGITS) else tuple(str(k) for k in range(top + 1))


_last_read: tuple[tuple, tuple] | None = None  # (the files' identities, their arrays): one entry


def _read_once(paths: tuple[str, ...], read):
    """``read()``, or the arrays the last call read from the same unchanged files (same path,
    size and modification time). A process that trains many times on one file (a sweep's Dask
    worker running trial after trial, a notebook) parses it once; the arrays are read-only, so
    no caller can change what the next one gets."""
    global _last_read
    try:
        key = tuple((os.path.abspath(p), os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in paths)
    except OSError:
        return read()  # the reader names the missing file
    if _last_read is not None and _last_read[0] == key:
        return _last_read[1]
    arrays = read()
    for array in arrays:
        if array is not None:
            array.flags.writeable = False
    _last_read = (key, arrays)
    return arrays
