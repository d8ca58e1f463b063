"""Training a run end to end: data -> split -> model -> fit -> run folder with model and metrics.

A run folder (``runs/<time>-<preset>/``) holds ``model.safetensors`` (weights + architecture + config + final
metrics), ``config.toml`` (the resolved config: ``--config`` it to repeat the run), ``metrics.csv`` (one row per
evaluated epoch) and ``checkpoint.safetensors`` (everything needed to ``--resume`` the run exactly where it stopped).

The folder is made once the data has loaded and the network is known to fit in memory, so a failed start leaves
nothing behind. ``--resume`` completes an interrupted run as it began (a config.toml edited since is refused): from
the start without a checkpoint, from the last one mid-training, without training when it holds the end.
"""
from __future__ import annotations

import csv
import dataclasses
import io as _io
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from .. import __version__
from ..data import DataSource, scale_pixels
from ..data.augment import Augmentation
from ..doctor.faults import FAULTS, Setup, apply_faults
from ..doctor.diagnosis import Doctor
from ..doctor.findings import Finding
from ..doctor.show import finding_lines
from ..doctor.signals import HEALTH_FILE, HealthText, write_health_csv
from ..errors import ConfigError, DataError, DoctorStopped, RunInterrupted, TrainingDiverged
from ..files import atomic_write_bytes
from ..io import MODEL_FILE, class_names, load, read_metadata, save
from ..model import Sequential
from ..nn.losses import SoftmaxCrossEntropy
from .blas_threads import blas_threads, note_if_busy
from .checkpoint import (CHECKPOINT_FILE, Checkpoint, augmentation_to_continue, load_checkpoint, refuse_edits,
                         save_checkpoint)
from .config import CONFIG_FILE, TrainConfig
from .fit import EpochResult, check_batches, evaluate, fit
from .health import HealthRecorder
from .memory import check_training_memory
from .progress import TrainingProgress
from .run_data import (check_class_numbers, check_data_files, config_generators, data_source, load_data,
                       locate_data, record_data, run_split)
from .run_display import RunDisplay
from .run_health import (diagnose_history, doctor_settings, doctor_summary, earlier_health, health_summary,
                         still_learning)

RUNS_DIR = Path("runs")
REPORT_FILE = "report.html"
TEMP_FILE = re.compile(r"\..+\.tmp")  # what files.atomic_write_bytes writes before its rename


@dataclass(repr=False)  # RunDisplay: a few lines in a terminal, tables in a notebook
class RunResult(RunDisplay):
    model: Sequential
    history: list[EpochResult]
    run_dir: Path
    model_path: Path
    train_seconds: float
    metrics: dict
    findings: list[Finding] = dataclasses.field(default_factory=list)
    classes: tuple[str, ...] = ()  # the class names, as the model file keeps them


def train_run(config: TrainConfig, out_dir: Path | None = None,
              log: Callable[[str], None] = print, progress: bool = True,
              on_evaluation: Callable[[EpochResult], None] | None = None, memory_cap=None, image_shape=None,
              **watch) -> RunResult:
    """Train as ``config`` says and save everything in ``out_dir`` (default: a new run folder).

    The folder and its ``config.toml`` (data as absolute paths with their SHA-256) are written
    once the data has loaded and the run fits in memory (``memory_cap``: (bytes, the flag that set
    them), a server's limit) and its images have the ``image_shape`` asked for ((H, W), why: a page
    that draws 28x28), before the first epoch, so a killed run can be resumed.
    ``on_evaluation(result)`` runs after each evaluated epoch is logged and checkpointed (a
    sweep's pruner watches the dev accuracy there; an exception it raises ends the run).
    ``watch`` takes the live hooks of a page that shows training: ``on_batch_end(epoch, batch,
    batches, loss, accuracy)`` after every batch, ``on_finding(finding)`` for each new doctor's
    finding, ``stop_requested()``, polled after every batch (True: stop there, keep the
    weights as they are, save the model as for a finished run), and ``on_setup(model, x_dev,
    y_dev)`` once before the first epoch (the live model, trained in place, and its dev set).
    """
    config.validate()
    if out_dir and ((Path(out_dir) / CHECKPOINT_FILE).exists() or (Path(out_dir) / MODEL_FILE).exists()):
        raise ConfigError(f"{out_dir} already holds a run; continue it with --resume {out_dir}, "
                          "or choose another --out")
    source = data_source(config)
    data = load_data(config, source, progress=progress)
    check_class_numbers(data, source, log)
    if image_shape is not None and data.images.shape[1:] != tuple(image_shape[0]):
        (h, w), (want_h, want_w) = data.images.shape[1:], image_shape[0]
        raise ConfigError(f"{source.describe()} holds {h}x{w} images, but {image_shape[1]}; give data of "
                          f"{want_h}x{want_w} images")
    config = record_data(config).with_augmentation_recorded()
    check_training_memory(config, data.images.shape, len(data.classes), log=log, cap=memory_cap)  # no folder
    run_dir = Path(out_dir) if out_dir else new_run_dir(config.preset)
    run_dir.mkdir(parents=True, exist_ok=True)
    config.save(run_dir / CONFIG_FILE)
    try:
        with blas_threads(config.threads):
            return _train(config, run_dir, None, log, progress, data_source(config), data, on_evaluation, **watch)
    except KeyboardInterrupt:
        raise RunInterrupted(run_dir) from None


