"""``scratchnn report``: a run's figures as PNG files and one self-contained HTML page."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError
from .common import add_data_arguments, add_set_argument
from .config_flags import given_options


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "report", help="draw a run's figures and write report.html",
        description="Write the training curves, confusion matrix, per-class accuracy, most confident "
                    "mistakes, a prediction sheet and the first-layer weights of a run as PNG files, "
                    "plus report.html, one page that embeds them all and opens offline.")
    parser.add_argument("run_dir", metavar="RUN_DIR", type=Path,
                        help="a run folder made by 'scratchnn train' (runs/<name>/), or a sweep folder "
                             "(scratchnn sweep --out DIR: writes DIR/sweep.html)")
    add_set_argument(parser)
    add_data_arguments(parser, "default: the data the run was trained on; give it when that file moved")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if (args.run_dir / "sweep.json").is_file():  # a sweep folder: sweep.html (the tune extra)
        if given_options(args, ("data",)):
            raise ConfigError("a sweep's report reads its trials' own runs: leave the data flags out")
        from ..tune.parallel import require_tune_extra

        require_tune_extra("a sweep folder's report")
        import matplotlib

        matplotlib.use("Agg")  # this process draws files only (Optuna draws with pyplot)
        from ..insight.sweep_report import write_sweep_report

        write_sweep_report(args.run_dir)
        return 0
    from ..insight.report import write_report  # matplotlib only for this command

    write_report(args.run_dir, which=args.set, data=given_options(args, ("data",)))
    return 0
