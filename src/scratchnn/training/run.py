"""Training a run end to end: data -> split -> model -> fit -> run folder with model and metrics.

A run folder (``runs/<time>-<preset>/``) holds ``model.safetensors`` (weights + architecture + config + final
metrics), ``config.toml`` (the resolved config: ``--config`` it to repeat the run), ``metrics.csv`` (one row per
evaluated epoch) and ``checkpoint.safetensors`` (everything needed to ``--resume`` the run exactly where it stopped).

The folder is made once the data has loaded and the network is known to fit in memory, so a failed start leaves
nothing behind. ``--resume`` completes an interrupted run as it began (a config.toml edited since is refused): from
the start without a checkpoint, from the last one mid-training, without training when it holds the end. One
process at a time trains in a folder (``run.lock``); a file the run cannot write names itself and the resume.
"""
from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from ..doctor.signals import HEALTH_FILE, read_metrics_csv
from ..data.sources import locate
from ..data.split import check_dev_size
from ..errors import (ConfigError, DataError, ModelFileError, OutputClosed, RunInterrupted, RunNotSaved, ScratchnnError,
                      names_in_message, shell_word)
from ..files import folder_lock
from ..io import ENSEMBLE_FILE, MODEL_FILE, class_names, load, read_metadata
from .architecture import network_shapes
from .batch_norm_batches import check_batch_norm_batches
from .blas_threads import blas_threads, check_threads_fit
from .checkpoint import (CHECKPOINT_FILE, Checkpoint, check_evaluations, load_checkpoint, refuse_edits,
                         rounding_edits, training_done)
from .config import CONFIG_FILE, TrainConfig
from .fit import EpochResult
from .memory import check_training_memory
from .run_data import (check_data_files, check_training_data, data_source, load_data, locate_data, model_image_shape,
                       record_data)
from .session import METRICS_FILE, RunResult, TrainingSession

RUNS_DIR = Path("runs")
REPORT_FILE = "report.html"
# report.html's figures, each <name>.png beside it (insight.report draws them)
REPORT_FIGURES = ("training_curves", "confusion_matrix", "per_class_accuracy", "mistakes", "predictions",
                  "augmentation", "first_layer", "health_gradients", "health_units")
TEMP_FILE = re.compile(r"\..+\.tmp")  # what files.atomic_write_bytes writes before its rename
STALE_TEMP = 600.0  # seconds: a write takes seconds at most, so a temporary file this old was left by a kill
RUN_LOCK = "run.lock"  # the pid and host of the process training in the folder (folder_lock)


