"""Ensembles: several trained models answer together by averaging their probabilities.

    p(x) = 1/M · Σ_m p_m(x)

Networks trained from different seeds make partly different mistakes, so their average is
usually right more often than any one of them. Members must read the same images (image shape)
and name the same classes in the same order, or the average means nothing; an MLP (784,) and a
CNN (1, 28, 28) read the same 28x28 images, each given them in its own shape.

A run folder normally holds one ``model.safetensors``; a folder without one whose sub-folders
each hold one (``train --seeds 0,1,2`` writes ``RUN/seed-0/``, ``RUN/seed-1/``...) is read as
all of those members, in the natural order of their names.

Predictions run on the fast path's layers (``scratchnn.fast.inference_net``: the same
probabilities up to float rounding, sooner); ``fast=False`` runs each member's textbook layers.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .data.tta import mean_of_views, views_for
from .doctor.signals import HEALTH_FILE, read_health_csv
from .errors import ConfigError, ScratchnnError, ShapeError, shell_word
from .files import lock_held
from .fast import inference_net
from .io import (ENSEMBLE_FILE, MODEL_FILE, class_names, folder_to_resume, load, read_metadata, resolve_model_path,
                 runs_inside)
from .model import Sequential
from .training.checkpoint import CHECKPOINT_FILE
from .training.config import CONFIG_FILE, TrainConfig
from .training.ensemble_run import member_dir, recorded_seeds
from .training.run import RUN_LOCK
from .training.run_data import model_image_shape

MAX_MEMBERS = 64  # a folder of thousands of sub-runs is a mistake, not an ensemble


@dataclass(frozen=True, eq=False)
class Member:
    """One model of an ensemble, with the name it is shown by, its file's metadata and path."""
    name: str
    model: Sequential
    metadata: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def classes(self) -> list[str]:
        return class_names(self.model, self.metadata)

    @property
    def image_shape(self) -> tuple[int, int] | None:
        shape = model_image_shape(self.model, self.metadata)
        return tuple(shape) if shape is not None else None

    @property
    def transposed(self) -> bool:
        """Whether it was trained on its files' images turned over their diagonal (``--transpose``,
        EMNIST's layout): images of such files must be turned the same way before it reads them."""
        config = self.metadata.get("config")
        return isinstance(config, dict) and config.get("transpose") is True

    @property
    def views(self) -> str:
        """The test-time views that suit how it was trained (``data.tta.views_for``): mirrors for a
        model trained on mirrored images, else shifts and turns."""
        config, augmentation = self.metadata.get("config"), self.metadata.get("augmentation")
        dataset = config.get("dataset") if isinstance(config, dict) else None
        return views_for(dataset if isinstance(dataset, str) else "", augmentation)


