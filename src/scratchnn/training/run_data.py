"""Reading a run's data back: its source, its seeded split, and whether the files are still the ones
it was trained on.

``load_set`` gives one set of a run (train or dev replay the run's split from its seed; test; all).

``train`` records each data file as an absolute path with its SHA-256 (``record_data``), so a run
folder works from any directory and a moved or edited file is named as such
(``check_data_files``). Configs from before that hold paths relative to the folder ``train`` ran
in; ``locate_data`` looks for them from the current directory, then the run folder, then the
folder holding ``runs/``. ``model_image_shape`` is the (H, W) a model reads, so images of
another size are refused (``check_image_shape``) instead of being reshaped to fit.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..data import DataSource, LabeledImages, train_dev_split
from ..data.augment import Augmentation, augmentation_for
from ..data.kaggle_csv import has_header
from ..data.load import named_classes
from ..data.looks import dark_on_light, faint, wider_than_tall
from ..data.split import seeded_generators
from ..errors import ConfigError, DataError, shell_word
from ..files import why_unreadable
from ..io import class_names
from ..model import Sequential
from .config import TrainConfig
from .options import known_settings

SETS = ("train", "dev", "test", "all")
FILES = ("csv", "images", "labels")  # the source fields that name a file (and have a digest)
MNIST_SIDE = 28


def file_sha256(path) -> str:
    """Hex SHA-256 of a file, read in chunks (memory stays flat however large it is); a missing or
    unreadable file is a DataError that says so (not the writer's 'its folder does not exist')."""
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as error:
        raise DataError(f"{path}: {why_unreadable(error)}; check the path") from None


def absolute_data_paths(config: TrainConfig) -> TrainConfig:
    """A copy whose file and folder fields are absolute (from the current directory)."""
    return dataclasses.replace(config, **{name: os.path.abspath(os.path.expanduser(getattr(config, name)))
                                          for name in (*FILES, "data_dir") if getattr(config, name)})


def set_key(config: TrainConfig, which: str) -> tuple:
    """What decides a set's images: the data (a file by its recorded checksum, else its path) and
    how it is read, and for train/dev the seeded split (the split seed, which is the seed unless
    set: ensemble members share one). Equal keys, the same images; evaluate compares the images
    of members whose keys differ, the page's gallery refuses them."""
    files = tuple(getattr(config, f"{name}_sha256") or getattr(config, name) for name in FILES)
    source = (config.dataset, *files, config.data_dir, config.transpose)
    split_seed = config.split_seed if config.split_seed >= 0 else config.seed
    split = (split_seed, config.dev_size) + ((config.train_size,) if which == "train" else ())
    return source + (split if which in ("train", "dev") else ())


def record_data(config: TrainConfig) -> TrainConfig:
    """A copy with absolute paths and the SHA-256 of every data file it names (files must exist)."""
    config = absolute_data_paths(config)
    return dataclasses.replace(config, **{f"{name}_sha256": file_sha256(getattr(config, name))
                                          for name in FILES if getattr(config, name)})


def with_data(config: TrainConfig, given: dict) -> TrainConfig:
    """Write the data options in ``given`` ({field: value}) into ``config``; a new source (dataset,
    csv, images or labels) replaces the old one and its recorded digests, and data of another
    kind (digits to clothes) its recorded augmentation, which was made for the old kind (a table
    of some settings only, a config file's own, stays: its settings lie over the new kind's, as a
    table always does; the combinations audit: rotate = 5.0, p = 0.5 went without a word). A named
    dataset names its own classes and holds its images upright: no --class-names, --transpose."""
    sources, dataset = ("dataset", "csv", "images", "labels"), config.dataset
    if given.get("data_dir") and any(given.get(name) for name in FILES):  # it was ignored without a word
        raise ConfigError("--data-dir steers where a named dataset is looked for; with --csv or --images it does "
                          "nothing: leave it out")
    if given.keys() & set(sources):
        for name in (*sources, *(f"{name}_sha256" for name in FILES)):
            setattr(config, name, "")
    if given.get("dataset"):
        config.class_names, config.transpose = "", False
    for name, value in given.items():
        setattr(config, name, value)
    recorded = set(config.augmentation) >= {field.name for field in dataclasses.fields(Augmentation)}
    if augmentation_for(config.dataset) != augmentation_for(dataset) and recorded:
        config.augmentation = {}
    return config


def recorded_config(settings: dict, model_path: Path, log: Callable[[str], None]) -> TrainConfig:
    """The training config a model file records (``settings``), its data located from the
    model's folder; settings of a newer version are left out with a note (``known_settings``):
    what evaluate, predict, explain and report read, where the model is only used."""
    source = f"{model_path} metadata"
    config = TrainConfig.from_dict(known_settings(settings, TrainConfig, source, log), source=source)
    return locate_data(config, Path(model_path).parent)


def locate_data(config: TrainConfig, run_dir) -> TrainConfig:
    """A copy whose relative data paths (older configs) are made absolute where they exist, and
    a leading ``~`` the user's home folder.

    Tried in order: the current directory, ``run_dir``, and the folder that holds ``runs/`` when
    ``run_dir`` is ``runs/<name>`` (the folder ``train`` ran in by default). A path found nowhere
    is taken from the current directory, so the error that follows names it.
    """
    run_dir = Path(run_dir).absolute()
    bases = [Path.cwd(), run_dir] + ([run_dir.parent.parent] if run_dir.parent.name == "runs" else [])
    found = {}
    for name in (*FILES, "data_dir"):
        value = getattr(config, name)
        if value and value.startswith("~"):  # a home folder written in a config file: the shell never saw it
            value = found[name] = os.path.expanduser(value)
        if not value or Path(value).is_absolute():
            continue
        candidates = [base / value for base in bases]
        found[name] = os.path.abspath(next((c for c in candidates if c.exists()), candidates[0]))
    return dataclasses.replace(config, **found)


def check_data_files(config: TrainConfig, resuming: bool = False, config_file: Path | None = None) -> None:
    """A DataError if a data file the run recorded is missing or no longer has its SHA-256;
    ``resuming``: a run can only go on with the data it began with (no other --csv to offer), from
    wherever it is now: ``config_file``, the run's config.toml, may say where it moved to."""
    for name in FILES:
        path, digest = getattr(config, name), getattr(config, f"{name}_sha256")
        if not (path and digest):
            continue
        trained_on = f"the run was trained on {path} (sha256 {digest[:12]}...)"
        other = ("; a resumed run goes on with the data it began with" if resuming else
                 f", or give the data explicitly with --{name}")
        if not Path(path).is_file():
            moved = (f", or if it moved, set {name} = \"NEW PATH\" in {shell_word(config_file)} (its sha256 is "
                     "checked)" if config_file is not None else "")
            raise DataError(f"{trained_on}; that file is missing: put it back{moved}{other}")
        now = file_sha256(path)
        if now != digest:
            raise DataError(f"{trained_on}; that file has changed (sha256 now {now[:12]}...): restore it{other}")


def model_image_shape(model, metadata: dict) -> tuple[int, int] | None:
    """The (H, W) of the images ``model`` reads: its metadata's ``image_shape``, else a CNN's input
    (1, H, W), else 28x28 for a 784-input MLP (older models); None when it cannot be known."""
    shape = metadata.get("image_shape")
    if (isinstance(shape, list) and len(shape) == 2
            and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)):
        return shape[0], shape[1]
    if len(model.input_shape) == 3:
        return tuple(model.input_shape[1:])
    if tuple(model.input_shape) == (MNIST_SIDE * MNIST_SIDE,):
        return MNIST_SIDE, MNIST_SIDE
    return None


