"""``scratchnn train``: a preset, a config file and flags, in that order of precedence."""
from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path

from ..data.augment import KINDS, Augmentation
from ..data.load import DIGITS
from ..errors import (ConfigError, MissingExtra, OutputClosed, RunInterrupted, RunNotSaved, ScratchnnError,
                      os_error_message, shell_word)
from ..io import MODEL_FILE
from ..training import ensemble_run, presets
from ..training.checkpoint import CHECKPOINT_FILE, MAY_CHANGE
from ..training.config import CONFIG_FILE, TrainConfig
from ..training.options import TRAIN_GROUPS, option_of
from ..training.presets import DEFAULT_PRESET, PRESETS
from ..training.run import REPORT_FILE, how_it_ended, new_run_dir, resume_run, run_finished, train_run
from ..training.run_data import not_28x28
from .common import add_data_arguments, next_steps_lines
from .config_flags import add_option_arguments, given_options, not_blank, table_type

AUGMENTATION = [field.name for field in dataclasses.fields(Augmentation)]


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "train", help="train a network and save it in a run folder",
        description="Train a network. Settings come from --preset, then --config, then the flags; "
                    "the resolved config is saved in the run folder so the run can be repeated. A flag's "
                    "value unless given is the preset's: --print-config shows them all (e.g. "
                    "'scratchnn train --preset seed --print-config').")
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                        help=f"a named recipe (default: {DEFAULT_PRESET}); 'seed' is the original tutorial")
    parser.add_argument("--config", metavar="FILE", type=Path, help="a TOML config, e.g. runs/X/config.toml")
    parser.add_argument("--resume", metavar="RUN_DIR", type=Path,
                        help="continue an interrupted run from its checkpoint, with its own config")
    add_option_arguments(parser, TRAIN_GROUPS)
    add_augmentation_argument(parser)
    add_data_arguments(parser, "default: --dataset mnist")
    parser.add_argument("--seeds", metavar="S1,S2,...", type=seeds_type,
                        help="train an ensemble: one member per seed, one after another, into RUN/seed-S/ "
                             "(evaluate, predict and serve take RUN as the ensemble)")
    output = parser.add_argument_group("output")
    output.add_argument("--out", metavar="DIR", type=not_blank(Path),
                        help="run folder (default: a new one under runs/)")
    output.add_argument("--quiet", action="store_true",
                        help="print only the final result (and, on stderr, the doctor's errors and warnings)")
    output.add_argument("--no-report", action="store_true",
                        help="skip the figures and report.html written at the end (see: scratchnn report)")
    output.add_argument("--print-config", action="store_true",
                        help="print the resolved config as TOML (as config.toml will hold it, the augmentation "
                             "written out) and stop; save it, edit it, train with --config FILE")
    parser.set_defaults(run=run)


def add_augmentation_argument(parser: argparse.ArgumentParser) -> None:
    """``--augmentation NAME=VALUE,...``, for every command that resolves a config as train does."""
    kinds = {kind: augmentation.to_dict() for kind, augmentation in KINDS.items()}
    parser.add_argument("--augmentation", metavar="NAME=VALUE,...", action=MergedTables,
                        type=table_type("--augmentation", AUGMENTATION, bases=kinds),
                        help="change what --augment draws, e.g. rotate=5,p=0.5 (the rest stay the dataset's default, "
                             "or the config file's), or start from a kind's whole table: clothes (mirrors only, "
                             "for a CSV of Fashion-MNIST) or digits, e.g. clothes,p=0.8; names: "
                             + ", ".join(AUGMENTATION))


