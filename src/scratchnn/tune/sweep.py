"""The sweep loop: ask the study for a trial, send it to a free worker, tell the study how it ended.

The sampler (TPE) runs here, in one process, and sees every finished trial; the workers only
train and report per-epoch dev accuracy for the pruner. As many trials are in flight as the
cluster has worker threads. After every finished trial ``best.toml`` is rewritten and one
progress line printed: trial number, params, dev accuracy, best so far, ETA.
"""
from __future__ import annotations

import shutil
import time
import uuid
from concurrent.futures import CancelledError
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.trial import TrialState

from ..data.sources import locate
from ..errors import ConfigError, ScratchnnError
from ..files import lock_held
from ..io import MODEL_FILE
from ..training.config import TrainConfig
from ..training.run import RUN_LOCK
from ..training.run_data import data_source, record_data
from .parallel import cluster_storage
from .space import SearchSpace
from .study import (MAX_SEED, SweepFolder, counts, create_sweep_folder, open_study, recover_interrupted,
                    reseed_for_next_trial, write_best)
from .trial import run_trial


def start_sweep(out: Path, space: SearchSpace, base: TrainConfig, trials: int, storage_url: str = "",
                workers: int | None = None) -> SweepFolder:
    """Create the sweep folder; the base config's data paths become absolute with their SHA-256;
    ``workers``: how many trials run at once (None on a cluster), which a --resume runs again."""
    if trials < 1:
        raise ConfigError(f"--trials must be >= 1, got {trials}")
    if base.seed > MAX_SEED:  # before anything is made: the sampler would refuse it after the folder was
        raise ConfigError(f"--seed must be between 0 and 2**32 - 1 ({MAX_SEED}) for a sweep, got {base.seed}")
    base.validate()
    recorded = record_data(base)  # a data file that is missing fails here, once
    source = data_source(base)
    if source.dataset:  # a named dataset: fetched once, here, not by every trial (or failing in each)
        for split in ("train", "test"):
            locate(source.dataset, split, source.data_dir)
    return create_sweep_folder(out, trials, storage_url, space, recorded, workers)


def remove_half_trained(trials) -> None:
    """Delete the folders of trials asked again, half trained: no trial goes on from them (the disk
    audit: 6.5 MB a Ctrl+C). Not one with a model, nor one whose run.lock a live process holds (the
    review: a worker of a cluster that outlived the sweep may still train it)."""
    for trial in trials:
        if trial.is_dir() and not (trial / MODEL_FILE).exists() and not lock_held(trial, RUN_LOCK):
            shutil.rmtree(trial, ignore_errors=True)


