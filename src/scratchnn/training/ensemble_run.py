"""``train --seeds``: an ensemble's members trained one after another into one folder, and an
interrupted ensemble completed.

The folder holds one ordinary run folder per member (``seed-S/``) and ``ensemble.toml``, the
seeds it is to hold and the config they share, written before the first member starts.
``train --resume FOLDER`` then finishes the member that was interrupted and trains those never
started, and an ensemble read for evaluation or prediction is refused while a member is missing.
"""
from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import ConfigError, shell_word
from ..files import atomic_write_bytes, read_small_text
from ..io import ENSEMBLE_FILE, MODEL_FILE
from .checkpoint import CHECKPOINT_FILE
from .config import CONFIG_FILE, MAX_CONFIG_BYTES, TrainConfig
from .run import REPORT_FILE, resume_run, run_finished, train_run
from .run_data import check_data_files, locate_data, record_data
from .session import RunResult

MAX_SEEDS = 64  # as many members as an ensemble may have (ensemble.MAX_MEMBERS)


def member_dir(folder: Path, seed: int) -> Path:
    return Path(folder) / f"seed-{seed}"


def member_config(config: TrainConfig, seed: int) -> TrainConfig:
    """``config`` with the member's seed; every member holds out the same dev set (the base's split)."""
    shared_split = config.split_seed if config.split_seed >= 0 else config.seed
    return TrainConfig.from_dict({**config.to_dict(), "seed": seed, "split_seed": shared_split}).validate()


def _ensemble_table(folder: Path) -> dict | None:
    """``folder``'s ensemble.toml as a table, None without one; a ConfigError for a damaged one."""
    path = Path(folder) / ENSEMBLE_FILE
    if not path.is_file():
        return None
    try:
        return tomllib.loads(read_small_text(path, MAX_CONFIG_BYTES, "an ensemble's list of seeds"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML ({error}); it reads seeds = [0, 1, 2]") from None


def recorded_seeds(folder: Path) -> list[int] | None:
    """The seeds ``folder``'s ensemble.toml lists, None without one; a ConfigError for a damaged one."""
    table = _ensemble_table(folder)
    if table is None:
        return None
    path, seeds = Path(folder) / ENSEMBLE_FILE, table.get("seeds")
    if not (isinstance(seeds, list) and 2 <= len(seeds) <= MAX_SEEDS and len(set(map(str, seeds))) == len(seeds)
            and all(type(seed) is int and seed >= 0 for seed in seeds)):
        raise ConfigError(f"{path}: seeds must list 2 to {MAX_SEEDS} different whole numbers >= 0, "
                          f"got {str(seeds)[:60]}")
    return seeds


def train_members(config: TrainConfig, seeds: list[int], folder: Path, log: Callable[[str], None],
                  progress: bool) -> Iterator[RunResult]:
    """Train the member of each seed in turn; each finished member's RunResult as it comes."""
    folder = Path(folder)
    held = recorded_seeds(folder)
    if held is not None and all(run_finished(member_dir(folder, seed)) for seed in held):  # --resume: nothing to do
        raise ConfigError(f"{folder} already holds a finished ensemble; choose another --out (a new one of its "
                          "settings: scratchnn train --config "
                          f"{shell_word(member_dir(folder, held[0]) / CONFIG_FILE)} --seeds "
                          f"{','.join(map(str, held))} --out NEW)")
    if held is not None:
        raise ConfigError(f"{folder} already holds an ensemble; complete it with --resume {shell_word(folder)}, "
                          "or choose another --out")
    runs = [run for run in (folder, *sorted(folder.iterdir() if folder.is_dir() else ())) if _holds_a_run(run)]
    if runs:  # evaluate FOLDER would read them as (or instead of) the members
        names = ", ".join("the folder itself" if run == folder else run.name for run in runs[:3])
        raise ConfigError(f"{folder} already holds a run ({names}); an ensemble's folder holds its members only: "
                          "choose another --out")
    folder.mkdir(parents=True, exist_ok=True)
    log = notes_once(log)
    # the config too, with its data's checksums: members never started train with it on resume
    table = f"seeds = [{', '.join(map(str, seeds))}]\n\n[config]\n{record_data(config).to_toml()}"
    atomic_write_bytes(folder / ENSEMBLE_FILE, table.encode())
    for seed in seeds:
        log(f"Ensemble member seed {seed} -> {member_dir(folder, seed)}")
        yield train_run(member_config(config, seed), member_dir(folder, seed), log=log, progress=progress)


def notes_once(log: Callable[[str], None]) -> Callable[[str], None]:
    """``log``, passing each 'Note: ' line once: an ensemble's members train on the same data, so
    its notes (dark digits on a light page, dev copies of training images...) came once a member."""
    said: set[str] = set()

    def once(line: str) -> None:
        if line.startswith("Note: "):
            if line in said:
                return
            said.add(line)
        log(line)

    return once


def _holds_a_run(folder: Path) -> bool:
    return folder.is_dir() and any((folder / name).exists() for name in (MODEL_FILE, CHECKPOINT_FILE, CONFIG_FILE))


def resume_members(folder: Path, log: Callable[[str], None], progress: bool,
                   report: bool = False) -> Iterator[RunResult]:
    """Complete the ensemble in ``folder``: finished members are left as they are, the interrupted
    one resumes, and those never started train with the ensemble's config (ensemble.toml's, its data
    checked against the checksums there; an older one's: the first started member's) and their own
    seed (the combinations audit: an edited member config.toml, or changed data, trained the rest).
    With ``report``, a finished member without its report.html (stopped while it was drawn) is
    yielded too, untrained, for the caller to draw it."""
    folder = Path(folder)
    log = notes_once(log)
    seeds = recorded_seeds(folder) or []
    started = [member_dir(folder, seed) for seed in seeds if (member_dir(folder, seed) / CONFIG_FILE).is_file()]
    recorded = (_ensemble_table(folder) or {}).get("config")
    if isinstance(recorded, dict):
        base = TrainConfig.from_dict(recorded, source=str(folder / ENSEMBLE_FILE)).validate()
        if any(not (member_dir(folder, seed) / CONFIG_FILE).is_file() for seed in seeds):
            check_data_files(base, resuming=True)  # before any member trains on what has changed
    elif started:  # an older version's ensemble.toml records no config: the first started member's
        base = locate_data(TrainConfig.load(started[0] / CONFIG_FILE), started[0])
    else:  # and none started
        raise ConfigError(f"{folder}: no member of the ensemble had started; train it again with "
                          f"--seeds {','.join(map(str, seeds))} --out {shell_word(folder)} after deleting the folder")
    for seed in seeds:
        run = member_dir(folder, seed)
        if run_finished(run) and report and not (run / REPORT_FILE).exists():  # stopped while drawing it
            yield resume_run(run, log=log, progress=progress, report=True)
        elif run_finished(run):
            log(f"Ensemble member seed {seed}: finished ({run})")
        elif (run / CONFIG_FILE).is_file():
            log(f"Ensemble member seed {seed} -> {run}, resumed")
            yield resume_run(run, log=log, progress=progress)
        else:
            log(f"Ensemble member seed {seed} -> {run}")
            yield train_run(member_config(base, seed), run, log=log, progress=progress)