def not_28x28(image_shape, input_shape) -> str:
    """'' for a model of 28x28 images, the size photos and the page's drawings become; else what it
    reads, in words ('16x49 images': 784 pixels are not 28x28, the shapes audit)."""
    if image_shape is not None and tuple(image_shape) == (MNIST_SIDE, MNIST_SIDE):
        return ""
    return "x".join(map(str, image_shape)) + " images" if image_shape else f"inputs of shape {tuple(input_shape)}"


def check_image_shape(images, name: str, model, metadata: dict) -> None:
    """A DataError naming ``name`` (the data file) when images (N, H, W) do not fit the model."""
    expected = model_image_shape(model, metadata)
    got = tuple(images.shape[1:])
    if expected is None:  # an old model of unusual input: at least the pixel count must match
        if math.prod(got) != math.prod(model.input_shape):
            raise DataError(f"{name}: images are {'x'.join(map(str, got))} ({math.prod(got)} pixels), the model "
                            f"takes {math.prod(model.input_shape)} pixels; give images of the size it was trained on")
        return
    if got != tuple(expected):
        raise DataError(f"{name}: images are {'x'.join(map(str, got))}, the model takes "
                        f"{'x'.join(map(str, expected))} images; give images of the size it was trained on")


def run_split(config: TrainConfig, images: np.ndarray, labels: np.ndarray, split_rng: np.random.Generator):
    """The run's (train images, train labels, dev images, dev labels): ``dev_size`` images held
    out of the shuffled data, then the first ``train_size`` of the rest (0: all) to train on."""
    train_images, train_labels, dev_images, dev_labels = train_dev_split(images, labels, config.dev_size, split_rng)
    if config.train_size:
        train_images, train_labels = train_images[:config.train_size], train_labels[:config.train_size]
    return train_images, train_labels, dev_images, dev_labels


