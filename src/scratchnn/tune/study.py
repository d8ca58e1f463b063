"""A sweep folder and the Optuna study inside it.

``DIR/`` holds ``sweep.json`` (the study's name, its storage, the number of trials asked for),
``space.toml`` (the search space), ``base.toml`` (the config every trial starts from), the
study itself in ``study.log`` (Optuna's journal file: embedded, nothing to start; or any
Optuna storage URL given with ``--storage``), ``trials/NNNN/`` (one ordinary run folder per
trial) and ``best.toml`` (the best trial's full config, rewritten after every trial).

The objective is the final dev accuracy (maximised); each evaluated epoch's dev accuracy is
reported to the pruner (median rule). Needs the ``tune`` extra (Optuna).
"""
from __future__ import annotations

import json
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState
from optuna_integration import DaskStorage

from ..ensemble import SWEEP_FILE, TRIALS_DIR
from ..errors import ConfigError, shell_word
from ..files import atomic_write_bytes, folder_lock, read_small_text
from ..training.config import CONFIG_FILE, TrainConfig
from .space import MAX_SPACE_BYTES, SearchSpace, parse_space

SPACE_FILE, BASE_FILE, STUDY_FILE, BEST_FILE = "space.toml", "base.toml", "study.log", "best.toml"  # SWEEP_FILE:
# ensemble's, where evaluate and doctor tell a sweep's folder from a run's without the tuning extra
LOCK_FILE = "sweep.lock"  # the pid and host of the sweep running in the folder
STUDY_NAME = "sweep"
JOURNAL_GRACE = 30.0  # seconds: Optuna's JournalFileSymlinkLock takes over a lock untouched this long
INTERRUPTED = "interrupted"  # user attribute of a trial the sweep lost (killed while it ran)
MAX_SEED = 2**32 - 1  # Optuna's samplers seed a NumPy RandomState, which takes 0 .. 2**32 - 1

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


@dataclass
class SweepFolder:
    """What ``DIR/sweep.json``, ``space.toml`` and ``base.toml`` say."""

    path: Path
    trials: int
    storage_url: str  # "" = the journal file DIR/study.log
    seed: int
    space: SearchSpace
    base: TrainConfig
    study: str = STUDY_NAME  # its own name in a --storage database that other sweeps share
    workers: int | None = None  # trials it ran at once, which --resume runs again (None: on a cluster, or unknown)
    made_folder: bool = False  # create_sweep_folder made ``path`` (remove_if_unused may take it away again)
    started: bool = False  # the study was opened: from then on the folder holds a sweep, whatever fails

    def trial_dir(self, number: int) -> Path:
        return self.path / TRIALS_DIR / f"{number:04d}"

    def storage(self):
        """The Optuna storage (a URL, or the journal storage of DIR/study.log) for one process."""
        if self.storage_url:
            return self.storage_url
        return JournalStorage(JournalFileBackend(str((self.path / STUDY_FILE).absolute())))

    def never_asked(self) -> bool:
        """Whether no trial can have been asked for: the sweep keeps its study in its own journal
        (no --storage), which is missing or empty, and no trial folder is here. A sweep on a
        database of its own cannot tell (its trials' folders may be on other machines' disks)."""
        journal = self.path / STUDY_FILE
        return (not self.storage_url and not (self.path / TRIALS_DIR).exists()
                and (not journal.is_file() or journal.stat().st_size == 0))

    def remove_if_unused(self) -> None:
        """Undo ``create_sweep_folder`` when the sweep could not start (no cluster, a bad storage):
        no trial ran, so its files go, and a rerun of the same command starts afresh. Once the study
        was opened nothing goes: trials may have run on workers whose disks are not this one."""
        if self.started or (self.path / TRIALS_DIR).exists():
            return
        for name in (SWEEP_FILE, SPACE_FILE, BASE_FILE, STUDY_FILE):
            (self.path / name).unlink(missing_ok=True)
        if self.made_folder and not any(self.path.iterdir()):  # a folder the user made stays
            self.path.rmdir()

    def write(self) -> None:
        settings = {"study": self.study, "storage": self.storage_url, "trials": self.trials, "seed": self.seed,
                    "workers": self.workers}
        atomic_write_bytes(self.path / SPACE_FILE, self.space.text.encode())
        self.base.save(self.path / BASE_FILE)
        atomic_write_bytes(self.path / SWEEP_FILE, (json.dumps(settings, indent=2) + "\n").encode())


class ClusterStorage(DaskStorage):
    """Optuna's DaskStorage: the study's storage lives in the Dask scheduler, every worker talks to it.

    Unpickled in a worker, this class imports this module first, whose warning filter keeps
    Optuna's "DaskStorage is experimental" out of every trial's output.
    """

    def __reduce__(self) -> tuple:
        return (ClusterStorage, (None, self.name, None, False))