def train_run(config: TrainConfig, out_dir: Path | None = None,
              log: Callable[[str], None] = print, progress: bool = True,
              on_evaluation: Callable[[EpochResult], None] | None = None, memory_cap=None, image_shape=None,
              **watch) -> RunResult:
    """Train as ``config`` says and save everything in ``out_dir`` (default: a new run folder).

    The folder and its ``config.toml`` (data as absolute paths with their SHA-256) are written
    once the data has loaded and the run fits in memory (``memory_cap``: (bytes, the flag that set
    them), a server's limit) and its images have the ``image_shape`` asked for ((H, W), why: a page
    that draws 28x28), before the first epoch, so a killed run can be resumed. The folder is held
    (``run.lock``, files.py) while the run trains: a second process is refused, not mixed in.
    ``on_evaluation(result)`` runs after each evaluated epoch is logged and checkpointed (a
    sweep's pruner watches the dev accuracy there; an exception it raises ends the run).
    ``watch`` takes the live hooks of a page that shows training: ``on_batch_end(epoch, batch,
    batches, loss, accuracy)`` after every batch, ``on_finding(finding)`` for each new doctor's
    finding, ``stop_requested()``, polled after every batch (True: stop there, keep the
    weights as they are, save the model as for a finished run), and ``on_setup(model, x_dev,
    y_dev, classes)`` once before the first epoch (the live model, trained in place, its dev set
    and the class names).
    """
    config.validate()
    check_evaluations(config)  # the Python API's way in (a CLI config was checked when resolved)
    check_threads_fit(config.threads)
    if not out_dir:
        check_run_name(config.preset)  # before the data is read
    if out_dir:
        _refuse_taken(Path(out_dir))
    source = data_source(config)
    data = load_data(config, source, progress=progress)
    if source.dataset:  # the test split the final metrics read, fetched now, not between the last epoch and
        try:            # the model's save (the download audit: a stalled mirror held a trained model unsaved)
            locate(source.dataset, "test", source.data_dir, progress=progress)
        except DataError:
            pass  # said where it is read: "No test accuracy: ..."
    if image_shape is not None and data.images.shape[1:] != tuple(image_shape[0]):
        (h, w), (want_h, want_w) = data.images.shape[1:], image_shape[0]
        raise ConfigError(f"{source.describe()} holds {h}x{w} images, but {image_shape[1]}; give data of "
                          f"{want_h}x{want_w} images")
    try:  # before the folder (a failed start leaves nothing) and the data's notes
        check_dev_size(config.dev_size, len(data.images))
    except ConfigError as error:
        raise ConfigError(f"--dev-size {config.dev_size}: {error}") from None
    check_training_data(data, source, config.transpose, log)
    if (augmentation := config.build_augmentation()) is not None:
        augmentation.check_fits(data.images.shape[1:3])  # not at the first batch, after the folder
        if note := augmentation.small_image_note(data.images.shape[1:3]):
            log(note)
    left = len(data.images) - config.dev_size
    if config.train_size > left:
        log(f"Note: --train-size {config.train_size:,} is more than the {left:,} images left beside the dev set; "
            "training on all of them")
    trained = min(config.train_size or left, left)
    if config.batch_size > trained:
        log(f"Note: --batch-size {config.batch_size:,} is more than the {trained:,} training images; each step takes "
            "them all (a full batch)")
    input_shape, specs = config.layer_specs(data.images.shape[1:3], len(data.classes))  # a batch of 1 for batch norm
    check_batch_norm_batches([kind for kind, _ in specs], [input_shape, *network_shapes(input_shape, specs)[1]],
                             trained, config.batch_size)
    config = record_data(config).with_augmentation_recorded()
    config.to_toml()  # a data path config.toml cannot record is refused before the folder is made
    check_training_memory(config, data.images.shape, len(data.classes), log=log, cap=memory_cap)  # no folder
    run_dir = Path(out_dir) if out_dir else new_run_dir(config.preset)
    run_dir.mkdir(parents=True, exist_ok=True)
    with folder_lock(run_dir, RUN_LOCK, "a training run", unwritable="choose a folder you can write to with --out"):
        _refuse_taken(run_dir)  # again: another train with this --out may have begun while the data loaded
        config.save(run_dir / CONFIG_FILE)
        with _kept_when_stopped(run_dir), blas_threads(config.threads):
            session = TrainingSession(config, run_dir, None, log, progress, data_source(config), data,
                                      on_evaluation, **watch)
            del data  # training holds the images as float32 only
            return session.run()


def _refuse_taken(out_dir: Path) -> None:
    """A ConfigError when ``out_dir`` holds a run, or files a new run would write over."""
    if out_dir.is_symlink() and not out_dir.exists():  # else mkdir's "File exists" names no cause
        raise ConfigError(f"{out_dir} is a link to {out_dir.readlink()}, which does not exist; make that folder, "
                          "or choose another --out")
    if (out_dir / CHECKPOINT_FILE).exists() or (out_dir / MODEL_FILE).exists():
        if run_finished(out_dir):  # the advice audit: --resume of it trains nothing
            raise ConfigError(f"{out_dir} already holds a finished run; choose another --out (a new run of its "
                              "settings: "
                              f"scratchnn train --config {shell_word(out_dir / CONFIG_FILE)} --out NEW)")
        raise ConfigError(f"{out_dir} already holds a run; continue it with --resume {shell_word(out_dir)}, "
                          "or choose another --out")
    outputs = (CONFIG_FILE, METRICS_FILE, HEALTH_FILE, REPORT_FILE, *(f"{name}.png" for name in REPORT_FIGURES))
    taken = [name for name in (*outputs, ENSEMBLE_FILE) if (out_dir / name).exists()]
    if taken:  # a run that saved nothing yet, or someone's own files: never written over
        resume = f"continue the run it began with --resume {shell_word(out_dir)}, or " if taken == [CONFIG_FILE] else ""
        raise ConfigError(f"{out_dir} already holds {', '.join(taken)}, which a new run would write over; "
                          f"{resume}choose another --out")