def run_sweep(folder: SweepFolder, client, create: bool, log: Callable[[str], None] = print,
              new_total: bool = False) -> optuna.Study:
    """Run the sweep's remaining trials on ``client``'s workers; returns the study. ``new_total``:
    ``folder.trials`` was changed (``--resume --trials N``), and is saved if it is not below the trials done."""
    try:
        storage = cluster_storage(client, folder.storage())
    except Exception as error:  # noqa: BLE001 - raised in the scheduler: no such folder there, a bad URL...
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        remedy = (f"check --storage {folder.storage_url}: its folder or server must exist where the Dask scheduler "
                  "runs, and its driver be installed there (postgresql:// needs psycopg2, mysql:// pymysql)"
                  if folder.storage_url else
                  "run the sweep where the scheduler runs, put its folder on a shared disk, or give "
                  "--storage URL (a database the scheduler can reach)")
        raise ConfigError(f"the Dask scheduler could not open the study's storage ({type(error).__name__}: {first}); "
                          f"{remedy}") from None
    # a sweep killed while it started (sweep.json written, the study not yet made) ran no trial:
    # --resume makes its study (the crash audit: --resume said "start a new sweep", and the same
    # command again "continue it with --resume", a circle)
    unstarted = not create and folder.never_asked()
    study = open_study(storage, folder.seed, create=create, name=folder.study, missing_ok=unstarted)
    if unstarted and not study.get_trials(deepcopy=False):
        log(f"Sweep {folder.path} had not started a trial when it was stopped; starting it")
    folder.started = True
    lost = recover_interrupted(study)
    if lost:
        log(f"Trial(s) {', '.join(map(str, lost))} stopped with the sweep; marked failed and asked again")
        remove_half_trained(folder.trial_dir(number) for number in lost)
    done_before = counts(study)
    if new_total:
        if folder.trials < done_before:
            raise ConfigError(f"--trials {folder.trials} is below the {done_before} trials this sweep has done; "
                              "give the new total, more than that")
        folder.write()
    log(f"Sweep {folder.path}: {done_before} of {folder.trials} trials done; {slots(client)} at a time; "
        f"searching {', '.join(d.describe() for d in folder.space.dimensions)}")
    shared = [address for address, info in client.scheduler_info()["workers"].items() if info.get("nthreads", 1) > 1]
    if shared:  # threadpoolctl's limit is per process: two trials in one share it, and it drifts
        log(f"Note: worker(s) {', '.join(shared)} run several trials in one process, whose BLAS thread limit they "
            "share: a trial may then use more than its one thread, and best.toml may not repeat it bit for bit; "
            "start each worker with --nthreads 1 (and one per core)")
    from distributed import as_completed

    from distributed import Event

    running, start = {}, time.perf_counter()
    stop = Event(f"scratchnn-sweep-stop-{uuid.uuid4().hex}", client=client)  # set when this sweep is stopped
    pending = as_completed()
    try:
        while counts(study) + len(running) < folder.trials and len(running) < slots(client):
            _submit(study, storage, folder, client, running, pending, log, stop.name)
        away = False  # a trial's run folder is on its worker's disk, not on this one
        for future in completed(pending, client, log):
            trial = running.pop(future)
            _finish(study, trial, future)
            if not away and not folder.trial_dir(trial.number).is_dir():
                away = _say_where_the_folders_are(study, trial.number, folder, log)
            done = counts(study)
            while done + len(running) < folder.trials and len(running) < slots(client):
                _submit(study, storage, folder, client, running, pending, log, stop.name)  # the free worker first
            write_best(folder, study)
            log(progress_line(study, trial.number, done, folder.trials, done - done_before,
                              time.perf_counter() - start))
    except BaseException as error:  # Ctrl+C above all: the trials still training stop after their batch
        try:
            stop.set()
        except Exception:  # noqa: BLE001 - the cluster itself is gone: nothing trains for us any more
            pass
        if isinstance(error, KeyboardInterrupt):  # the cluster is there: keep what finished meanwhile
            _record_finished(study, running)
        raise
    return study


def _say_where_the_folders_are(study: optuna.Study, number: int, folder: SweepFolder, log) -> bool:
    """For a trial that finished with no run folder here: its worker saved it on its own disk. Say
    so (once: True); a trial that failed before its folder was made says nothing (False)."""
    attrs = study.get_trials(deepcopy=False)[number].user_attrs  # as its worker set them too
    if "config" not in attrs:
        return False
    log(f"Note: trial {number}'s run folder is on its worker's disk (host {attrs.get('host', '?')}), not in "
        f"{folder.path / 'trials'}: the sweep folder is not shared. best.toml is written here from the study; "
        "copy a trial's folder from its worker to evaluate or report it, or put the sweep folder on a disk every "
        "machine shares")
    return True


NO_WORKERS = 30.0  # seconds without a worker in the cluster before the sweep says it waits for one
POLL = 0.2  # seconds between two looks for a finished trial


def completed(pending, client, log: Callable[[str], None]):
    """Each future of ``pending`` (a distributed.as_completed, added to meanwhile) as it finishes.
    While none does, and the cluster has had no worker for NO_WORKERS seconds (every worker
    killed or gone), it says so once, instead of waiting without a word."""
    without_workers, said = None, False
    while not pending.is_empty():
        if pending.has_ready():
            yield next(pending)
            continue
        time.sleep(POLL)
        if client.scheduler_info().get("workers"):  # the client's copy, refreshed every few seconds (empty when lost)
            without_workers = None
            continue
        without_workers = without_workers or time.monotonic()
        if not said and time.monotonic() - without_workers > NO_WORKERS:
            said = True
            log(f"Note: the cluster has had no worker for {NO_WORKERS:.0f} s; the sweep waits for one to come back "
                "(start one with 'dask worker SCHEDULER --nthreads 1'), or stop it with Ctrl+C and continue later "
                "with --resume")


def slots(client) -> int:
    """Trials the cluster runs at once: its worker threads now (workers may join a running sweep)."""
    return max(1, sum(info.get("nthreads", 1) for info in client.scheduler_info()["workers"].values()))