def resume_run(run_dir: Path, log: Callable[[str], None] = print, progress: bool = True,
               report: bool = False) -> RunResult:
    """Complete the run in ``run_dir`` with its own config, wherever it was interrupted.

    From its checkpoint, weights, optimizer state, schedule, early stopping and every random
    generator come back as they were after the checkpointed epoch, so the run ends exactly as if
    never stopped; a checkpoint of finished training gives the model without training again;
    no checkpoint yet means starting over (same seed: same run). A finished run is refused,
    unless ``report`` is asked for and report.html is missing: then its RunResult is returned
    for the caller to write it. Stale temporary files of interrupted writes are removed first.
    """
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).is_file():
        raise ConfigError(f"{run_dir}: not a run folder (no config.toml); give the folder a run was saved in")
    config = locate_data(TrainConfig.load(run_dir / CONFIG_FILE), run_dir)
    swept = sweep_temp_files(run_dir)
    if swept:
        log(f"Removed {len(swept)} temporary file(s) left by an interrupted write: {', '.join(swept)}")
    checkpoint = load_checkpoint(run_dir / CHECKPOINT_FILE) if (run_dir / CHECKPOINT_FILE).exists() else None
    refuse_edits(config, checkpoint, run_dir / CONFIG_FILE)
    has_model = (run_dir / MODEL_FILE).is_file()
    if has_model and (checkpoint is None or checkpoint.metadata.get("finished")):
        if report and not (run_dir / REPORT_FILE).exists():
            log(f"{run_dir}: the run had finished; writing its missing report")
            return _finished_run(run_dir, checkpoint)
        done = f"{checkpoint.epoch} of {config.epochs} epochs" if checkpoint else "its model is saved"
        raise ConfigError(f"{run_dir}: the run already finished ({done}); start a new one with --config "
                          + str(run_dir / CONFIG_FILE))
    check_data_files(config, resuming=True)
    source = data_source(config)
    data = load_data(config, source, progress=progress)
    if checkpoint is None or not _training_done(checkpoint, config):  # this machine may have less memory
        check_training_memory(config, data.images.shape, len(data.classes), log=log, resume_of=run_dir)
    if checkpoint is None:
        log(f"Starting {run_dir} over: it stopped before its first checkpoint")
    elif _training_done(checkpoint, config):
        log(f"Finishing {run_dir}: training ended at epoch {checkpoint.epoch}; writing the model from the checkpoint")
    else:
        log(f"Resuming {run_dir} after epoch {checkpoint.epoch} of {config.epochs}")
    try:
        with blas_threads(config.threads):
            return _train(config, run_dir, checkpoint, log, progress, source, data)
    except KeyboardInterrupt:
        raise RunInterrupted(run_dir) from None


def _training_done(checkpoint: Checkpoint, config: TrainConfig) -> bool:
    """True when the checkpoint holds the end of training: the last epoch, or early stopping's stop."""
    stopping = checkpoint.metadata.get("early_stopping")
    bad = stopping.get("bad_evaluations") if isinstance(stopping, dict) else None
    stopped = bool(config.patience) and isinstance(bad, int) and bad >= config.patience
    return checkpoint.epoch >= config.epochs or bool(checkpoint.metadata.get("finished")) or stopped