@contextmanager
def _kept_when_stopped(run_dir: Path) -> Iterator[None]:
    """Ctrl+C, or a file the run could not write (a full disk), as an error that says what the
    run folder keeps and the command that goes on from there."""
    try:
        yield
    except KeyboardInterrupt:
        raise RunInterrupted(run_dir, (run_dir / CHECKPOINT_FILE).exists()) from None
    except BrokenPipeError:  # the output piped into `head`, which quit
        raise OutputClosed(run_dir, (run_dir / CHECKPOINT_FILE).exists()) from None
    except OSError as error:
        if error.filename is None:  # not a file of the run's
            raise
        raise RunNotSaved(error, run_dir, (run_dir / CHECKPOINT_FILE).exists()) from None


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
    if run_dir.is_file():
        raise ConfigError(f"{run_dir} is a file; give the run folder that holds it: --resume "
                          f"{shell_word(run_dir.parent)}")
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: not a run folder (there is no such folder); give the folder a run was saved in")
    with folder_lock(run_dir, RUN_LOCK, "a training run", unwritable="a resumed run writes its checkpoints in its "
                     "folder: copy the folder somewhere you can write to, and resume the copy"):
        return _resume(run_dir, log, progress, report)


def _resume(run_dir: Path, log: Callable[[str], None], progress: bool, report: bool) -> RunResult:
    if not (run_dir / CONFIG_FILE).is_file():
        _config_from_checkpoint(run_dir, log)
    config = locate_data(TrainConfig.load(run_dir / CONFIG_FILE), run_dir)
    swept = sweep_temp_files(run_dir)
    if swept:
        log(f"Removed {len(swept)} temporary file(s) left by an interrupted write: {', '.join(swept)}")
    checkpoint = load_checkpoint(run_dir / CHECKPOINT_FILE) if (run_dir / CHECKPOINT_FILE).exists() else None
    refuse_edits(config, checkpoint, run_dir / CONFIG_FILE)
    if note := rounding_edits(config, checkpoint):
        log(note)
    has_model = _model_intact(run_dir, log)
    if has_model and _marked_finished(checkpoint):
        if report and not (run_dir / REPORT_FILE).exists():
            log(f"{run_dir}: the run had finished; writing its missing report")
            return _finished_run(run_dir, checkpoint)
        done = f"{checkpoint.epoch} of {config.epochs} epochs" if checkpoint else "its model is saved"
        raise ConfigError(f"{run_dir}: the run already finished ({done}); start a new one with --config "
                          + str(run_dir / CONFIG_FILE))
    check_threads_fit(config.threads, f"set threads = 1 in {run_dir / CONFIG_FILE} (editing it is allowed), then "
                                      "resume")
    began = (checkpoint.metadata.get("config") or {}) if checkpoint else {}
    if began.get("eval_every") != config.eval_every:  # an edited --eval-every (MAY_CHANGE) is held to the cap
        check_evaluations(config)  # (a run an older version planned with more goes on as it began)
    check_data_files(config, resuming=True, config_file=run_dir / CONFIG_FILE)
    source = data_source(config)
    data = load_data(config, source, progress=progress)
    if checkpoint is None or not training_done(checkpoint, config):  # this machine may have less memory
        check_training_memory(config, data.images.shape, len(data.classes), log=log, resume_of=run_dir)
    if checkpoint is None:
        log(f"Starting {run_dir} over: it stopped before its first checkpoint")
    elif training_done(checkpoint, config):
        log(f"Finishing {run_dir}: training ended at epoch {checkpoint.epoch}; writing the model from the checkpoint")
    else:
        log(f"Resuming {run_dir} after {config.step_name} {checkpoint.epoch:,} of {config.epochs:,}")
    with _kept_when_stopped(run_dir), blas_threads(config.threads):
        session = TrainingSession(config, run_dir, checkpoint, log, progress, source, data)
        del data  # training holds the images as float32 only
        return session.run()


