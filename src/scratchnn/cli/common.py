"""Options and helpers shared by several subcommands."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..data import scale_pixels
from ..data.tta import MAX_TTA, check_tta, mean_of_views
from ..ensemble import check_finished, load_ensemble, turned_differently
from ..errors import ConfigError
from ..io import load, read_metadata, resolve_model_path
from ..training.config import TrainConfig
from ..training.options import option_of
from ..training.run_data import (SETS, data_source, load_set, note_image_looks, recorded_config, set_key,
                                 with_data)
from .config_flags import add_option_arguments, given_options


def add_data_arguments(parser: argparse.ArgumentParser, purpose: str) -> None:
    add_option_arguments(parser, ("data",), {
        "data": f"where the images come from ({purpose}); give a dataset, a CSV, or an IDX pair"})


def refuse_data_flags_for_photos(args: argparse.Namespace, photos: str) -> None:
    """A ConfigError when the user gave data flags (--csv, --dataset...) beside ``photos``, which
    read no data set: the flags would be ignored without a word."""
    flags = [option_of(TrainConfig, name).flag for name in given_options(args, ("data",))]
    if flags:
        one = len(flags) == 1
        raise ConfigError(f"{', '.join(flags)} go{'es' * one} with --index (an image of a data set); {photos} "
                          f"need{'s' * photos.startswith('--')} no data flags: leave {'it' if one else 'them'} out")


def apply_data_options(config: TrainConfig, args: argparse.Namespace) -> TrainConfig:
    """Write the data options the user gave into ``config``; a new source replaces the old one."""
    return with_data(config, given_options(args, ("data",)))


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="a model file or a run folder (runs/<name>/)")


def add_models_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", metavar="MODEL", nargs="+",
                        help="a model file or a run folder (runs/<name>/); several, or a folder of member "
                             "runs (RUN/seed-0/, RUN/seed-1/...), make an ensemble that averages their probabilities")


def add_tta_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tta", type=int, default=1, metavar="N",
                        help=f"test-time augmentation: average the probabilities over each image and N-1 fixed "
                             f"small views of it, the kind the model trained on: shifts and turns for digits, "
                             f"mirrors and shifts for clothes (1..{MAX_TTA}; default 1: the image only)")


def add_textbook_argument(parser: argparse.ArgumentParser) -> None:
    """--textbook: predict on the layers as ``nn/`` writes them (``train --textbook`` trains on them)."""
    parser.add_argument("--textbook", action="store_true",
                        help="predict with the plain textbook code, without the speed machinery (same numbers, slower)")


CHUNK = 1000  # images scaled to floats and predicted at a time (3 MB for 28x28), between bar updates


def member_probas(ensemble, images: np.ndarray, tta: int = 1, what: str = "Predicting") -> list[np.ndarray]:
    """``ensemble.member_probas(scale_pixels(images), tta=tta)`` for images (N, H, W) of 0..255,
    a thousand at a time (a 300,000-row CSV is never all floats at once), with a progress bar on
    stderr (tqdm's: only on a terminal): TTA on an ensemble of large networks takes minutes."""
    return plain_and_tta_probas(ensemble, images, tta, what)[1]


def plain_and_tta_probas(ensemble, images: np.ndarray, tta: int = 1,
                         what: str = "Predicting") -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(each member's plain probabilities, each member's with TTA x``tta``), both (N, C), from one
    pass over the views (``Ensemble.member_view_probas``, a chunk at a time as ``member_probas``)."""
    plain, averaged = [], []
    with tqdm(total=len(images), desc=what, unit="image", disable=None, leave=False, dynamic_ncols=True) as bar:
        for start in range(0, max(len(images), 1), CHUNK):  # an empty set: one pass, for the shapes
            chunk = scale_pixels(images[start:start + CHUNK], ensemble.input_shape)
            views = ensemble.member_view_probas(chunk, tta=tta)  # each (tta, chunk, C): only a chunk's views kept
            plain.append([p[0] for p in views])
            averaged.append([mean_of_views(p) for p in views])
            bar.update(len(chunk))
    return [np.concatenate(parts) for parts in zip(*plain)], [np.concatenate(parts) for parts in zip(*averaged)]


def add_set_argument(parser: argparse.ArgumentParser, default: str | None = "dev", shown: str = "dev") -> None:
    """``--set``; ``default=None`` lets a command see whether it was given (``shown`` is what it means then)."""
    parser.add_argument("--set", choices=SETS, default=default,
                        help=f"which images: the run's train or dev split, the dataset's test split, "
                             f"or all rows of the data (default: {default or shown})")


def load_model_and_config(args: argparse.Namespace):
    """(model, metadata, config) for MODEL; data flags override the data source saved with it.

    Relative data paths (older runs) are looked for from here, then from the model's folder.
    """
    if Path(args.model).is_dir():
        check_finished(Path(args.model))
    path = resolve_model_path(args.model)
    model, metadata = load(path), read_metadata(path)
    return model, metadata, config_with_data_options(metadata, path, args)


def config_with_data_options(metadata: dict, path: Path, args: argparse.Namespace) -> TrainConfig:
    """The training config saved in a model file, its data paths located, the data flags applied."""
    config = recorded_config(metadata.get("config", {}), path, log=lambda line: print(line, file=sys.stderr))
    return apply_data_options(config, args)


def require_known_data(metadata: dict, path, args: argparse.Namespace) -> None:
    """Before a set is loaded: a model that records no training config (saved from Python) needs
    the data named, or its default would be MNIST, downloaded unasked."""
    if not metadata.get("config") and not given_options(args, ("data",)):
        raise ConfigError(f"{path} records no training data (a model saved from Python, not by 'scratchnn train'); "
                          "name the data to use: --csv FILE, --images FILE --labels FILE, or --dataset NAME")


def load_model_set(args: argparse.Namespace, model, metadata: dict, config: TrainConfig):
    """(images, labels, classes, description) of ``args.set``, refused unless they fit the model."""
    require_known_data(metadata, args.model, args)
    return load_set(config, args.set, model=model, metadata=metadata)


def load_models(args: argparse.Namespace):
    """The ensemble of ``args.models`` (one model is an ensemble of one), ``args.tta`` checked first;
    on the textbook layers with ``--textbook``."""
    check_tta(args.tta)  # before the models load: a typo costs nothing
    return load_ensemble(args.models, fast=not args.textbook)


def load_ensemble_and_set(args: argparse.Namespace):
    """(ensemble of ``args.models``, images, labels, classes, description) of ``args.set``.

    The set is the first member's (its data, its split); every other member must have the same
    images there, or one member's dev images could be another's training images.
    """
    ensemble = load_models(args)
    if why := turned_differently(ensemble.members):
        raise ConfigError(f"ensemble member {why}; evaluate members trained alike")
    first, *others = ensemble.members
    require_known_data(first.metadata, first.path, args)
    config = config_with_data_options(first.metadata, first.path, args)
    images, labels, classes, description = load_set(config, args.set, model=first.model, metadata=first.metadata)
    if given_options(args, ("data",)):  # other data than the model's: say if it looks unlike what models read
        note_image_looks(images, data_source(config), config.transpose, log=lambda line: print(line, file=sys.stderr))
    for member in others:
        own = config_with_data_options(member.metadata, member.path, args)
        if set_key(own, args.set) == set_key(config, args.set):
            continue
        theirs, their_labels, _, _ = load_set(own, args.set, model=member.model, metadata=member.metadata)
        if not (np.array_equal(theirs, images) and np.array_equal(their_labels, labels)):
            raise ConfigError(f"ensemble member {member.name} has another {args.set} set than {first.name} (other "
                              "data, seed or dev size), so one member's training images would be scored; evaluate on "
                              "data none of them trained on (--csv FILE --set all, or --set test)")
    return ensemble, images, labels, classes, description


# The extras the next steps may need: the module that shows one is installed, and its name
EXTRAS = {"web": "fastapi", "plots": "matplotlib", "tune": "optuna"}


def next_steps_lines(steps: list[tuple[str, str, str | None]]) -> str:
    """'Next:' and one line per (command, what it does, the extra it needs or None), the commands
    aligned; a step whose extra is not installed says how to install it."""
    import importlib.util

    def what(text: str, extra: str | None) -> str:
        if extra is None or importlib.util.find_spec(EXTRAS[extra]) is not None:
            return text
        return f"{text} (first: pip install 'scratchnn[{extra}]')"

    width = max(len(command) for command, _, _ in steps)
    return "\n".join(["Next:", *(f"  {command:<{width}}   {what(text, extra)}" for command, text, extra in steps)])


def require_plots(*outputs) -> None:
    """Raise the plots extra's MissingExtra now, before a command prints what it found, and a
    ConfigError for any of the figure files ``outputs`` (None: not asked for) of a kind
    matplotlib cannot write (the plots audit: 'e.xyz' failed after the whole walk was printed) or
    in a folder that does not exist (a typo must not make folders, as for --submission)."""
    from ..plots.common import figure_format

    for path in outputs:
        if path is not None:
            figure_format(path)
            if not Path(path).absolute().parent.exists():
                raise ConfigError(f"{path}: the folder {Path(path).parent} does not exist; create it first, or save "
                                  "the figure elsewhere")


def whole_number_type(low: int, why: str = "", high: int | None = None):
    """An argparse type: an integer from ``low`` (to ``high``; argparse names the flag in its error)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {low}, got {text[:40]!r}") from None
        if value < low or (high is not None and value > high):
            span = f">= {low}" if high is None else f"from {low} to {high:,}"
            raise argparse.ArgumentTypeError(f"must be {span}{f' ({why})' if why else ''}, got {text[:40]}")
        return value
    return parse
