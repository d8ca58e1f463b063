"""Wiring the Train and Runs tabs into the app: where runs go, what they train on, the model swap.

New runs are written beside the served run folder (its parent, e.g. ``runs/``), or in ``runs/``
of the working directory when the served model is a bare file. They train on the data the
gallery trusts (``scratchnn serve``'s data flags, else the served run folder's config.toml;
never paths written inside a model file), so a server without such data does not train.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI

from ..data import DataSource
from ..io import ENSEMBLE_FILE, MODEL_FILE
from ..training.config import CONFIG_FILE
from ..training.run import RUNS_DIR
from .inference import ModelService
from .runs import RunFolders
from .train_api import training_router
from .training import TrainingManager, TrainingUnavailable, TrainLimits

NO_TRAIN = "training is switched off on this server (scratchnn serve --no-train)"
KEPT = ("not served: this server keeps the model it started with (scratchnn serve --keep-model); compare the run "
        "in the Runs tab")


@dataclass(frozen=True)
class TrainSetup:
    """``scratchnn serve``'s training flags: on or off, whether a run may replace the served model
    (``keep_model``: never), the limits, and (for tests) the runs folder."""

    enabled: bool = True
    keep_model: bool = False
    limits: TrainLimits = field(default_factory=TrainLimits)
    runs_dir: Path | None = None


def runs_folder(model_path: Path) -> Path:
    """The folder holding the served run folder, or the served ensemble's folder (not inside it:
    the combinations audit, the page's runs landed among its members), else ``runs/``."""
    model_path = Path(model_path)
    if model_path.name == MODEL_FILE and (model_path.parent / CONFIG_FILE).is_file():
        holder = model_path.parent.parent
        return holder.parent if (holder / ENSEMBLE_FILE).is_file() else holder
    return RUNS_DIR


def add_training(app: FastAPI, setup: TrainSetup, data: DataSource | None) -> None:
    """Add the training routes; ``app.state.training`` is the TrainingManager."""
    first: ModelService = app.state.service
    swap = threading.Lock()  # two swaps at once would each build a service; the last one wins anyway

    def use_model(path: Path) -> ModelService:
        service = ModelService(path, data, first.tta, first.fast)  # loaded and checked before anyone sees it
        with swap:
            app.state.service = service
        return service

    def current_run() -> str:  # as the Runs tab names it: an ensemble's member by its path from the runs folder
        served = app.state.service
        return folders.name_of(served.path.parent) if served.path.name == MODEL_FILE else served.name

    def keep_model(path: Path) -> ModelService:
        raise TrainingUnavailable(KEPT)

    runs_dir = setup.runs_dir or runs_folder(first.path)
    gallery = first.gallery
    problem = NO_TRAIN if not setup.enabled else "" if gallery.config is not None else (
        f"this server has no training data it may read: {gallery.problem}")
    manager = TrainingManager(runs_dir, gallery.config, setup.limits,
                              on_model=keep_model if setup.keep_model else use_model, unavailable=problem)
    app.state.training = manager
    folders = RunFolders(runs_dir)
    threading.Thread(target=folders.warm, name="scratchnn-runs-ahead", daemon=True).start()
    app.include_router(training_router(manager, folders, use_model, current_run,
                                       switchable=setup.enabled and not setup.keep_model))
