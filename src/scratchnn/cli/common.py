"""Options and helpers shared by several subcommands."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError
from ..io import MODEL_FILE, load, read_metadata, resolve_model_path
from ..training.checkpoint import CHECKPOINT_FILE
from ..training.config import TrainConfig
from ..training.run_data import FILES, SETS, load_set, locate_data
from .config_flags import add_option_arguments


def add_data_arguments(parser: argparse.ArgumentParser, purpose: str) -> None:
    add_option_arguments(parser, ("data",), {
        "data": f"where the images come from ({purpose}); give a dataset, a CSV, or an IDX pair"})


def apply_data_options(config: TrainConfig, args: argparse.Namespace) -> TrainConfig:
    """Write the data options the user gave into ``config``; a new source replaces the old one."""
    sources = ("dataset", "csv", "images", "labels")
    given = {name: getattr(args, name) for name in (*sources, "data_dir") if getattr(args, name) is not None}
    if given.keys() & set(sources):
        for name in (*sources, *(f"{name}_sha256" for name in FILES)):  # the saved digests go with the source
            setattr(config, name, "")
    for name, value in given.items():
        setattr(config, name, value)
    return config


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="a model file or a run folder (runs/<name>/)")


def add_set_argument(parser: argparse.ArgumentParser, default: str = "dev") -> None:
    parser.add_argument("--set", choices=SETS, default=default,
                        help=f"which images: the run's train or dev split, the dataset's test split, "
                             f"or all rows of the data (default: {default})")


def load_model_and_config(args: argparse.Namespace):
    """(model, metadata, config) for MODEL; data flags override the data source saved with it.

    Relative data paths (older runs) are looked for from here, then from the model's folder.
    """
    folder = Path(args.model)
    if folder.is_dir() and not (folder / MODEL_FILE).exists() and (folder / CHECKPOINT_FILE).exists():
        raise ConfigError(f"{folder}: the run has not finished (no {MODEL_FILE}); "
                          f"complete it with 'scratchnn train --resume {folder}'")
    path = resolve_model_path(args.model)
    model, metadata = load(path), read_metadata(path)
    config = TrainConfig.from_dict(metadata.get("config", {}), source=f"{path} metadata")
    return model, metadata, apply_data_options(locate_data(config, path.parent), args)


def load_model_set(args: argparse.Namespace, model, metadata: dict, config: TrainConfig):
    """(images, labels, classes, description) of ``args.set``, refused unless they fit the model."""
    return load_set(config, args.set, model=model, metadata=metadata)
