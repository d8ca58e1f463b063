"""``scratchnn train``: a preset, a config file and flags, in that order of precedence."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..config import TrainConfig
from ..errors import ConfigError
from ..presets import DEFAULT_PRESET, PRESETS, get_preset
from ..run import train_run
from .common import add_data_arguments, apply_data_options


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "train", help="train a network and save it in a run folder",
        description="Train a network. Settings come from --preset, then --config, then the flags; "
                    "the resolved config is saved in the run folder so the run can be repeated.")
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                        help=f"a named recipe (default: {DEFAULT_PRESET}); 'seed' is the original tutorial")
    parser.add_argument("--config", metavar="FILE", type=Path, help="a TOML config, e.g. runs/X/config.toml")
    model = parser.add_argument_group("model and optimisation")
    model.add_argument("--hidden", metavar="SIZES", type=hidden_sizes,
                       help="hidden layer widths, e.g. 10 or 128,64")
    model.add_argument("--lr", type=float, help="learning rate")
    model.add_argument("--epochs", "--iterations", dest="epochs", type=int, metavar="N",
                       help="passes over the training data (full batch: one iteration each)")
    model.add_argument("--batch-size", type=int, metavar="N", help="mini-batch size; 0 = full batch")
    model.add_argument("--dev-size", type=int, metavar="N", help="images held out as the dev set")
    model.add_argument("--seed", type=int, metavar="N", help="random seed for split, weights and order")
    add_data_arguments(parser, "default: --dataset mnist")
    output = parser.add_argument_group("output")
    output.add_argument("--out", metavar="DIR", type=Path, help="run folder (default: a new one under runs/)")
    output.add_argument("--quiet", action="store_true", help="print only the final result")
    parser.set_defaults(run=run)


def hidden_sizes(text: str) -> list[int]:
    """'128,64' -> [128, 64]"""
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 128,64, got {text!r}") from None
    if not sizes or min(sizes) <= 0:
        raise argparse.ArgumentTypeError(f"hidden sizes must be positive integers, got {text!r}")
    return sizes


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """Preset, then config file, then flags: later ones override earlier ones."""
    if args.config and args.preset:
        raise ConfigError("give --preset or --config, not both (a config file already names its preset)")
    config = TrainConfig.load(args.config) if args.config else get_preset(args.preset or DEFAULT_PRESET)
    flags = {name: getattr(args, name) for name in ("hidden", "lr", "epochs", "batch_size", "dev_size", "seed")}
    changed = {name: value for name, value in flags.items() if value is not None}
    for name, value in changed.items():
        setattr(config, name, value)
    return apply_data_options(config, args).validate()


def run(args: argparse.Namespace) -> int:
    config = resolve_config(args)
    log = (lambda line: None) if args.quiet else print
    result = train_run(config, args.out, log=log, progress=not args.quiet)
    if args.quiet:
        last = result.history[-1]
        print(f"dev accuracy {last.dev_accuracy:.4f} in {result.train_seconds:.2f} s; model: {result.model_path}")
    return 0