class MergedTables(argparse.Action):
    """A table flag given twice keeps both: ``--augmentation rotate=5 --augmentation p=0.1`` is
    rotate=5,p=0.1 (the second used to replace the first, without a word); a later value of the
    same setting wins, as a later flag does."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, {**(getattr(namespace, self.dest) or {}), **values})


def resolve_config(args: argparse.Namespace, log=print) -> TrainConfig:
    """Preset, then config file, then flags: later ones override earlier ones (``presets.resolve_config``)."""
    settings = given_options(args, TRAIN_GROUPS) | ({"augmentation": args.augmentation} if args.augmentation else {})
    return presets.resolve_config(args.preset, settings, given_options(args, ("data",)), config_file=args.config,
                                  log=log)


def run(args: argparse.Namespace) -> int:
    try:
        return _train(args)
    except (RunInterrupted, RunNotSaved, OutputClosed) as stopped:  # its command keeps the report off, as the run did
        if not args.no_report:
            raise
        raise stopped.with_flags(" --no-report") from None


def _train(args: argparse.Namespace) -> int:
    log = (lambda line: None) if args.quiet else print
    if args.resume:
        options = given_options(args, (*TRAIN_GROUPS, "data"))
        given = [option_of(TrainConfig, name).flag for name in options]
        given += [f"--{name}" for name in ("preset", "config", "out", "seeds", "augmentation")
                  if getattr(args, name) is not None]
        given += ["--print-config"] * args.print_config  # the run's own is its config.toml
        if given:  # what may change is changed in its config.toml (the resume audit: "drop --threads" alone)
            editable = [name for name in options if name in MAY_CHANGE]
            where = shell_word(Path(args.resume) / CONFIG_FILE)
            also = f" ({', '.join(editable)} may be changed in {where} before resuming)" if editable else ""
            raise ConfigError(f"--resume continues a run with its own config; drop {', '.join(given)}{also}")
        if ensemble_run.recorded_seeds(Path(args.resume)) is not None:
            return train_members(args, log, resume=Path(args.resume))
        if run_finished(args.resume) and (args.no_report or (Path(args.resume) / REPORT_FILE).exists()):
            # nothing to do is done: a job scheduler that starts a finished job again sees success
            ended = how_it_ended(Path(args.resume))
            print(f"{args.resume}: the run had already finished{ended}; nothing to train. For more epochs, start a new "
                  f"run: scratchnn train --config {shell_word(Path(args.resume) / CONFIG_FILE)} --epochs N",
                  file=sys.stderr)
            return 0
        result = resume_run(args.resume, log=log, progress=not args.quiet, report=not args.no_report)
    elif args.print_config:
        if args.seeds:  # the combinations audit: it printed seed = 0, and the seeds went without a word
            raise ConfigError("--print-config prints one run's config, and --seeds is not a setting of it: each member "
                              "is that config with its own seed; print it without --seeds, then train with "
                              "--config FILE --seeds ...")
        notes = (lambda line: None) if args.quiet else (lambda line: print(line, file=sys.stderr))  # stdout: TOML
        config = resolve_config(args, notes).with_augmentation_recorded()
        print("# scratchnn train --config FILE trains with this\n" + config.to_toml(), end="")
        return 0
    elif args.seeds:
        return train_members(args, log)
    else:
        result = train_run(resolve_config(args, log), args.out, log=log, progress=not args.quiet)
    return finish(args, result, log)


def finish(args: argparse.Namespace, result, log) -> int:
    """The report, the next steps and (with --quiet) the one-line result of a trained run."""
    reported = not args.no_report
    if reported:
        from ..insight.report import write_report  # matplotlib: imported only when drawing

        try:
            write_report(result.run_dir, log=log)
        except KeyboardInterrupt:
            raise RunInterrupted(result.run_dir) from None
        except MissingExtra as error:  # the model is saved: no figures is a note, not a failed run
            log(f"Note: no report.html: {error}")
            reported = False
        except MemoryError:  # the run is done: it was told to train smaller (the resource audit)
            log(f"Note: no report.html: drawing it ran out of memory; the model is saved, and 'scratchnn report "
                f"{shell_word(result.run_dir)}' draws it once more memory is free")
            reported = False
        except OSError as error:  # a full disk: the run is saved, only its figures are not
            if error.filename is None:
                raise
            raise ScratchnnError(f"{os_error_message(error)}; the model is saved in {result.run_dir}: draw its "
                                 f"report once that is mended, with 'scratchnn report "
                                 f"{shell_word(result.run_dir)}'") from None
    log(next_steps(result.run_dir, report=reported, classes=result.classes, image_shape=result.image_shape,
                   broken=broken_on_purpose(result.run_dir), dev_set=result.metrics.get("dev_samples") != 0))
    if args.quiet:  # quiet hides progress, not trouble: the doctor's errors and warnings still reach stderr
        for finding in result.findings:
            if finding.severity != "advice":
                print(finding.line(), file=sys.stderr)
        test = result.metrics.get("test_accuracy")
        dev = result.history[-1].dev_accuracy if result.history else result.metrics.get("dev_accuracy", float("nan"))
        scores = (f"dev accuracy {dev:.4f}" if result.metrics.get("dev_samples") != 0 else  # not 'nan'
                  f"no dev set (--dev-size 0), train accuracy {result.metrics.get('train_accuracy', math.nan):.4f}")
        scores += "" if test is None else f", test accuracy {test:.4f}"
        print(f"{scores} in {result.train_seconds:.2f} s; model: {result.model_path}")
    return 0


def seeds_type(text: str) -> list[int]:
    """'0,1,2' -> [0, 1, 2]: two or more different seeds >= 0."""
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated seeds like 0,1,2, got {text!r}") from None
    if len(seeds) < 2 or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"an ensemble needs two or more different seeds >= 0, got {text!r}")
    return seeds


def train_members(args: argparse.Namespace, log, resume: Path | None = None) -> int:
    """``--seeds``: the same config once per seed, each an ordinary run folder in RUN/seed-S/;
    ``resume``: complete the ensemble in that folder (``--resume`` of a folder of members)."""
    if resume is not None:
        ensemble, members = resume, ensemble_run.resume_members(resume, log, progress=not args.quiet,
                                                             report=not args.no_report)
    else:
        config = resolve_config(args, log)
        if args.seed is not None:
            raise ConfigError("give --seed for one run or --seeds for an ensemble, not both")
        ensemble = Path(args.out) if args.out else new_run_dir(f"{config.preset}-ensemble")
        members = ensemble_run.train_members(config, args.seeds, ensemble, log, progress=not args.quiet)
    try:
        for result in members:
            finish(args, result, log)
    except KeyboardInterrupt:  # the member's checkpoint is kept; the ensemble is what to go on with
        # (with --checkpoint-every 0 there is none: the combinations audit, it "kept its last checkpoint")
        done = sorted(model.parent.name for model in ensemble.glob(f"*/{MODEL_FILE}"))
        kept = f"its finished members are kept: {', '.join(done)}" if done else ""  # the review: not all over again
        raise RunInterrupted(ensemble, any(ensemble.glob(f"*/{CHECKPOINT_FILE}")), kept=kept) from None
    except OutputClosed:  # (piped into `head`): likewise, the ensemble is what to go on with
        raise OutputClosed(ensemble, any(ensemble.glob(f"*/{CHECKPOINT_FILE}"))) from None
    seeds = ensemble_run.recorded_seeds(ensemble) or []
    try:  # from the members' config, which a resume of finished members has too (the review)
        dev_set = bool(TrainConfig.load(ensemble_run.member_dir(ensemble, seeds[0]) / CONFIG_FILE).dev_size)
    except (OSError, ScratchnnError, IndexError):
        dev_set = True
    # --dev-size 0: evaluate's dev set is empty (the combinations audit), as a single run's next step says
    log(f"Ensemble of {len(seeds)} in {ensemble}: scratchnn evaluate {shell_word(ensemble)}"
        + ("" if dev_set else " --set train"))
    return 0


def broken_on_purpose(run_dir: Path) -> bool:
    """Whether the run in ``run_dir`` was trained with --fault, from its config.toml (a --resume's
    flags do not say; the review: a resumed fault run was offered to be served)."""
    try:
        return bool(TrainConfig.load(run_dir / CONFIG_FILE).fault)
    except (OSError, ScratchnnError):
        return False


def next_steps(run_dir: Path, report: bool, classes=DIGITS, image_shape=(28, 28), broken: bool = False,
               dev_set: bool = True) -> str:
    """What a learner can do with a finished run, as commands to copy: photos and the page only
    for a model of 28x28 images (the size they make), in words of its ``classes``; for a run
    ``broken`` on purpose (--fault), the doctor's findings instead of photos and the page (the
    packaging audit: a broken model was offered to be served). The folder quoted for a shell
    where its name needs it (spaces, '<', '$'...)."""
    run, page = shell_word(run_dir), shell_word(run_dir / "report.html")  # ./-d, not the flag -d
    steps = [(f"open {page}", "the run's figures on one page", None)] if report else []
    steps.append((f"scratchnn evaluate {run}" + ("" if dev_set else " --set train"),  # no dev images: --dev-size 0
                  "accuracy per class, confusion matrix", None))
    if broken:
        steps.append((f"scratchnn doctor {run}", "what the doctor found, and the fix of each", None))
    elif not not_28x28(image_shape, ()):  # not any 784 pixels: 16x49 is no photo
        digits = tuple(classes) == DIGITS
        steps += [(f"scratchnn predict {run} {'my-digit' if digits else 'my-drawing'}.png",
                   "your own handwriting", None),
                  (f"scratchnn serve {run}", f"draw {'digits' if digits else 'one'} at http://127.0.0.1:8000",
                   "web")]
    return next_steps_lines(steps)