def _config_from_checkpoint(run_dir: Path, log: Callable[[str], None]) -> None:
    """Write the config.toml of a run folder that lost it, from its checkpoint's record of the
    config the run began with; a ConfigError when there is no run to go on with."""
    if not (run_dir / CHECKPOINT_FILE).is_file():
        members = sorted(sub for sub in run_dir.iterdir() if (sub / CONFIG_FILE).is_file())
        if members:  # train --seeds before ensemble.toml (2026-12-06): it said "not a run folder" (compatibility audit)
            stopped = [member for member in members if not run_finished(member)]
            raise ConfigError(f"{run_dir} holds the runs {names_in_message((m.name for m in members), most=4)} "
                              "(train --seeds) "
                              "without the ensemble.toml that lists its seeds (an older version wrote it): "
                              + ("resume each that stopped: scratchnn train --resume "
                                 f"{shell_word(stopped[0])}" if stopped else
                                 "each has finished, so there is nothing to resume"))
        # hidden files are not the run's (the page's mark, web.disk_budget.PAGE_MARK: the review)
        if run_dir.is_dir() and {p.name for p in run_dir.iterdir()
                                 if not TEMP_FILE.fullmatch(p.name) and not p.name.startswith(".")} == {RUN_LOCK}:
            raise ConfigError(f"{run_dir}: a run stopped before it saved its config.toml (the folder holds only its "
                              f"{RUN_LOCK}): nothing was trained; start it again with the same scratchnn train command")
        raise ConfigError(f"{run_dir}: not a run folder (no config.toml); give the folder a run was saved in")
    began = load_checkpoint(run_dir / CHECKPOINT_FILE).metadata.get("config")
    if not isinstance(began, dict):  # an older version's checkpoint records none
        raise ConfigError(f"{run_dir}: its config.toml is missing, and its checkpoint does not record the config; "
                          "put config.toml back to resume it")
    TrainConfig.from_dict(began, source=str(run_dir / CHECKPOINT_FILE)).validate().save(run_dir / CONFIG_FILE)
    log(f"{run_dir}: its config.toml was missing; written again from the checkpoint's record")


def run_finished(run_dir: Path) -> bool:
    """True when the run in ``run_dir`` has nothing left to train: its model is saved, and no
    checkpoint says training was cut short (a run saved without checkpoints has none)."""
    run_dir = Path(run_dir)
    if not _model_intact(run_dir):
        return False
    return not (run_dir / CHECKPOINT_FILE).exists() or _marked_finished(load_checkpoint(run_dir / CHECKPOINT_FILE))


