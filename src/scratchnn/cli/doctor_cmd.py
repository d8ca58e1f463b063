"""``scratchnn doctor RUN_DIR``: what went wrong in a run, from its metrics.csv and health.csv;
``scratchnn doctor --rules``: everything the doctor recognises, and when."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..doctor import RULES, diagnose_run
from ..doctor.faults import FAULTS
from ..doctor.findings import SEVERITIES
from ..doctor.show import finding_lines, no_findings, rule_lines
from ..doctor.signals import HEALTH_FILE, METRICS_FILE, read_health_csv, read_metrics_csv
from ..ensemble import refuse_sweep_folder
from ..errors import ConfigError, DoctorStopped, ScratchnnError, shell_word
from ..training.architecture import layer_specs
from ..training.checkpoint import CHECKPOINT_FILE
from ..training.config import CONFIG_FILE, TrainConfig
from ..training.run_health import more_epochs_may_help, run_settings, still_learning_in


FAIL_CODE = DoctorStopped.exit_code  # "the doctor found a problem", as train --doctor strict says it


def add_parser(commands) -> None:
    parser = commands.add_parser(  # no abbreviations: train's --fault NAME was read as --faults, then "NAME?"
        "doctor", allow_abbrev=False, help="diagnose a run: why it is stuck, dead, exploding or overfitting",
        description="Read a run folder's metrics.csv and health.csv and print every finding: one line "
                    "starting with its id in brackets, then what is happening inside the network and the "
                    "flags that fix it. Works on any folder with those two tables (see HealthLog).")
    parser.add_argument("run_dir", metavar="RUN_DIR", type=Path, nargs="?", help="a run folder (runs/...)")
    parser.add_argument("--rules", action="store_true",
                        help="list every rule instead: what it means, exactly when it fires, and its fix")
    parser.add_argument("--faults", action="store_true",
                        help="list the break-it lab's faults instead (scratchnn train --fault NAME): what each breaks")
    parser.add_argument("--json", action="store_true", help="print the findings (or rules) as a JSON list")
    parser.add_argument("--fail-on", choices=SEVERITIES, metavar="LEVEL",
                        help=f"exit with code {FAIL_CODE} when a finding is at least this severe "
                             f"({', '.join(SEVERITIES)}, the most severe first), for scripts and CI; "
                             "default: exit 0 whatever is found")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.fail_on and (args.rules or args.faults):
        raise ConfigError("--fail-on goes with a RUN_DIR to diagnose, not with --rules or --faults")
    if args.faults:
        if args.rules or args.run_dir is not None:
            raise ConfigError("--faults lists the lab's faults on its own; give it without RUN_DIR or --rules")
        if args.json:
            print(json.dumps([{"name": f.name, "what": f.what, "command": f.command} for f in FAULTS.values()],
                             indent=2))
        else:
            width = max(map(len, FAULTS))
            print("\n".join(f"{f.name:<{width}}  {f.what}\n{'':<{width}}  {f.command}" for f in FAULTS.values()))
            print("\nEach command breaks a run on purpose where the fault shows best (add --csv or --images/--labels "
                  "for your digits); the doctor is not told, and names the cause itself.")
        return 0
    if args.rules and args.run_dir is not None:
        raise ConfigError("give a RUN_DIR to diagnose or --rules to list what the doctor recognises, not both")
    if not args.rules and args.run_dir is None:
        raise ConfigError("give a RUN_DIR to diagnose, or --rules to list what the doctor recognises")
    if args.rules:
        if args.json:
            print(json.dumps([r.to_dict() for r in RULES], indent=2))
        else:
            print("\n\n".join("\n".join(rule_lines(r)) for r in RULES))
        return 0
    folders, unread = run_folders(args.run_dir), []
    if len(folders) == 1:
        reports = {folders[0]: diagnosed(folders[0])}
    else:  # one run it cannot read is said, and the others diagnosed (the many-runs audit: the first stopped all)
        reports = {}
        for folder in folders:
            try:
                reports[folder] = diagnosed(folder)
            except (ScratchnnError, OSError) as error:
                unread.append(folder)
                print(f"{folder}: cannot be diagnosed: {error}", file=sys.stderr)
        if unread:
            print(f"{len(unread)} of {len(folders)} runs could not be diagnosed (above)", file=sys.stderr)
    worst = min((SEVERITIES.index(f.severity) for findings in reports.values() for f in findings), default=None)
    failed = FAIL_CODE if args.fail_on and worst is not None and worst <= SEVERITIES.index(args.fail_on) else 0
    failed = failed or (1 if unread else 0)  # the rest said, the command still did not do all its work
    if args.json:
        # every item names its run folder, an ensemble member's or the one given: one shape for scripts
        found = [finding.to_dict() | {"run": str(folder)}
                 for folder, findings in reports.items() for finding in findings]
        print(json.dumps(found, indent=2, allow_nan=False, default=str))
        for folder, findings in reports.items():  # what the text says beside the findings: on stderr, as notes
            note = still_learning_in(folder, run_settings(folder))
            if note and more_epochs_may_help(findings):
                print(f"{folder}: {note}" if len(folders) > 1 else note, file=sys.stderr)
        return failed
    for folder, findings in reports.items():
        if not findings and not read_health_csv(folder / HEALTH_FILE):
            print(f"{folder}: no findings, and nothing to examine: its {HEALTH_FILE} has no rows (a run stopped "
                  "before its first evaluation, or a table cut short)")
        elif not findings:
            short = stopped_short(folder)
            print(f"{folder}: {no_findings(len(read_metrics_csv(folder / METRICS_FILE)), bool(short))}{short}")
        elif len(folders) > 1:
            print(f"{folder}:")
        for finding in findings:
            print("\n".join(finding_lines(finding, color=sys.stdout.isatty())))
        if any(finding.layer for finding in findings):
            print(layer_legend(folder))
        note = still_learning_in(folder, run_settings(folder))  # as train ended with it: "healthy" is not "done"
        if note and more_epochs_may_help(findings):
            print(note)
    return failed


def stopped_short(folder: Path) -> str:
    """', so far: it stopped at epoch 11 of 30 ...' for a run that ended before its --epochs, else ''."""
    settings = run_settings(folder)
    epochs = settings.get("epochs") if settings is not None else None
    try:
        rows = read_metrics_csv(folder / METRICS_FILE)
    except (ScratchnnError, OSError):
        return ""
    if not epochs or not rows or rows[-1]["epoch"] >= epochs:
        return ""
    step = "iteration" if settings.get("batch_size") == 0 else "epoch"
    return (f", as far as it went: it stopped at {step} {rows[-1]['epoch']} of {epochs} (interrupted, "
            "or early stopping)")


def layer_legend(folder: Path) -> str:
    """What the findings' layer numbers count, from the run's config ('' without one, or for a run
    with faults, which may build another network): train prints the widths (784 -> 512 -> 10), the
    doctor numbers every layer, dropout and activations included, as ``print(model)`` does."""
    try:
        config = TrainConfig.load(folder / CONFIG_FILE)
        _, specs = layer_specs(config, num_classes=int(read_model_classes(folder) or 10))
    except (OSError, ScratchnnError):
        return ""
    if config.fault:
        return ""
    def named(index: int, kind: type, args: dict) -> str:
        size = args.get("out_features") or args.get("out_channels")
        what = "maps" if "out_channels" in args else "units"
        return f"{index}.{kind.__name__}" + (f" ({size} {what})" if size else "")
    return "Layers, as the findings number them: " + ", ".join(named(i, *spec) for i, spec in enumerate(specs))


def read_model_classes(folder: Path) -> float | None:
    """The network's class count as health.csv records it (epoch 0's ``classes``), if it does."""
    return next((row.value for row in read_health_csv(folder / HEALTH_FILE)
                 if row.layer == "model" and row.signal == "classes"), None)


def run_folders(path: Path) -> list[Path]:
    """The run folder to diagnose, or each member of a folder of runs (``train --seeds``); a
    ConfigError that names what ``path`` is otherwise."""
    if not path.exists():
        raise ConfigError(f"{path}: no such folder; give a run folder (runs/...)")
    if not path.is_dir() and not ((path.parent / METRICS_FILE).exists() or (path.parent / CONFIG_FILE).exists()):
        raise ConfigError(f"{path} is a file, not a run folder; give a run folder made by 'scratchnn train'")
    if not path.is_dir():
        raise ConfigError(f"{path} is a file; give the run folder that holds it ({path.parent})")
    if (path / METRICS_FILE).exists() or (path / CONFIG_FILE).exists():
        return [path]
    refuse_sweep_folder(path)
    members = sorted((sub for sub in path.iterdir() if _holds_metrics(sub)), key=lambda p: p.name)
    if not members:
        raise ConfigError(f"{path}: not a run folder (no {METRICS_FILE}); give a folder made by 'scratchnn train'")
    return members


def _holds_metrics(folder: Path) -> bool:
    """Whether ``folder`` has a metrics.csv, or cannot be looked into (a folder of mode 000, which
    ``diagnosed`` then names among those it cannot read: the review)."""
    try:
        return (folder / METRICS_FILE).exists()
    except OSError:
        return folder.is_dir()


def _recorded(folder: Path) -> dict:
    """The settings the run's config.toml holds as written ({} without a readable one)."""
    try:
        return TrainConfig.read_file(folder / CONFIG_FILE)
    except (OSError, ScratchnnError):
        return {}


def diagnosed(folder: Path):
    """The findings of one run folder; one that trained with --doctor off is named as such."""
    notes: list[str] = []
    settings = run_settings(folder, notes)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if settings is not None and settings.get("doctor") == "off" and not (folder / HEALTH_FILE).exists():
        raise ConfigError(f"{folder} trained with --doctor off, so it recorded no {HEALTH_FILE}; "
                          "train it again with --doctor on to diagnose it")
    recorded = _recorded(folder) if not (folder / HEALTH_FILE).exists() else {}
    if recorded and "doctor" not in recorded:
        raise ConfigError(f"{folder}: a version from before the doctor (2026-12-03) trained it, so it recorded no "
                          f"{HEALTH_FILE}; to diagnose the run, train it again: scratchnn train --config "
                          f"{shell_word(folder / CONFIG_FILE)}")  # it said "a run folder ... has it"
    if not (folder / METRICS_FILE).exists() and (folder / CHECKPOINT_FILE).exists():  # the crash audit
        raise ConfigError(f"{folder}: the run stopped before its first evaluation (no {METRICS_FILE} yet), so there "
                          f"is nothing to diagnose; continue it with: scratchnn train --resume {shell_word(folder)}")
    return diagnose_run(folder, settings)  # fixes in the run's own values
