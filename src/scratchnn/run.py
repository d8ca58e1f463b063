"""A training run end to end: data -> split -> model -> fit -> run folder with model and metrics.

A run folder (``runs/<time>-<preset>/``) holds ``model.safetensors`` (weights + architecture +
config + final metrics), ``config.toml`` (the resolved config: ``--config`` it to repeat the run)
and ``metrics.csv`` (one row per epoch).
"""
from __future__ import annotations

import csv
import dataclasses
import io as _io
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from . import __version__
from .config import TrainConfig
from .data import DataSource, scale_pixels, train_dev_split
from .errors import ConfigError
from .files import atomic_write_bytes
from .io import MODEL_FILE, save
from .model import Sequential
from .optim import SGD
from .train import EpochResult, evaluate, fit

RUNS_DIR = Path("runs")
SETS = ("train", "dev", "test", "all")


def seeded_generators(seed: int) -> dict[str, np.random.Generator]:
    """Independent generators for the split, the initial weights and the batch order, all from
    one seed: the dev split depends on the seed alone, so evaluate can rebuild it exactly."""
    split, init, order = np.random.SeedSequence(seed).spawn(3)
    return {"split": np.random.default_rng(split), "init": np.random.default_rng(init),
            "order": np.random.default_rng(order)}


def data_source(config: TrainConfig) -> DataSource:
    """The config's data source; the MNIST dataset when none is given."""
    source = DataSource(dataset=config.dataset or None, csv=config.csv or None, images=config.images or None,
                        labels=config.labels or None, data_dir=config.data_dir or None)
    if not (source.dataset or source.csv or source.images or source.labels):
        source = dataclasses.replace(source, dataset="mnist")
    source.validate()
    return source


def load_set(config: TrainConfig, which: str, source: DataSource | None = None, *, progress: bool = True):
    """(images uint8 (N, H, W), labels (N,), classes, description) of one set of a run's data.

    ``train`` and ``dev`` replay the run's shuffled split (same seed, same dev size); ``test``
    is a named dataset's test split; ``all`` is every row of the source's training data.
    """
    if which not in SETS:
        raise ConfigError(f"unknown set {which!r}; choose one of {', '.join(SETS)}")
    source = source or data_source(config)
    data = source.load("test" if which == "test" else "train", progress=progress)
    images, labels = data.images, data.labels
    if which in ("train", "dev"):
        train_images, train_labels, dev_images, dev_labels = train_dev_split(
            images, labels, config.dev_size, seeded_generators(config.seed)["split"])
        images, labels = (train_images, train_labels) if which == "train" else (dev_images, dev_labels)
    return images, labels, data.classes, f"{which} set of {source.describe()}"


@dataclass
class RunResult:
    model: Sequential
    history: list[EpochResult]
    run_dir: Path
    model_path: Path
    train_seconds: float


def train_run(config: TrainConfig, out_dir: Path | None = None,
              log: Callable[[str], None] = print, progress: bool = True) -> RunResult:
    """Train as ``config`` says and save everything in ``out_dir`` (default: a new run folder)."""
    config.validate()
    source = data_source(config)
    data = source.load("train", progress=progress)
    gens = seeded_generators(config.seed)
    train_images, y_train, dev_images, y_dev = train_dev_split(data.images, data.labels, config.dev_size,
                                                               gens["split"])
    model = config.build_model(gens["init"], input_shape=(data.images[0].size,), num_classes=len(data.classes))
    x_train, x_dev = scale_pixels(train_images, model.input_shape), scale_pixels(dev_images, model.input_shape)
    run_dir = Path(out_dir) if out_dir else new_run_dir(config.preset)
    log(f"Data: {source.describe()} ({len(x_train):,} train / {len(x_dev):,} dev)")
    log(f"Model: {model.widths()} ({model.num_parameters:,} parameters), {config.optimizer} lr {config.lr}, "
        f"{'full batch' if not config.batch_size else f'batch {config.batch_size}'}")

    step_name = "Iteration" if not config.batch_size else "Epoch"

    def report(result: EpochResult) -> None:
        log(f"{step_name} {result.epoch:>{len(str(config.epochs))}}/{config.epochs}  "
                f"loss {result.train_loss:.4f}  train accuracy {result.train_accuracy:.4f}  "
                f"dev accuracy {result.dev_accuracy:.4f}")

    start = time.perf_counter()
    history = fit(model, SGD(config.lr), x_train, y_train, epochs=config.epochs, batch_size=config.batch_size,
                  x_dev=x_dev, y_dev=y_dev, rng=gens["order"], eval_every=config.eval_every,
                  on_epoch_end=report)
    seconds = time.perf_counter() - start
    train_loss, train_accuracy = evaluate(model, x_train, y_train)  # after the last update
    metrics = {"train_loss": train_loss, "train_accuracy": train_accuracy,
               "dev_loss": history[-1].dev_loss, "dev_accuracy": history[-1].dev_accuracy,
               "train_seconds": seconds, "train_samples": len(x_train), "dev_samples": len(x_dev)}
    config.save(run_dir / "config.toml")
    write_metrics_csv(run_dir / "metrics.csv", history)
    model_path = save(model, run_dir / MODEL_FILE, metadata={
        "config": config.to_dict(), "metrics": metrics, "classes": list(data.classes),
        "created": datetime.now().isoformat(timespec="seconds"), "scratchnn_version": __version__})
    log(f"Done in {seconds:.2f} s: train accuracy {train_accuracy:.4f}, dev accuracy {metrics['dev_accuracy']:.4f}")
    log(f"Model saved to {model_path}")
    return RunResult(model, history, run_dir, model_path, seconds)


def write_metrics_csv(path: Path, history: list[EpochResult]) -> None:
    buffer = _io.StringIO()
    writer = csv.writer(buffer)
    fields = [f.name for f in dataclasses.fields(EpochResult)]
    writer.writerow(fields)
    writer.writerows([getattr(r, f) for f in fields] for r in history)
    atomic_write_bytes(path, buffer.getvalue().encode())


def new_run_dir(name: str, base: Path = RUNS_DIR) -> Path:
    """A fresh ``base/<YYYYmmdd-HHMMSS>-<name>`` folder (suffixed -2, -3... if taken)."""
    stem = f"{datetime.now():%Y%m%d-%H%M%S}-{name}"
    for i in range(1, 1000):
        path = base / (stem if i == 1 else f"{stem}-{i}")
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise ConfigError(f"could not create a new run folder under {base}; pass --out DIR")