def config_generators(config: TrainConfig) -> dict[str, np.random.Generator]:
    """``seeded_generators`` of a config: its seed, and its split seed when it has one (>= 0)."""
    return seeded_generators(config.seed, config.split_seed if config.split_seed >= 0 else None)


def data_source(config: TrainConfig) -> DataSource:
    """The config's data source; the MNIST dataset when none is given."""
    source = DataSource(dataset=config.dataset or None, csv=config.csv or None, images=config.images or None,
                        labels=config.labels or None, data_dir=config.data_dir or None)
    if not (source.dataset or source.csv or source.images or source.labels):
        source = dataclasses.replace(source, dataset="mnist")
    source.validate()
    return source


def load_data(config: TrainConfig, source: DataSource, split: str = "train", **options) -> LabeledImages:
    """``source.load(split, **options)`` as the run reads its data: each image turned over its
    diagonal with ``--transpose``, the classes named by ``--class-names`` (a CSV's or IDX pair's
    labels are numbers); a label past the last name is a DataError."""
    data = source.load(split, transpose=config.transpose, **options)
    if not config.class_names:
        return data
    names = named_classes(config.class_names)
    top = int(data.labels.max(initial=0))
    if top >= len(names):
        raise DataError(f"{source.labels or source.csv}: label {top} has no name: --class-names names {len(names)} "
                        f"classes (labels 0..{len(names) - 1}); give every class a name")
    return dataclasses.replace(data, classes=names)


def check_training_data(data: LabeledImages, source: DataSource, transposed: bool,
                        log: Callable[[str], None] = print) -> None:
    """What is checked of a file before anything trains on it: its class numbers (a DataError or
    notes) and what its images look like (notes); ``transposed``: --transpose turned them."""
    check_class_numbers(data, source, log)
    note_image_looks(data.images, source, transposed, log)


def check_class_numbers(data: LabeledImages, source: DataSource, log: Callable[[str], None] = print) -> None:
    """Before training on a CSV or IDX pair whose labels go past 9: a DataError when most of the
    numbers 0..top are no label at all. A damaged labels file (one byte of MNIST's turned to 200)
    would otherwise train 201 classes, 190 of them empty; EMNIST letters (1..26) lacks only 0.
    Logs a note on classes no image trains: labels numbered from 1, names beyond the labels."""
    top = int(data.labels.max(initial=0))
    counts = np.bincount(data.labels, minlength=len(data.classes))
    used = np.count_nonzero(counts)
    if used == 1 and len(data.labels) > 1:
        hint = (": is its label another column than the first (a digit's first pixel is 0)? A header names the "
                "columns (pixel0,...,pixel783,label)" if source.csv and top == 0 and not has_header(source.csv)
                else "")
        raise DataError(f"{source.labels or source.csv or source.describe()}: every image is labelled "
                        f"{data.classes[top] if source.dataset else top}, so there is nothing to tell apart and "
                        f"nothing to learn{hint}; give data of two classes or more")
    if source.dataset is None and top >= 10 and 2 * used <= top:
        raise DataError(f"{source.labels or source.csv}: labels go up to {top}, but only {used} of the numbers "
                        f"0..{top} are labels; the file is damaged, or its labels are not class numbers 0, 1, 2...: "
                        "renumber them")
    empty = [data.classes[k] for k in np.flatnonzero(counts == 0)]
    if source.dataset is not None or not empty:  # a named dataset's gaps are its own (EMNIST letters: no 0)
        return
    if empty == [data.classes[0]] and top >= 2:
        log(f"Note: no image is labelled 0, and each of 1..{top} is: if the classes are numbered from 1, subtract 1 "
            f"from every label (else class {data.classes[0]} is an output no image trains)")
        return
    shown = ", ".join(empty[:5]) + ("..." if len(empty) > 5 else "")
    held = [str(k) for k in np.flatnonzero(counts)]
    renumber = (f"; if its classes are only the {len(held)} it holds ({', '.join(held[:5])}{'...' * (len(held) > 5)}), "
                f"number them 0..{len(held) - 1} in the file and name them with --class-names"
                if list(data.classes) == [str(k) for k in range(len(counts))] else "")  # numbers: no names given
    log(f"Note: no training image is of class{'es' * (len(empty) > 1)} {shown}: the network has an output for "
        f"{'each' if len(empty) > 1 else 'it'} that nothing trains (check that the file holds every class, and "
        f"--class-names if you gave it more names than there are labels){renumber}")