@contextmanager
def sweep_lock(path: Path) -> Iterator[None]:
    """Hold ``path/sweep.lock`` while a sweep runs there (``folder_lock``): a second ``--resume``
    of a running sweep would mark its live trials failed and the first sweep then crashes.
    A journal lock (study.log.lock, Optuna's) older than Optuna's own grace period is a killed
    sweep's, and is removed: Optuna took it over only after watching it for those 30 s, warning
    three times (the crash audit). A younger one is left to Optuna: a scheduler of one's own
    (--scheduler) outlives a killed sweep, and its trials may still be writing."""
    with folder_lock(path, LOCK_FILE, "a running sweep"):
        journal_lock = Path(path) / f"{STUDY_FILE}.lock"
        try:
            if time.time() - journal_lock.lstat().st_mtime > JOURNAL_GRACE:
                journal_lock.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
        yield


def is_sweep_folder(path: Path) -> bool:
    return (Path(path) / SWEEP_FILE).is_file()


def create_sweep_folder(path: Path, trials: int, storage_url: str, space: SearchSpace,
                        base: TrainConfig, workers: int | None = None) -> SweepFolder:
    """A new sweep folder (refused if ``path`` already holds a sweep or other files)."""
    path = Path(path)
    if is_sweep_folder(path):
        raise ConfigError(f"{path} already holds a sweep; continue it with --resume {shell_word(path)}, or choose "
                          "another --out")
    if path.exists() and any(path.iterdir()):
        raise ConfigError(f"{path} is not empty; give a new folder to --out")
    name = f"{STUDY_NAME}-{path.name}-{uuid.uuid4().hex[:8]}" if storage_url else STUDY_NAME
    folder = SweepFolder(path, trials, absolute_sqlite(storage_url), base.seed, space, base, name, workers,
                         made_folder=not path.exists())
    folder.write()
    return folder


def absolute_sqlite(url: str) -> str:
    """A SQLite URL with a relative path (sqlite:///rel.db) made absolute, as data paths are: a
    --resume from another folder would otherwise open (and create) another, empty database."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url[len(prefix):].startswith("/") and url[len(prefix):] not in ("", ":memory:"):
        return prefix + str(Path(url[len(prefix):]).absolute())
    return url


def read_sweep_folder(path: Path, storage_here: bool = True) -> SweepFolder:
    """The settings of an existing sweep folder; a ConfigError if it is not one. ``storage_here``:
    the storage is opened on this machine, so a SQLite file it names must be here already (a
    remote scheduler opens it on its own machine)."""
    path = Path(path)
    if not is_sweep_folder(path):
        raise ConfigError(f"{path}: not a sweep folder (no {SWEEP_FILE}); give the --out folder of a sweep")
    text = read_small_text(path / SWEEP_FILE, MAX_SPACE_BYTES, "the sweep's settings (sweep.json)")
    try:
        settings = json.loads(text)
        trials, storage_url, seed = settings["trials"], settings["storage"], settings["seed"]
        study, workers = settings.get("study", STUDY_NAME), settings.get("workers")  # (older sweeps: neither)
        if not _whole(trials) or trials < 1:  # 2.9 was read as 2
            raise ValueError(f"trials must be a whole number >= 1, got {str(trials)[:40]}")
        if not _whole(seed) or not 0 <= seed <= MAX_SEED:  # 1e30 crashed Optuna's sampler
            raise ValueError(f"seed must be a whole number from 0 to 2**32 - 1, got {str(seed)[:40]}")
        if not isinstance(storage_url, str) or not isinstance(study, str):
            raise ValueError("storage and study must be text")
        if workers is not None and (not _whole(workers) or workers < 1):
            raise ValueError(f"workers must be a whole number >= 1 or null, got {str(workers)[:40]}")
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigError(f"{path / SWEEP_FILE}: unreadable sweep settings ({error}); start a new sweep") from None
    if storage_here:
        existing_storage(storage_url)
    space_file = path / SPACE_FILE
    space = parse_space(read_small_text(space_file, MAX_SPACE_BYTES, "a search space"), str(space_file))
    return SweepFolder(path, trials, storage_url, seed, space, TrainConfig.load(path / BASE_FILE), study, workers)


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def existing_storage(url: str) -> None:
    """Refuse ``url``, a storage read from sweep.json, if opening it would make a database: a SQLite URL must
    name a database file that is there and not empty, as SQLite creates a missing file and Optuna
    fills an empty one (a damaged or crafted sweep.json made --resume write a database anywhere).
    Other URLs open a server's existing database; what is no URL at all, Optuna refuses."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if not url:  # the journal file DIR/study.log, inside the sweep folder
        return
    try:
        parsed = make_url(url)
    except ArgumentError:
        return
    if parsed.get_backend_name() == "sqlite":
        database = Path(parsed.database or ":memory:")
        if not database.is_file() or database.stat().st_size == 0:
            raise ConfigError(f"the sweep's storage {url} does not exist or is empty, so it holds no study: put its "
                              "database back there, or start a new sweep with --out")