class Ensemble:
    """Models whose class probabilities are averaged: x (N, *input_shape) -> (N, C).

    ``fast`` (the default): each member predicts on its inference net (``scratchnn.fast``), built
    here once; False: on its textbook layers. ``members[k].model`` is the textbook model either way.

    >>> from scratchnn import Dense
    >>> a, b = Sequential([Dense(784, 10, rng=0)]), Sequential([Dense(784, 10, rng=1)])
    >>> Ensemble([a, b]).predict_proba(np.zeros((3, 784), np.float32)).shape
    (3, 10)
    >>> Ensemble([a, Sequential([Dense(784, 5, rng=2)])])
    Traceback (most recent call last):
    scratchnn.errors.ShapeError: ensemble member 'member 2' has 5 classes, 'member 1' has 10; members must name the same classes
    """

    def __init__(self, members: Iterable[Sequential | Member], fast: bool = True):
        if isinstance(members, (Sequential, str, os.PathLike)) or not isinstance(members, Iterable):
            raise ConfigError(f"Ensemble takes a list of models, e.g. Ensemble([a, b]), got {type(members).__name__}")
        members = list(members)
        if any(isinstance(m, (str, os.PathLike)) for m in members):
            raise ConfigError("Ensemble takes models; for files or run folders use load_ensemble(paths)")
        if not all(isinstance(m, (Sequential, Member)) for m in members):  # Ensemble([m, 5]): an AttributeError
            wrong = next(type(m).__name__ for m in members if not isinstance(m, (Sequential, Member)))
            raise ConfigError(f"Ensemble takes a list of models (Sequential), got one of type {wrong}")
        self.members = [m if isinstance(m, Member) else Member(f"member {i + 1}", m)
                        for i, m in enumerate(members)]
        if not self.members:
            raise ConfigError("an ensemble needs at least one model")
        check_members(self.members)
        first = self.members[0]
        self.input_shape, self.classes, self.image_shape = first.model.input_shape, first.classes, first.image_shape
        self.fast = fast
        # what predicts: each member's model on the fast layers (built once), or the model itself
        self.nets = [inference_net(m.model) if fast else m.model for m in self.members]

    @property
    def models(self) -> list[Sequential]:
        return [member.model for member in self.members]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def member_probas(self, x: np.ndarray, batch_size: int | None = None, *, tta: int = 1,
                      views: str | None = None) -> list[np.ndarray]:
        """Each member's probabilities (N, C) for x, in member order (``tta`` as in Sequential, with
        the views that suit the data each member was trained on, or ``views`` for all of them)."""
        return [mean_of_views(p) for p in self.member_view_probas(x, batch_size, tta=tta, views=views)]

    def member_view_probas(self, x: np.ndarray, batch_size: int | None = None, *, tta: int = 1,
                           views: str | None = None) -> list[np.ndarray]:
        """Each member's probabilities of each TTA view apart, (tta, N, C): row 0 is the plain
        prediction, the mean over rows the TTA one (so both cost one pass; Sequential.view_probas).
        ``views`` ("digits", "clothes") overrides each member's own (an ensemble of models built
        in Python has no training record to choose by)."""
        return [net.view_probas(_as_input_of(net, x), batch_size, tta=tta, image_shape=self.image_shape,
                                views=views or m.views)
                for m, net in zip(self.members, self.nets)]

    def predict_proba(self, x: np.ndarray, batch_size: int | None = None, *, tta: int = 1,
                      views: str | None = None) -> np.ndarray:
        """The members' mean probabilities (N, C) for x (N, *input_shape)."""
        return average(self.member_probas(x, batch_size, tta=tta, views=views))

    def predict(self, x: np.ndarray, batch_size: int | None = None, *, tta: int = 1,
                views: str | None = None) -> np.ndarray:
        """Predicted class index (N,) of the averaged probabilities."""
        return self.predict_proba(x, batch_size, tta=tta, views=views).argmax(axis=1)

    def __len__(self) -> int:
        return len(self.members)

    def __repr__(self) -> str:
        return f"Ensemble([{', '.join(member.name for member in self.members)}])"


def average(probas: Sequence[np.ndarray]) -> np.ndarray:
    """The mean of M arrays (N, C), summed in float64, returned in the first one's dtype."""
    total = np.zeros(probas[0].shape, np.float64)
    for proba in probas:
        total += proba
    return (total / len(probas)).astype(probas[0].dtype)


def _as_input_of(model, x: np.ndarray) -> np.ndarray:
    """x (N, ...) in the member's own input shape, where it holds the same numbers per sample (an
    MLP's (784,) rows of a CNN's (1, 28, 28) images, row by row); else as given, for it to refuse."""
    x = np.asarray(x)
    if x.ndim > 1 and x.shape[1:] != model.input_shape and x[0].size == np.prod(model.input_shape):
        return x.reshape(len(x), *model.input_shape)
    return x


def turned_differently(members: Sequence[Member]) -> str:
    """'A was trained with --transpose ..., B without: ...' when members read a file's images turned
    differently (each must be fed its own way, which one array cannot be), else ''."""
    first = members[0]
    other = next((member for member in members if member.transposed != first.transposed), None)
    if other is None:
        return ""
    turned, upright = (first, other) if first.transposed else (other, first)
    return (f"{turned.name} was trained with --transpose (its files' images turned over their diagonal), "
            f"{upright.name} without: they read the same files differently")


