"""``scratchnn doctor RUN_DIR``: what went wrong in a run, from its metrics.csv and health.csv."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..doctor import diagnose_run
from ..doctor.show import finding_lines


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "doctor", help="diagnose a run: why it is stuck, dead, exploding or overfitting",
        description="Read a run folder's metrics.csv and health.csv and print every finding: one line "
                    "starting with its id in brackets, then what is happening inside the network and the "
                    "flags that fix it. Works on any folder with those two tables (see HealthLog).")
    parser.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="a run folder (runs/...)")
    parser.add_argument("--json", action="store_true", help="print the findings as a JSON list")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    findings = diagnose_run(args.run_dir)
    if args.json:
        print(json.dumps([f.to_dict() for f in findings], indent=2, allow_nan=False, default=str))
        return 0
    if not findings:
        print(f"{args.run_dir}: no findings; the run looks healthy")
    for finding in findings:
        print("\n".join(finding_lines(finding, color=sys.stdout.isatty())))
    return 0