def reseed_for_next_trial(study: optuna.Study, seed: int) -> None:
    """Give ``study`` a TPE sampler seeded for the trial it asks next: ``seed`` plus the trials
    asked before it that the sweep did not lose. TPE keeps no state but its random numbers (it
    reads the finished trials from the storage), so each trial's proposal then depends on the
    seed and on the trials before it alone: a sweep killed and resumed proposes what it would
    have proposed uninterrupted (one worker at a time); seeded once at the start, a resumed
    sweep went its own way after the trial it repeated (the resume audit)."""
    asked = sum(1 for t in study.get_trials(deepcopy=False)
                if t.state != TrialState.WAITING and not t.user_attrs.get(INTERRUPTED))  # queued: not asked yet
    study.sampler = optuna.samplers.TPESampler(seed=sampler_seed(seed, asked))


def sampler_seed(seed: int, asked: int = 0) -> int:
    """TPE's seed after ``asked`` trials, kept within ``MAX_SEED`` (a sweep started with --seed
    4294967295 could not be resumed: its next seed was out of NumPy's range)."""
    return (seed + asked) % (MAX_SEED + 1)


def make_pruner() -> optuna.pruners.BasePruner:
    """Stop a trial whose dev accuracy is below the median of earlier trials at the same epoch.

    Not before 4 trials have finished, nor before the second epoch (the first is the warm-up of
    most recipes); the last epoch is never pruned (the run is done by then: see trial.py).
    """
    return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=2)


def open_study(storage, seed: int, create: bool = False, name: str = STUDY_NAME,
               missing_ok: bool = False) -> optuna.Study:
    """The sweep's study in ``storage``; TPE's seed moves on with the trials already asked for,
    so a resumed sweep does not propose the first trials again. ``missing_ok``: a study not in
    the storage is made, as a first start makes it (a sweep killed before it made its study)."""
    if create:
        return optuna.create_study(study_name=name, storage=storage, direction="maximize",
                                   sampler=optuna.samplers.TPESampler(seed=sampler_seed(seed)), pruner=make_pruner())
    try:
        asked = len(optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False))
    except KeyError:
        if missing_ok:
            return open_study(storage, seed, create=True, name=name)
        raise ConfigError("the sweep's study is not in its storage: a sweep stopped before it made it is started by "
                          "scratchnn sweep --resume; one whose trials ran has lost it: start a new sweep with another "
                          "--out") from None
    return optuna.load_study(study_name=name, storage=storage, pruner=make_pruner(),
                             sampler=optuna.samplers.TPESampler(seed=sampler_seed(seed, asked)))


def counts(study: optuna.Study) -> int:
    """Trials that count towards the total: finished ones, not those lost to an interruption."""
    return sum(1 for t in study.get_trials(deepcopy=False)
               if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
               or (t.state == TrialState.FAIL and not t.user_attrs.get(INTERRUPTED)))


def recover_interrupted(study: optuna.Study) -> list[int]:
    """Mark trials left RUNNING (or queued) by a killed sweep failed, and queue their params again."""
    lost = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        if trial.state == TrialState.RUNNING:
            study._storage.set_trial_user_attr(trial._trial_id, INTERRUPTED, True)
            study._storage.set_trial_user_attr(trial._trial_id, "error", "interrupted: the sweep stopped while it ran")
            study.tell(trial.number, state=TrialState.FAIL)
            study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
            lost.append(trial.number)
    return lost


def write_best(folder: SweepFolder, study: optuna.Study) -> TrainConfig | None:
    """Rewrite ``DIR/best.toml`` with the best finished trial's full config: the one its worker
    saved, which the study keeps (a worker on another machine saved its run folder on its own
    disk), or for a trial of an older sweep, its run folder's config.toml."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return None
    best = max(complete, key=lambda t: (t.value, -t.number))  # the earliest of equal scores
    saved = best.user_attrs.get("config")
    config = TrainConfig.from_dict(saved, source=f"trial {best.number}") if isinstance(saved, dict) else \
        TrainConfig.load(folder.trial_dir(best.number) / CONFIG_FILE)
    config.save(folder.path / BEST_FILE)
    return config