def resume_sweep(folder: SweepFolder, client, trials: int | None = None,
                 log: Callable[[str], None] = print) -> optuna.Study:
    """Continue ``folder``'s sweep (``trials``: a new total), without repeating finished trials."""
    if trials is not None:
        if trials < 1:
            raise ConfigError(f"--trials must be >= 1, got {trials}")
        folder.trials = trials  # saved once the study shows it is not below the trials done
    return run_sweep(folder, client, create=False, log=log, new_total=trials is not None)


def _submit(study: optuna.Study, storage, folder: SweepFolder, client, running: dict, pending, log,
            stop_event: str) -> None:
    """Ask for the next trial and send it to the cluster; a config the options refuse fails at once."""
    reseed_for_next_trial(study, folder.seed)
    trial = study.ask()
    params = folder.space.suggest(trial)
    try:
        config = folder.space.apply(folder.base, params)
    except ScratchnnError as error:
        _fail(study, trial, str(error))
        log(f"Trial {trial.number} failed before starting: {error}")
        return
    future = client.submit(run_trial, storage, folder.study, trial._trial_id, config.to_dict(),
                           str(folder.trial_dir(trial.number).absolute()), stop_event, pure=False,
                           key=f"trial-{trial.number:04d}-{time.time_ns()}")
    running[future] = trial
    pending.add(future)


def _record_finished(study: optuna.Study, running: dict) -> None:
    """Tell the study of the trials in ``running`` that finished before the sweep was stopped, so
    ``--resume`` does not train them again (the sweep audit: a trial done a moment before Ctrl+C
    was marked interrupted and trained a second time)."""
    for future, trial in running.items():
        if future.status in ("finished", "error"):
            try:
                _finish(study, trial, future)
            except Exception:  # noqa: BLE001 - what cannot be fetched now is asked again by --resume
                pass


def _finish(study: optuna.Study, trial, future) -> None:
    """Tell the study how the trial ended (a worker lost or a bug: failed, with the reason)."""
    try:
        outcome = future.result()
    except CancelledError as error:  # the sweep cancels nothing: the cluster dropped it (the scheduler is gone)
        raise ConnectionError(f"the trial was cancelled: {' '.join(str(error).split())}") from None
    except Exception as error:  # noqa: BLE001 - one broken trial must not stop the sweep
        _fail(study, trial, f"{type(error).__name__}: {error}")
        return
    trial.set_user_attr("findings", outcome.get("findings", []))
    if outcome["state"] == "stopped":  # the sweep was stopped: left running, so --resume asks for it again
        return
    if outcome["state"] == "complete":
        if isinstance(outcome.get("config"), dict):
            trial.set_user_attr("config", outcome["config"])
        study.tell(trial.number, outcome["value"])
    elif outcome["state"] == "pruned":
        trial.set_user_attr("pruned", outcome["reason"])
        study.tell(trial.number, state=TrialState.PRUNED)
    else:
        _fail(study, trial, outcome["error"])


def _fail(study: optuna.Study, trial: optuna.Trial, reason: str) -> None:
    trial.set_user_attr("error", reason)
    study.tell(trial, state=TrialState.FAIL)


def progress_line(study: optuna.Study, number: int, done: int, total: int, finished_here: int,
                  seconds: float) -> str:
    """'Trial 3 (4/6)  lr=0.0031 hidden=512,256  dev accuracy 0.9420  best 0.9510 (trial 1)  ETA 1m20s'.

    The ETA is the wall time per trial finished in this session times the trials left.
    """
    trial = study.get_trials(deepcopy=False)[number]
    params = " ".join(f"{k}={format_value(v)}" for k, v in trial.params.items())
    if trial.state == TrialState.COMPLETE:
        outcome = f"dev accuracy {trial.value:.4f}"
    elif trial.state == TrialState.PRUNED:
        outcome = trial.user_attrs.get("pruned", "pruned")
    else:
        outcome = f"failed: {trial.user_attrs.get('error', 'unknown reason')}"
    findings = trial.user_attrs.get("findings")
    outcome += f"  doctor: {' '.join(findings)}" if findings else ""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    best = max(complete, key=lambda t: (t.value, -t.number)) if complete else None
    best_text = f"best {best.value:.4f} (trial {best.number})" if best else "no trial complete yet"
    left = total - done
    eta = seconds / finished_here * left if finished_here else 0.0
    return (f"Trial {number} ({done}/{total})  {params}  {outcome}  {best_text}"
            + (f"  ETA {format_seconds(eta)}" if left else ""))


def format_value(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def format_seconds(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