def check_members(members: Sequence[Member]) -> None:
    """A one-line error naming the first member whose images or classes differ from the first's."""
    first = members[0]
    for member in members[1:]:
        what = f"ensemble member {member.name!r}"
        same_images = first.image_shape is not None and member.image_shape == first.image_shape and \
            np.prod(member.model.input_shape) == np.prod(first.model.input_shape)
        if member.model.input_shape != first.model.input_shape and not same_images:
            raise ShapeError(f"{what} takes input {member.model.input_shape}, {first.name!r} takes "
                             f"{first.model.input_shape}; members must read the same inputs")
        if member.image_shape != first.image_shape:
            raise ShapeError(f"{what} reads {_shape(member.image_shape)} images, {first.name!r} reads "
                             f"{_shape(first.image_shape)}; members must read the same images")
        if len(member.classes) != len(first.classes):
            raise ShapeError(f"{what} has {len(member.classes)} classes, {first.name!r} has {len(first.classes)}; "
                             "members must name the same classes")
        if member.classes != first.classes:
            k = next(i for i, (a, b) in enumerate(zip(member.classes, first.classes)) if a != b)
            raise ConfigError(f"{what} calls class {k} {member.classes[k][:40]!r}, {first.name!r} calls it "
                              f"{first.classes[k][:40]!r}; members must name the same classes in the same order")


def _shape(shape) -> str:
    return "x".join(map(str, shape)) if shape else "unknown-size"


def model_files(path) -> list[Path]:
    """The model files behind one MODEL argument: a file, a run folder, or a folder of member runs.

    A run that has a checkpoint but no model yet is refused with the command that finishes it.
    """
    path = Path(path)
    if not path.is_dir():
        return [resolve_model_path(path)]
    if (path / MODEL_FILE).is_file():
        return [path / MODEL_FILE]
    refuse_sweep_folder(path)
    seeds = recorded_seeds(path)
    for seed in seeds or []:
        run = member_dir(path, seed)
        if not (run / MODEL_FILE).exists() and _stopped_by_doctor(run):
            raise ConfigError(f"{path}: --doctor strict stopped the ensemble's member {run.name}, and would again on "
                              f"--resume: 'scratchnn doctor {shell_word(run)}' says what to change, then train anew")
    check_finished(path)
    missing = [seed for seed in seeds or [] if not member_dir(path, seed).is_dir()]
    if missing:  # train --seeds was interrupted before them: the ensemble is not all there
        raise ConfigError(f"{path}: the ensemble's member{'s' * (len(missing) > 1)} "
                          f"{', '.join(f'seed-{seed}' for seed in missing)} {'were' if len(missing) > 1 else 'was'} "
                          f"never trained; complete it with 'scratchnn train --resume {shell_word(path)}'")
    if seeds is not None:  # train --seeds' folder: its members, not whatever else was put beside them
        runs = [member_dir(path, seed) for seed in seeds]
    else:
        runs = sorted((sub for sub in path.iterdir() if sub.is_dir() and
                       ((sub / MODEL_FILE).is_file() or (sub / CHECKPOINT_FILE).is_file())), key=_natural)
    if not runs:
        resolve_model_path(path)  # raises: no model file here
    if len(runs) > MAX_MEMBERS:
        raise ConfigError(f"{path}: {len(runs)} member runs, more than the {MAX_MEMBERS} an ensemble may have")
    for run in runs:
        if seeds is not None and not (run / MODEL_FILE).exists() and not _diverged(run):
            raise ConfigError(f"{path}: the ensemble's member {run.name} has not finished (no {MODEL_FILE}); "
                              f"complete the ensemble with 'scratchnn train --resume {shell_word(path)}'")
        check_finished(run)
    return [run / MODEL_FILE for run in runs]


SWEEP_FILE = "sweep.json"  # what makes a sweep's folder (tune.study writes it): known here without the tuning extra
TRIALS_DIR = "trials"  # the folder of its trials' run folders (the page lists them)


def refuse_sweep_folder(folder: Path) -> None:
    """A ConfigError pointing into a sweep's folder, given where a run folder is wanted (the
    combinations audit: 'no such model file', with no word of its trials or best.toml)."""
    if (Path(folder) / SWEEP_FILE).is_file():
        raise ConfigError(f"{folder} is a sweep's folder, not a run: its trials are run folders in {folder}/trials/ "
                          f"(give one), best.toml their best settings (train --config it), and 'scratchnn report "
                          f"{shell_word(folder)}' compares them")


