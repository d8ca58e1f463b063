"""``scratchnn doctor RUN_DIR``: what went wrong in a run, from its metrics.csv and health.csv;
``scratchnn doctor --rules``: everything the doctor recognises, and when."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..doctor import RULES, diagnose_run
from ..doctor.show import finding_lines, rule_lines
from ..errors import ConfigError
from ..training.run_health import run_settings


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "doctor", help="diagnose a run: why it is stuck, dead, exploding or overfitting",
        description="Read a run folder's metrics.csv and health.csv and print every finding: one line "
                    "starting with its id in brackets, then what is happening inside the network and the "
                    "flags that fix it. Works on any folder with those two tables (see HealthLog).")
    parser.add_argument("run_dir", metavar="RUN_DIR", type=Path, nargs="?", help="a run folder (runs/...)")
    parser.add_argument("--rules", action="store_true",
                        help="list every rule instead: what it means, exactly when it fires, and its fix")
    parser.add_argument("--json", action="store_true", help="print the findings (or rules) as a JSON list")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.rules == (args.run_dir is not None):
        raise ConfigError("give a RUN_DIR to diagnose, or --rules to list what the doctor recognises")
    if args.rules:
        if args.json:
            print(json.dumps([r.to_dict() for r in RULES], indent=2))
        else:
            print("\n\n".join("\n".join(rule_lines(r)) for r in RULES))
        return 0
    settings = run_settings(args.run_dir)
    findings = diagnose_run(args.run_dir, settings)  # fixes in the run's own values
    step = "iteration" if settings is not None and settings.get("batch_size") == 0 else "epoch"
    if args.json:
        print(json.dumps([f.to_dict() for f in findings], indent=2, allow_nan=False, default=str))
        return 0
    if not findings:
        print(f"{args.run_dir}: no findings; the run looks healthy")
    for finding in findings:
        print("\n".join(finding_lines(finding, color=sys.stdout.isatty(), step=step)))
    return 0