def _finished_run(run_dir: Path, checkpoint: Checkpoint | None) -> RunResult:
    """The RunResult of a run whose model is saved (read back, nothing trained)."""
    model, metadata = load(run_dir), read_metadata(run_dir)
    metrics = metadata.get("metrics") if isinstance(metadata.get("metrics"), dict) else {}
    history = checkpoint.history if checkpoint else []
    return RunResult(model, history, run_dir, run_dir / MODEL_FILE, float(metrics.get("train_seconds", 0.0)),
                     metrics, classes=tuple(class_names(model, metadata)))


def sweep_temp_files(run_dir: Path) -> list[str]:
    """Remove the ``.<name>.*.tmp`` files interrupted atomic writes left in ``run_dir``; their names."""
    removed = []
    for path in sorted(Path(run_dir).iterdir()):
        if TEMP_FILE.fullmatch(path.name) and path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


def _train(config: TrainConfig, run_dir: Path, checkpoint: Checkpoint | None,
           log: Callable[[str], None], progress: bool, source: DataSource, data,
           on_evaluation: Callable[[EpochResult], None] | None = None,
           on_batch_end: Callable[[int, int, int, float, float], None] | None = None,
           on_finding: Callable[[Finding], None] | None = None, stop_requested: Callable[[], bool] | None = None,
           on_setup: Callable[[Sequential, np.ndarray, np.ndarray], None] | None = None) -> RunResult:
    gens = config_generators(config)
    train_images, y_train, dev_images, y_dev = run_split(config, data.images, data.labels, gens["split"])
    model = config.build_model(gens["init"], image_shape=data.images.shape[1:], num_classes=len(data.classes),
                               layer_rng=gens["layers"])
    x_train, x_dev = scale_pixels(train_images, model.input_shape), scale_pixels(dev_images, model.input_shape)
    del train_images, dev_images
    loss_fn = SoftmaxCrossEntropy(config.label_smoothing)
    built = model
    setup = apply_faults(config.fault, Setup(model, x_train, y_train, x_dev, y_dev, loss_fn, gens["init"]))
    model, x_train, y_train, x_dev, y_dev = setup.model, setup.x_train, setup.y_train, setup.x_dev, setup.y_dev
    check_batches(model, len(x_train), config.batch_size)  # before a checkpoint says the run has begun
    if on_setup is not None:
        on_setup(model, x_dev, y_dev)
    optimizer = config.build_optimizer()
    steps_per_epoch = 1 if not config.batch_size else -(-len(x_train) // config.batch_size)
    schedule = config.build_schedule(steps_per_epoch)
    stopping = config.build_early_stopping()
    history: list[EpochResult] = []
    if checkpoint is not None:
        checkpoint.restore(model=model, optimizer=optimizer, schedule=schedule, early_stopping=stopping,
                           generators=gens)
        history = list(checkpoint.history)
    start_epoch = checkpoint.epoch if checkpoint else 0
    bar = TrainingProgress(config.epochs, start_epoch, enabled=progress)
    log = _through(bar, log)
    log(f"Data: {source.describe()} ({len(x_train):,} train / {len(x_dev):,} dev): {data.describe()}")
    network = config.describe_network("; ") if model is built else "; the fault's own network"
    log(f"Model: {model.widths()} ({model.num_parameters:,} parameters{network}), {config.describe()}")
    augmentation, note = augmentation_to_continue(config.build_augmentation(), checkpoint)
    config = config.trained_with(augmentation)  # a config edited before --resume does not say otherwise
    for line in (note, augmentation and f"Augmentation: {augmentation.describe()}"):
        if line:
            log(line)
    if config.fault:
        log("Faults on purpose (the doctor is not told): "
            + "; ".join(f"{name}: {FAULTS[name].what}" for name in config.fault))
    note_if_busy(config.threads, log)
    health = None if config.doctor == "off" else HealthRecorder.for_data(
        x_train, earlier_health(run_dir, checkpoint, log))
    if health is not None and checkpoint is None:
        health.record_labels(y_train, model.num_classes)
        if augmentation is not None:
            health.record_readability(x_train, y_train, augmentation)
    doctor = Doctor(doctor_settings(config, run_dir), config.step_name)  # a fault run's steps count as any run's
    step_name, evaluations = config.step_name.capitalize(), 0

    def save_state(finished: bool = False) -> None:
        save_checkpoint(run_dir / CHECKPOINT_FILE, model=model, optimizer=optimizer, schedule=schedule,
                        early_stopping=stopping, generators=gens, history=history, augmentation=augmentation,
                        finished=finished, config=config.to_dict())  # what --resume holds an edited one to
        if health is not None:
            write_health_csv(run_dir / HEALTH_FILE, health.rows, health_text)

    metric_rows, health_text = [], HealthText()  # history as the doctor reads it; health.csv's text so far

    def examine(last: bool = False) -> list[Finding]:
        """Print the findings that are new since the last evaluation (once per rule)."""
        metric_rows.extend(dataclasses.asdict(r) for r in history[len(metric_rows):])
        new = doctor.update(metric_rows, health.rows, last) if health else []
        for finding in new:
            for line in finding_lines(finding, color=progress and log is print):
                log(line)
            if on_finding is not None:
                on_finding(finding)
        return new

    def batch_done(*progress_of_batch) -> None:
        bar.on_batch_end(*progress_of_batch)
        if on_batch_end is not None:
            on_batch_end(*progress_of_batch)

    def on_epoch_end(result: EpochResult) -> None:
        nonlocal evaluations
        history.append(result)
        log(f"{step_name} {result.epoch:>{len(str(config.epochs))}}/{config.epochs}  "
            f"loss {result.train_loss:.4f}  train accuracy {result.train_accuracy:.4f}  "
            + (f"dev loss {result.dev_loss:.4f}  dev accuracy {result.dev_accuracy:.4f}  " if len(x_dev) else "")
            + f"lr {result.lr:.3g}  {result.seconds:.2f} s")
        evaluations += 1
        new = examine(last=result.epoch >= config.epochs)
        stop = config.doctor == "strict" and next((f for f in new if f.severity == "error"), None)
        if config.checkpoint_every and evaluations % config.checkpoint_every == 0:
            save_state()
            write_metrics_csv(run_dir / "metrics.csv", history)
        if stop:
            write_health_csv(run_dir / HEALTH_FILE, health.rows, health_text)
            write_metrics_csv(run_dir / "metrics.csv", history)
            cause = stop.fix.removesuffix(": fix that first") if stop.fix.startswith("this follows from") else ""
            raise DoctorStopped(f"--doctor strict stopped the run at {step_name.lower()} {result.epoch}: [{stop.id}] "
                                f"{stop.message}{f'; {cause}' if cause else ''}; its health and metrics are in "
                                f"{run_dir} (scratchnn doctor {run_dir})")
        if on_evaluation is not None:
            on_evaluation(result)

    if config.checkpoint_every and checkpoint is None:
        save_state()  # epoch 0: even a run killed in its first epoch can be resumed
    start = time.perf_counter()
    done = checkpoint is not None and _training_done(checkpoint, config)
    if done and stopping is not None:
        stopping.restore(model)  # what fit does once training ends: the best weights come back
    try:
        if not done:
            fit(model, optimizer, x_train, y_train, epochs=config.epochs, batch_size=config.batch_size,
                x_dev=x_dev, y_dev=y_dev, rng=gens["order"], shuffle=setup.shuffle, schedule=schedule,
                early_stopping=stopping, eval_every=config.eval_every, start_epoch=start_epoch,
                on_epoch_end=on_epoch_end, augment=augmentation, augment_rng=gens["augment"],
                on_batch_end=batch_done, health=health, stop_requested=stop_requested, fast=setup.fast and not config.textbook,
                loss_fn=setup.loss_fn)
    except TrainingDiverged as error:
        bar.close()
        cause = ""
        if health is not None:
            write_health_csv(run_dir / HEALTH_FILE, health.rows, health_text)
            write_metrics_csv(run_dir / "metrics.csv", history)
            examine(last=True)
            first = next((f for f in doctor.findings if f.severity != "advice"), None)
            named = ("lr-too-high", "exploding") + (("unscaled-inputs",) if "the inputs reach" in str(error) else ())
            if first is not None and first.id not in named:  # the message does not name the cause yet
                cause = f" (or fix what the doctor found first: [{first.id}])"
        saved = "nothing was saved"
        if config.checkpoint_every:
            epoch = load_checkpoint(run_dir / CHECKPOINT_FILE).epoch
            saved = (f"the last good checkpoint (epoch {epoch}{', the initial weights' if epoch == 0 else ''}) "
                     f"is in {run_dir / CHECKPOINT_FILE}")
        raise TrainingDiverged(f"{error}{cause}; {saved}") from None
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    if history and not done:  # a run that ended early (patience, Stop, a sweep's stop) is examined at its end too
        examine(last=True)
    if stop_requested is not None and history and history[-1].epoch <= config.epochs and stop_requested():
        log(f"Stopped as asked during epoch {history[-1].epoch}; the model keeps the weights it had then")
    if stopping is not None and stopping.best_epoch and history[-1].epoch < config.epochs:
        log(f"Early stopping: no better {config.monitor} for {config.patience} evaluations; "
            f"keeping the weights of epoch {stopping.best_epoch}")
    metrics = _final_metrics(model, x_train, y_train, x_dev, y_dev, source, data.classes, progress, log)
    earlier = sum(r.seconds for r in checkpoint.history) if checkpoint else 0.0  # before a resume
    metrics.update(train_seconds=earlier + seconds, epochs=history[-1].epoch if history else 0)
    write_metrics_csv(run_dir / "metrics.csv", history)
    findings = doctor.findings
    if health is not None:
        write_health_csv(run_dir / HEALTH_FILE, health.rows, health_text)
        findings = diagnose_history(history, health.rows, doctor.settings)
    model_path = save(model, run_dir / MODEL_FILE, metadata={
        "config": config.to_dict(), "metrics": metrics, "classes": list(data.classes),
        "augmentation": Augmentation.record(augmentation),
        "health": health_summary(health.rows if health else [], findings),
        "image_shape": [int(n) for n in data.images.shape[1:]],
        "created": datetime.now().isoformat(timespec="seconds"), "scratchnn_version": __version__})
    if config.checkpoint_every:  # the finished state, so --resume knows there is nothing left to do
        save_state(finished=True)
    summary = f"train accuracy {metrics['train_accuracy']:.4f} (the finished model)" + (
        f", dev accuracy {metrics['dev_accuracy']:.4f}" if len(x_dev) else "")
    if "test_accuracy" in metrics:
        summary += f", test accuracy {metrics['test_accuracy']:.4f}"
    log(f"Done in {seconds:.2f} s: {summary}")
    log(f"Model saved to {model_path}")
    if health is not None:
        log(doctor_summary(findings, run_dir))
    if config.fault and health is not None:
        log(f"Note: this run broke the network on purpose (--fault {','.join(config.fault)}); the fixes are what "
            "to do where the same mistake was made by accident. To train normally, run it again without --fault")
    broken = any(f.severity == "error" for f in findings)  # more of a broken run is not what it needs
    if not broken and not (stop_requested is not None and stop_requested()):
        for line in filter(None, [still_learning(history, config.epochs, step_name.lower())]):
            log(line)
    return RunResult(model, history, run_dir, model_path, seconds, metrics, findings, tuple(data.classes))


def _final_metrics(model, x_train, y_train, x_dev, y_dev, source: DataSource, classes, progress, log) -> dict:
    """Loss and accuracy of the final weights on train, dev and (named datasets) test."""
    train_loss, train_accuracy = evaluate(model, x_train, y_train)
    dev_loss, dev_accuracy = evaluate(model, x_dev, y_dev)
    metrics = {"train_loss": train_loss, "train_accuracy": train_accuracy, "dev_loss": dev_loss,
               "dev_accuracy": dev_accuracy, "train_samples": len(x_train), "dev_samples": len(x_dev)}
    if source.dataset is not None:
        try:
            test = source.load("test", progress=progress)
        except DataError as error:
            log(f"No test accuracy: {error}")
        else:
            x_test = scale_pixels(test.images, model.input_shape)
            metrics["test_loss"], metrics["test_accuracy"] = evaluate(model, x_test, test.labels.astype(np.intp))
            metrics["test_samples"] = len(x_test)
    return metrics


def _through(bar: TrainingProgress, log: Callable[[str], None]) -> Callable[[str], None]:
    """Print log lines above the progress bar when logging goes to the terminal."""
    return bar.write if log is print else log


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
