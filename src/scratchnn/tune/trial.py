"""One trial of a sweep, as it runs inside a Dask worker: an ordinary run folder, pruned on the way.

The worker loads the data itself from the config's data fields (absolute paths), so a worker
on another machine works if it has the same files. Its BLAS is pinned to one thread: the
parallelism is one trial per core, not threads fighting over the cores.
"""
from __future__ import annotations

import os
import shutil
import socket
import sys
import time
from pathlib import Path

import optuna

from ..doctor import diagnose_run
from ..errors import ScratchnnError, readable
from ..training.checkpoint import CHECKPOINT_FILE
from ..training.config import CONFIG_FILE, TrainConfig
from ..training.fit import EpochResult
from ..training.run import train_run
from ..training.run_health import run_settings
from .study import make_pruner

LOG_FILE = "train.log"


def run_trial(storage, study_name: str, trial_id: int, config: dict, trial_dir: str,
              stop_event: str | None = None) -> dict:
    """Train ``config`` into ``trial_dir``, reporting each evaluation's dev accuracy to the trial.

    ``stop_event``: the name of a Dask Event the sweep sets when it is stopped (Ctrl+C): the trial
    stops after its batch (on a cluster the sweep does not own, it would train on for nobody).
    Returns ``{"state": "complete", "value": dev accuracy}``, ``{"state": "pruned", "reason": ...}``
    or ``{"state": "fail", "error": message}``: a diverging or invalid trial is an outcome of
    the search, not a crash of the sweep. A trial the stop event cut short is none of these
    (``{"state": "stopped", "epoch": E}``): the sweep leaves it running, and ``--resume`` asks for it again.
    """
    _quiet_closed_loop_clients()
    study = optuna.load_study(study_name=study_name, storage=storage, pruner=make_pruner())
    trial = optuna.Trial(study, trial_id)
    trial.set_user_attr("pid", os.getpid())
    trial.set_user_attr("host", socket.gethostname())
    config = TrainConfig.from_dict(config, source="trial")
    config.threads = 1  # one trial per core; and best.toml, its config, then repeats it bit for bit
    folder = Path(trial_dir)
    again = folder.is_dir() and any(folder.iterdir())
    if again:  # Dask runs a task again when its worker died: this trial's own folder, half trained
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)

    def log(line: str) -> None:
        with open(folder / LOG_FILE, "a", encoding="utf-8") as file:
            file.write(readable(line) + "\n")  # a folder named in Latin-1: its byte as \\xe9

    def on_evaluation(result: EpochResult) -> None:
        trial.report(result.dev_accuracy, result.epoch)
        if result.epoch < config.epochs and trial.should_prune():  # the last epoch is a finished run
            raise optuna.TrialPruned(f"pruned after epoch {result.epoch}: dev accuracy {result.dev_accuracy:.4f}")

    if again:
        log("started again from the beginning: the worker of the first attempt stopped")
    stopped = sweep_stopped(stop_event) if stop_event else None
    try:
        result = train_run(config, folder, log=log, progress=False, on_evaluation=on_evaluation,
                           stop_requested=stopped)
    except optuna.TrialPruned as pruned:
        log(str(pruned))
        return {"state": "pruned", "reason": str(pruned)} | doctor_said(folder)
    except ScratchnnError as error:  # TrainingDiverged among them
        log(f"failed: {error}")
        return {"state": "fail", "error": str(error)} | doctor_said(folder)
    if stopped is not None and stopped() and result.metrics["epochs"] < config.epochs:
        return {"state": "stopped", "epoch": result.metrics["epochs"]} | doctor_said(folder, result.findings)
    saved = TrainConfig.load(folder / CONFIG_FILE).to_dict()  # for best.toml, wherever this disk is
    # a finished trial's checkpoint continues nothing (its model and tables stay): 86% of a sweep's disk
    (folder / CHECKPOINT_FILE).unlink(missing_ok=True)  # went to them (the disk audit)
    return {"state": "complete", "value": float(result.metrics["dev_accuracy"]), "seconds": float(result.train_seconds),
            "config": saved} | doctor_said(folder, result.findings)


STOP_POLL = 2.0  # seconds between two looks at the sweep's stop event (each is a message to the scheduler)


def _quiet_closed_loop_clients() -> None:
    """Leave out of the sweep's terminal Dask's "Exception ignored in Client.__del__ ...
    RuntimeError: IOLoop is closed", which a worker process printed as it exited with a trial's
    client still open (the worker's own, made for the study and the stop event): Dask's exit
    hook closes it on a loop already gone and leaves it "closing", so its ``__del__`` tries again.
    Ctrl+C on a busy machine (3 of 32 stopped sweeps at a load of 5 on 2 cores); nothing is
    lost, the trial ends with its process. Any other unraisable exception is printed as before.
    Once per worker process (the hook is the process's)."""
    previous = sys.unraisablehook
    if getattr(previous, "scratchnn_quiet", False):
        return

    def hook(unraisable) -> None:
        if not (isinstance(unraisable.exc_value, RuntimeError) and str(unraisable.exc_value) == "IOLoop is closed"
                and getattr(unraisable.object, "__qualname__", "") == "Client.__del__"):
            previous(unraisable)
    hook.scratchnn_quiet = True
    sys.unraisablehook = hook


STOP_UNREACHABLE = 3  # looks in a row at an event the scheduler cannot answer: the sweep is over


def sweep_stopped(name: str):
    """stop_requested for train_run: whether the Dask Event ``name`` is set, asked at most every
    STOP_POLL seconds (it is polled after every batch). A scheduler that cannot answer
    STOP_UNREACHABLE times in a row is gone, and so is the sweep; once is a hiccup (the sweep
    audit: one failed look stopped a trial, which then stayed RUNNING in a live sweep)."""
    from distributed import Event

    event, last, stopped, unanswered = Event(name), 0.0, False, 0

    def requested() -> bool:
        nonlocal last, stopped, unanswered
        now = time.monotonic()
        if not stopped and now - last >= STOP_POLL:
            last = now
            try:
                stopped, unanswered = event.is_set(), 0
            except Exception:  # noqa: BLE001 - the scheduler did not answer
                unanswered += 1
                stopped = unanswered >= STOP_UNREACHABLE
        return stopped
    return requested


def doctor_said(folder: Path, findings=None) -> dict:
    """{"findings": ["[one-class] error", ...]}: the trial's errors and warnings: those its run
    returned, or for a pruned or diverged trial, what its tables recorded; empty when none."""
    if findings is None:
        try:
            findings = diagnose_run(folder, run_settings(folder))
        except (ScratchnnError, OSError):  # stopped before its first evaluation: no tables
            findings = []
    return {"findings": [f"[{f.id}] {f.severity}" for f in findings if f.severity in ("error", "warning")]}