def note_image_looks(images: np.ndarray, source: DataSource, transposed: bool,
                     log: Callable[[str], None] = print) -> None:
    """Notes on a CSV's or IDX file's images that would mislead without a word (``data.looks``):
    dark digits on a light page, images stored column by column (or upright already, when
    ``transposed``: turned by --transpose). A named dataset is as it should be."""
    if source.dataset is not None:
        return
    name = source.csv or source.images
    for note in (faint(images, name), dark_on_light(images, name), wider_than_tall(images, name, transposed)):
        if note:
            log(note)


def load_set(config: TrainConfig, which: str, source: DataSource | None = None, *, progress: bool = True,
             download: bool = True, model: Sequential | None = None, metadata: dict | None = None):
    """(images uint8 (N, H, W), labels (N,), classes, description) of one set of a run's data.

    ``train`` and ``dev`` replay the run's shuffled split (same seed, same dev size); ``test``
    is a named dataset's test split; ``all`` is every row of the source's training data.
    ``download=False``: a named dataset that is not on this machine is a DataError. The files
    the config recorded must still be there with their SHA-256; with ``model`` (and its
    ``metadata``), images whose (H, W) differ from the model's, or a label that is not one of its
    classes, are a DataError naming the file, and the classes are the model's.
    """
    if which not in SETS:
        raise ConfigError(f"unknown set {which!r}; choose one of {', '.join(SETS)}")
    if source is None:
        check_data_files(config)
    source = source or data_source(config)
    theirs = tuple(class_names(model, metadata or {})) if model is not None else None  # the model's names
    if theirs is not None and config.class_names:  # given to evaluate, predict...: it cannot rename them
        if named_classes(config.class_names) != theirs:
            shown = ", ".join(theirs[:4]) + (", ..." if len(theirs) > 4 else "")
            raise ConfigError(f"--class-names gives other names than the model's ({shown}): a model keeps the "
                              "names it was trained with; leave --class-names out")
    if which == "test" and source.dataset is None:  # the command's choices, in its words (the review: the data
        dev = "--set dev (its dev split) or " if config.dev_size else ""  # layer named them, dev of a run of none)
        raise DataError(f"{source.describe()} has no separate test split; choose {dev}--set all (every image), or a "
                        "named dataset (--dataset mnist), which has a test split")
    data = load_data(config, source, "test" if which == "test" else "train", download=download, progress=progress)
    images, labels, classes = data.images, data.labels, data.classes
    if model is not None:
        name = source.csv or source.images or source.describe()
        check_image_shape(images, name, model, metadata or {})
        top = int(labels.max(initial=0))
        if top >= model.num_classes:
            raise DataError(f"{source.labels or name}: label {top} is not one of the model's {model.num_classes} "
                            f"classes (0..{model.num_classes - 1}); give data of the classes it was trained on")
        classes = theirs  # a file that lacks a class still has the model's
    if which in ("train", "dev"):
        train_images, train_labels, dev_images, dev_labels = run_split(
            config, images, labels, config_generators(config)["split"])
        images, labels = (train_images, train_labels) if which == "train" else (dev_images, dev_labels)
    if not len(images):  # an accuracy of 0/0 printed 'nan', and --json wrote NaN, which JSON has not
        # other files are split as the run was, so their dev set is empty too: --set all reads them whole
        held = ": the run held out no dev images (--dev-size 0)" if which == "dev" and not config.dev_size else ""
        other = "--set train (its train split)" if which != "train" else "another set"
        raise DataError(f"the {which} set of {source.describe()} is empty{held}; choose {other}, or other images "
                        "with --set all (--csv FILE, or --images/--labels: every image of them)")
    return images, labels, classes, f"{which} set of {source.describe()}"