def check_finished(folder: Path) -> None:
    """A ConfigError when ``folder`` is a run without a model yet: in progress or stopped (a
    checkpoint), or stopped before its first checkpoint (only its config); an ensemble none of whose
    members has finished is resolve_model_path's ModelFileError."""
    if (folder / MODEL_FILE).exists():
        return
    if (folder / ENSEMBLE_FILE).is_file() and not runs_inside(folder):
        resolve_model_path(folder)  # an ensemble none of whose members finished: says how to finish it
    if (folder / CHECKPOINT_FILE).exists():
        if lock_held(folder, RUN_LOCK):  # the resume audit: told to resume a run that was training, and refused
            raise ConfigError(f"{folder}: the run is still training (no {MODEL_FILE} yet); wait for it to finish")
        if _diverged(folder):
            raise ConfigError(f"{folder}: the run diverged, so it has no {MODEL_FILE}; resuming would diverge "
                              f"again: 'scratchnn doctor {shell_word(folder)}' says what to change, then train anew")
        raise ConfigError(f"{folder}: the run has not finished (no {MODEL_FILE}); "
                          f"complete it with 'scratchnn train --resume {shell_word(folder_to_resume(folder))}'")
    if (folder / CONFIG_FILE).is_file():
        raise ConfigError(f"{folder}: the run stopped before it saved anything (only its {CONFIG_FILE}); "
                          f"start it again with 'scratchnn train --resume {shell_word(folder_to_resume(folder))}'")


def _stopped_by_doctor(folder: Path) -> bool:
    """Whether --doctor strict stopped the run in ``folder``: it trained with it, and its tables hold
    an error finding (as report words it; the combinations audit: an ensemble stopped so was told
    --resume, which stopped again)."""
    from .doctor import diagnose_run  # the error path only

    try:
        if TrainConfig.load(folder / CONFIG_FILE).doctor != "strict":
            return False
        return any(finding.severity == "error" for finding in diagnose_run(folder))
    except (ScratchnnError, OSError):  # no config or tables to tell: the plain advice stands
        return False


def _diverged(folder: Path) -> bool:
    """Whether the run's health.csv records the loss it diverged with (what fit writes on divergence)."""
    try:
        return any(row.signal == "diverged_loss" for row in read_health_csv(folder / HEALTH_FILE))
    except (ScratchnnError, OSError):  # no table, or a damaged one: the plain advice stands
        return False


def _natural(path: Path) -> list:
    """Sort key that puts seed-2 before seed-10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def member_name(file: Path) -> str:
    """How a member is shown: its run folder for ``model.safetensors``, else the file."""
    return str(file.parent) if file.name == MODEL_FILE else str(file)


def load_ensemble(paths: Iterable, fast: bool = True) -> Ensemble:
    """The ensemble of every model behind ``paths`` (files, run folders, folders of member runs;
    one path alone is one of those),
    predicting on the fast layers unless ``fast`` is False (see ``Ensemble``)."""
    if isinstance(paths, (str, os.PathLike)):  # one folder of member runs (train --seeds), or one model
        paths = [paths]
    paths = list(paths) if isinstance(paths, Iterable) else [paths]
    if not all(isinstance(path, (str, os.PathLike)) for path in paths):  # None, 5: a TypeError further in
        raise ConfigError("load_ensemble takes paths of model files or run folders (a str or a list of them)")
    files = [file for path in paths for file in model_files(path)]
    if len(files) > MAX_MEMBERS:
        raise ConfigError(f"{len(files)} models given, more than the {MAX_MEMBERS} an ensemble may have")
    seen = set()
    for file in files:
        if file.resolve() in seen:
            raise ConfigError(f"{file} is given twice; each member of an ensemble counts once")
        seen.add(file.resolve())
    return Ensemble([Member(member_name(file), load(file), read_metadata(file), file) for file in files], fast)


__all__ = ["Ensemble", "Member", "average", "check_members", "load_ensemble", "model_files"]
