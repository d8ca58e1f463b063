"""``scratchnn sweep``: an Optuna search over training options, trials in parallel through Dask."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError, shell_word
from ..host.resources import usable_cores
from ..training.config import TrainConfig
from ..training.options import TRAIN_GROUPS, option_of
from ..training.presets import DEFAULT_PRESET, PRESETS
from .common import add_data_arguments, next_steps_lines
from .config_flags import add_option_arguments, given_options
from .train_cmd import add_augmentation_argument, resolve_config

DEFAULT_TRIALS = 20
MAX_TRIALS = 100_000  # a study of more is a run that never ends


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "sweep", help="search for good training settings (Optuna), trials in parallel (Dask)",
        description="Run an Optuna study (TPE sampler, median pruner on the per-epoch dev accuracy) over "
                    "the options a TOML search space names. Each trial is an ordinary run folder under "
                    "OUT/trials/; OUT/best.toml is the best trial's config (scratchnn train --config "
                    "OUT/best.toml repeats it). Any train flag given fixes that option for every trial. "
                    "Needs the tune extra: pip install 'scratchnn[tune]'.")
    parser.add_argument("--space", metavar="SPACE.toml", default=None,
                        help="the search space: a TOML file, or 'default' for the preset's own (default: default)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                        help=f"the recipe every trial starts from (default: {DEFAULT_PRESET})")
    parser.add_argument("--config", metavar="FILE", type=Path, help="a TOML config every trial starts from")
    parser.add_argument("--trials", metavar="N", type=int, default=None,
                        help=f"trials in the study (default: {DEFAULT_TRIALS}; with --resume: a new total)")
    parser.add_argument("--out", metavar="DIR", type=Path, help="the sweep folder to create")
    parser.add_argument("--resume", metavar="DIR", type=Path,
                        help="continue a stopped sweep; finished trials are kept, not repeated")
    where = parser.add_argument_group("where the trials run")
    where.add_argument("--workers", metavar="N", type=int, default=None,
                       help=f"worker processes on this machine, one BLAS thread each (default: the cores this "
                            f"process may use, {usable_cores()})")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="an existing Dask cluster's scheduler, e.g. tcp://HOST:8786, instead of local workers")
    where.add_argument("--storage", metavar="URL", default="",
                       help="an Optuna storage URL for the study, e.g. postgresql://... (default: the "
                            "journal file OUT/study.log, kept by the Dask scheduler)")
    add_option_arguments(parser, TRAIN_GROUPS, hidden=("threads",))  # every trial: one (NOT_SEARCHED)
    add_augmentation_argument(parser)
    add_data_arguments(parser, "default: --dataset mnist; every trial loads it itself")
    parser.add_argument("--quiet", action="store_true", help="print only the final result")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..tune.parallel import require_tune_extra

    require_tune_extra("a sweep")
    from optuna.trial import TrialState

    from ..tune.parallel import dask_client
    from ..tune.space import NOT_SEARCHED, load_space
    from ..tune.study import BEST_FILE, read_sweep_folder, sweep_lock
    from ..tune.sweep import resume_sweep, run_sweep, start_sweep

    log = (lambda line: None) if args.quiet else print
    if args.workers is not None and args.scheduler:
        raise ConfigError("give --workers (trials on this machine) or --scheduler (a Dask cluster), not both")
    cores = usable_cores()  # local workers are processes here: more than a few a core only wait their turn
    for flag, value, most in (("--trials", args.trials, MAX_TRIALS), ("--workers", args.workers, 4 * cores)):
        if value is not None and value < 1:  # 0 fell through to the default (20 trials, every core)
            raise ConfigError(f"{flag} must be a whole number >= 1, got {value}")
        if value is not None and value > most:  # 10**30 went straight to LocalCluster(n_workers=10**30)
            why = " (4 a core of this machine)" if flag == "--workers" else ""
            raise ConfigError(f"{flag} must be at most {most:,}{why}, got {value:,}"[:160])
    if args.resume:
        given = [option_of(TrainConfig, name).flag for name in given_options(args, (*TRAIN_GROUPS, "data"))]
        given += [f"--{name}" for name in ("space", "preset", "config", "out") if getattr(args, name) is not None]
        given += ["--storage"] if args.storage else []
        if given:
            raise ConfigError(f"--resume continues a sweep with its own space and config; drop {', '.join(given)}")
        # one that holds no sweep is said so, before any lock or cluster
        folder = read_sweep_folder(args.resume, storage_here=not args.scheduler)
        folder_path = folder.path
    else:
        if args.out is None:
            raise ConfigError("give --out DIR, the folder the sweep's trials and best.toml go into")
        if "threads" in given_options(args, TRAIN_GROUPS):
            raise ConfigError(f"--threads: {NOT_SEARCHED['threads']}; drop --threads")
        base = resolve_config(args)
        if not base.dev_size:  # the combinations audit: every trial trained, then "failed: unknown reason" (NaN)
            raise ConfigError("a sweep scores each trial on the dev set, and --dev-size 0 holds none out; give "
                              "--dev-size N (the default 1000), and train the best settings on every image after")
        space = load_space(args.space or "default", base.preset)
        fixed = sorted(set(space.names) & set(given_options(args, TRAIN_GROUPS)))
        if fixed:
            flags = ", ".join(option_of(TrainConfig, name).flag for name in fixed)
            raise ConfigError(f"{flags} fixes what the search space searches ({', '.join(fixed)}); "
                              "drop the flag or the line of the space")
        at_once = None if args.scheduler else args.workers or cores  # what a --resume runs again
        folder = start_sweep(args.out, space, base, args.trials or DEFAULT_TRIALS, args.storage, at_once)
        folder_path = folder.path
    resume = f"continue with 'scratchnn sweep --resume {shell_word(folder_path)}'"
    try:
        workers = args.workers or (folder.workers and min(folder.workers, 4 * cores)) or cores  # as it started
        if args.resume and not (args.workers or args.scheduler or folder.workers):
            log(f"Note: sweep.json does not say how many trials ran at once (an older scratchnn wrote it): "
                f"{cores} at a time; --workers 1 repeats the trials exactly")
        with sweep_lock(folder_path), dask_client(workers, args.scheduler, log) as client:
            if args.resume:
                study = resume_sweep(folder, client, args.trials, log=log)
            else:
                study = run_sweep(folder, client, create=True, log=log)
            complete = study.get_trials(states=(TrialState.COMPLETE,))  # before the cluster goes
    except KeyboardInterrupt:
        if not args.resume and not folder.started:  # stopped while waiting for the cluster: no study yet
            folder.remove_if_unused()
            raise KeyboardInterrupt("no trial had started; run the same command again") from None
        raise KeyboardInterrupt(f"finished trials are kept; {resume}") from None
    except ConfigError:
        if not args.resume:
            folder.remove_if_unused()  # no cluster or no storage: a rerun of the command starts afresh
        raise
    except BrokenPipeError:  # our output piped into `head`, which quit: not the cluster's (main says so)
        raise
    except (OSError, TimeoutError) as error:  # the scheduler went away mid-sweep (CommClosedError is an OSError)
        if isinstance(error, OSError) and error.errno is not None and not isinstance(error, ConnectionError):
            raise  # a file's error (a full disk writing best.toml): not the cluster's
        raise ConfigError(f"lost the Dask cluster ({type(error).__name__}: {error}); finished trials are kept: "
                          f"start it again and {resume}") from None
    best = folder_path / BEST_FILE
    if not complete:
        print(f"No trial finished well in {folder_path}; see the reasons above and in {folder_path}/trials/*/train.log")
        return 1
    trial = max(complete, key=lambda t: (t.value, -t.number))
    print(f"Best: trial {trial.number}, dev accuracy {trial.value:.4f}; its config: {best}")
    found = trial.user_attrs.get("findings", [])  # its errors and warnings
    if found:  # the best of a bad lot: say so before anyone repeats it
        where = folder_path / "trials" / f"{trial.number:04d}"
        print(f"Note: the doctor found {', '.join(found)} in the best trial too (scratchnn doctor "
              f"{shell_word(where)}): the "
              "trials may all share it. Read the finding's fix; if it names a searched option, narrow that range "
              f"in a copy of {folder_path / 'space.toml'} and give it to a new sweep with --space")
    # best.toml says threads = 1, as the trials ran: the same sums in the same order, the same weights
    log(next_steps_lines([(f"scratchnn train --config {shell_word(best)}", "the best trial again, bit for bit", None),
                          (f"scratchnn report {shell_word(folder_path)}",
                           f"the sweep's figures in {folder_path / 'sweep.html'}",
                           "plots")]))
    return 0
