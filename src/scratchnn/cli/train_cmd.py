"""``scratchnn train``: a preset, a config file and flags, in that order of precedence."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..config import ACTIVATIONS, POOLS, TrainConfig
from ..early_stopping import MONITORS
from ..errors import ConfigError
from ..nn import INITIALIZERS
from ..optim import OPTIMIZERS, SCHEDULES
from ..presets import DEFAULT_PRESET, PRESETS, get_preset
from ..run import resume_run, train_run
from .common import add_data_arguments, apply_data_options


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "train", help="train a network and save it in a run folder",
        description="Train a network. Settings come from --preset, then --config, then the flags; "
                    "the resolved config is saved in the run folder so the run can be repeated.")
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                        help=f"a named recipe (default: {DEFAULT_PRESET}); 'seed' is the original tutorial")
    parser.add_argument("--config", metavar="FILE", type=Path, help="a TOML config, e.g. runs/X/config.toml")
    parser.add_argument("--resume", metavar="RUN_DIR", type=Path,
                        help="continue an interrupted run from its checkpoint, with its own config")
    model = parser.add_argument_group("network")
    model.add_argument("--conv", metavar="CHANNELS", type=int_list("channels", 1),
                       help="convolution blocks (conv, activation, 2x2 pooling): output channels, e.g. 32,64")
    model.add_argument("--kernel-size", type=int, metavar="K", help="convolution kernel size K x K")
    model.add_argument("--padding", metavar="P", type=int_list("padding", 0),
                       help="zero padding of each convolution block, e.g. 2,0")
    model.add_argument("--pool", choices=list(POOLS), help="pooling after each convolution")
    model.add_argument("--hidden", metavar="SIZES", type=int_list("hidden sizes", 1),
                       help="dense hidden layer widths, e.g. 10 or 128,64")
    model.add_argument("--activation", choices=list(ACTIVATIONS), help="hidden-layer activation")
    model.add_argument("--init", choices=list(INITIALIZERS), help="weight initialiser")
    model.add_argument("--batchnorm", action=argparse.BooleanOptionalAction, default=None,
                       help="batch normalisation after each hidden Dense layer")
    model.add_argument("--dropout", type=float, metavar="P", help="drop probability after each hidden layer")
    model.add_argument("--input-dropout", type=float, metavar="P", help="drop probability for input pixels")
    model.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                       help="random shifts, rotations, scaling and elastic distortion of every batch")
    optim = parser.add_argument_group("optimisation")
    optim.add_argument("--optimizer", choices=list(OPTIMIZERS), help="update rule")
    optim.add_argument("--lr", type=float, help="learning rate (the peak one, with a schedule)")
    optim.add_argument("--momentum", type=float, help="momentum for sgd and rmsprop, e.g. 0.9")
    optim.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=None,
                       help="Nesterov momentum (sgd)")
    optim.add_argument("--weight-decay", type=float, metavar="L",
                       help="L2 penalty (sgd, rmsprop, adam) or decoupled decay (adamw)")
    optim.add_argument("--schedule", choices=list(SCHEDULES), help="learning-rate schedule")
    optim.add_argument("--warmup", type=float, metavar="EPOCHS", help="linear learning-rate warm-up")
    optim.add_argument("--min-lr", type=float, help="lowest learning rate (cosine, plateau)")
    optim.add_argument("--lr-gamma", type=float, metavar="F",
                       help="decay factor (step, exponential) or reduce factor (plateau)")
    optim.add_argument("--lr-step", type=int, metavar="EPOCHS", help="epochs between step decays")
    loop = parser.add_argument_group("training loop")
    loop.add_argument("--epochs", "--iterations", dest="epochs", type=int, metavar="N",
                      help="passes over the training data (full batch: one iteration each)")
    loop.add_argument("--batch-size", type=int, metavar="N", help="mini-batch size; 0 = full batch")
    loop.add_argument("--dev-size", type=int, metavar="N", help="images held out as the dev set")
    loop.add_argument("--seed", type=int, metavar="N", help="random seed for split, weights, order and dropout")
    loop.add_argument("--eval-every", type=int, metavar="N", help="measure and print every N epochs")
    loop.add_argument("--patience", type=int, metavar="N",
                      help="early stopping: stop after N evaluations without improvement (0 = off)")
    loop.add_argument("--monitor", choices=list(MONITORS), help="what early stopping watches")
    loop.add_argument("--checkpoint-every", type=int, metavar="N",
                      help="write a checkpoint every N evaluations (0 = never)")
    loop.add_argument("--textbook", action=argparse.BooleanOptionalAction, default=None,
                      help="train on the plain textbook code, without the speed machinery (same numbers, slower)")
    add_data_arguments(parser, "default: --dataset mnist")
    output = parser.add_argument_group("output")
    output.add_argument("--out", metavar="DIR", type=Path, help="run folder (default: a new one under runs/)")
    output.add_argument("--quiet", action="store_true", help="print only the final result")
    output.add_argument("--no-report", action="store_true",
                        help="skip the figures and report.html written at the end (see: scratchnn report)")
    parser.set_defaults(run=run)


CONFIG_FLAGS = ("conv", "kernel_size", "padding", "pool", "hidden", "activation", "init", "batchnorm", "dropout",
                "input_dropout", "augment", "optimizer", "lr", "momentum", "nesterov", "weight_decay", "schedule", "warmup", "min_lr", "lr_gamma", "lr_step", "epochs", "batch_size",
                "dev_size", "seed", "eval_every", "patience", "monitor", "checkpoint_every", "textbook")
DATA_FLAGS = ("dataset", "csv", "images", "labels", "data_dir")


def int_list(what: str, minimum: int):
    """An argparse type: '128,64' -> [128, 64], every value >= minimum."""
    def parse(text: str) -> list[int]:
        try:
            values = [int(part) for part in text.split(",") if part.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated integers like 128,64, got {text!r}") from None
        if not values or min(values) < minimum:
            raise argparse.ArgumentTypeError(f"{what} must be integers >= {minimum}, got {text!r}")
        return values
    return parse


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """Preset, then config file, then flags: later ones override earlier ones."""
    if args.config and args.preset:
        raise ConfigError("give --preset or --config, not both (a config file already names its preset)")
    config = TrainConfig.load(args.config) if args.config else get_preset(args.preset or DEFAULT_PRESET)
    changed = {name: getattr(args, name) for name in CONFIG_FLAGS if getattr(args, name) is not None}
    for name, value in changed.items():
        setattr(config, name, value)
    return apply_data_options(config, args).validate()


def run(args: argparse.Namespace) -> int:
    log = (lambda line: None) if args.quiet else print
    if args.resume:
        given = [f"--{name.replace('_', '-')}" for name in (*CONFIG_FLAGS, *DATA_FLAGS, "preset", "config", "out")
                 if getattr(args, name, None) is not None]
        if given:
            raise ConfigError(f"--resume continues a run with its own config; drop {', '.join(given)}")
        result = resume_run(args.resume, log=log, progress=not args.quiet)
    else:
        result = train_run(resolve_config(args), args.out, log=log, progress=not args.quiet)
    if not args.no_report:
        from ..report import write_report  # matplotlib: imported only when drawing

        write_report(result.run_dir, log=log)
    if args.quiet:
        last, test = result.history[-1], result.metrics.get("test_accuracy")
        scores = f"dev accuracy {last.dev_accuracy:.4f}" + ("" if test is None else f", test accuracy {test:.4f}")
        print(f"{scores} in {result.train_seconds:.2f} s; model: {result.model_path}")
    return 0