def how_it_ended(run_dir: Path) -> str:
    """' (early stopping at epoch 4 of 30 kept its best epoch's weights)', or ' (it stopped at epoch
    10 of 30: Stop or a time limit; its model keeps the weights it had then)', for a finished run
    that ended before its --epochs; '' otherwise (the combinations audit: such a run was only
    "already finished", beside the doctor's "stopped at epoch 10 of 60")."""
    try:
        config = TrainConfig.load(run_dir / CONFIG_FILE)
        rows = read_metrics_csv(run_dir / METRICS_FILE)
        checkpoint = load_checkpoint(run_dir / CHECKPOINT_FILE) if (run_dir / CHECKPOINT_FILE).exists() else None
    except (ScratchnnError, OSError):
        return ""
    if not rows or rows[-1]["epoch"] >= config.epochs:
        return ""
    where = f"{config.step_name.lower()} {rows[-1]['epoch']} of {config.epochs}"
    stopping = checkpoint.metadata.get("early_stopping") if checkpoint is not None else None
    stopping = stopping if isinstance(stopping, dict) else {}
    best, bad = stopping.get("best_epoch"), stopping.get("bad_evaluations")
    kept = f"the weights of its best, {best}" if config.patience and isinstance(best, int) and best > 0 else ""
    if kept and isinstance(bad, int) and bad >= config.patience:  # it fired (the review: not just patience set)
        return f" (early stopping at {where} kept {kept})"
    return f" (it stopped at {where}: Stop or a time limit; its model keeps {kept or 'the weights it had then'})"


def _model_intact(run_dir: Path, log: Callable[[str], None] | None = None) -> bool:
    """Whether the run's model file is there and reads back whole (the config audit: a truncated
    one made a finished run 'nothing to train', while evaluate refused it); ``log`` hears why not."""
    if not (run_dir / MODEL_FILE).is_file():
        return False
    try:
        read_metadata(run_dir / MODEL_FILE)
    except ModelFileError as error:
        if log is not None:
            log(f"The model file is damaged ({error}); it is written again from the checkpoint, or the run "
                "trained again")
        return False
    return True


def _marked_finished(checkpoint: Checkpoint | None) -> bool:
    return checkpoint is None or bool(checkpoint.metadata.get("finished"))


def _finished_run(run_dir: Path, checkpoint: Checkpoint | None) -> RunResult:
    """The RunResult of a run whose model is saved (read back, nothing trained)."""
    model, metadata = load(run_dir), read_metadata(run_dir)
    metrics = metadata.get("metrics") if isinstance(metadata.get("metrics"), dict) else {}
    metrics = {name: math.nan if value is None else value for name, value in metrics.items()}  # null: not measured
    history = checkpoint.history if checkpoint else []
    return RunResult(model, history, run_dir, run_dir / MODEL_FILE, float(metrics.get("train_seconds", 0.0)),
                     metrics, classes=tuple(class_names(model, metadata)), examined=False,
                     image_shape=model_image_shape(model, metadata))


def sweep_temp_files(run_dir: Path, older_than: float = 0.0) -> list[str]:
    """Remove the ``.<name>.*.tmp`` files interrupted atomic writes left in ``run_dir`` (only those
    untouched for ``older_than`` seconds: a caller not holding the folder's lock leaves a live
    write alone); their names."""
    removed, now = [], time.time()
    for path in sorted(Path(run_dir).iterdir()) if Path(run_dir).is_dir() else ():
        if TEMP_FILE.fullmatch(path.name) and path.is_file() and not path.is_symlink() \
                and now - path.lstat().st_mtime >= older_than:
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


def new_run_dir(name: str, base: Path = RUNS_DIR) -> Path:
    """A fresh ``base/<YYYYmmdd-HHMMSS>-<name>`` folder (suffixed -2, -3... if taken)."""
    check_run_name(name)
    stem = f"{datetime.now():%Y%m%d-%H%M%S}-{name}"
    for i in range(1, 1000):
        path = base / (stem if i == 1 else f"{stem}-{i}")
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise ConfigError(f"could not create a new run folder under {base}; pass --out DIR")


def check_run_name(preset: str) -> None:
    """Refuse a preset that cannot end a run folder's name: a config file's ``"my/run:x"`` made
    nested folders, ``"../x"`` one outside runs/, and ``:`` is no name on Windows. Runs saved
    under such a preset still load; only new folders are named by it."""
    if not re.fullmatch(r"[\w-](?:[\w.-]{0,62}[\w-])?", preset, re.ASCII):
        raise ConfigError(f"preset {names_in_message([preset])} cannot name a run folder: use up to 64 letters, "
                          "digits, '-', '_' and '.', not starting or ending with '.', or choose the folder with --out")
