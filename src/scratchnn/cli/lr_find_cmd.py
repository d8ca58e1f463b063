"""``scratchnn lr-find``: the learning-rate range test on a fresh network, a figure, a suggested ``--lr``.

Settings come as for ``train`` (``--preset``, ``--config``, then flags); the network, the
optimizer, the loss and the train split are built as ``train`` builds them from that config, so
the suggestion is for that very run; only its augmentation is left out (the test reads the
images as they are). Nothing is saved but the figure: no model, no run folder. ``--json``
prints what was found as one JSON object (the progress and notes go to stderr), for scripts.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import shlex
import sys
from pathlib import Path

from ..data import scale_pixels
from ..errors import ConfigError, MissingExtra
from ..nn.losses import SoftmaxCrossEntropy
from ..training.blas_threads import blas_threads
from ..training.config import TrainConfig
from ..training.memory import check_training_memory
from ..training.options import SETTING_GROUPS, TRAIN_GROUPS, option_of
from ..training.presets import DEFAULT_PRESET, PRESETS
from ..training.run_data import check_training_data, config_generators, data_source, load_data, run_split
from ..tune.lr_find import MAX_STEPS, MIN_STEPS, LRFindResult, check_settings, lr_find
from .common import add_data_arguments, whole_number_type
from .config_flags import add_option_arguments, given_options
from .train_cmd import add_augmentation_argument, resolve_config

DEFAULT_OUT = Path("lr_find.png")


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "lr-find", help="find a learning rate: the range test on a fresh network",
        description="Train a throwaway copy of the network for a few hundred mini-batches while the learning "
                    "rate grows exponentially; print the suggested --lr and draw the loss against it. "
                    "Settings as for 'scratchnn train'; nothing is saved but the figure.")
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                        help=f"a named recipe (default: {DEFAULT_PRESET})")
    parser.add_argument("--config", metavar="FILE", type=Path, help="a TOML config, e.g. runs/X/config.toml")
    add_option_arguments(parser, SETTING_GROUPS)  # no doctor or faults: nothing is trained to keep
    add_augmentation_argument(parser)
    add_data_arguments(parser, "default: --dataset mnist")
    test = parser.add_argument_group("range test")
    test.add_argument("--steps", type=whole_number_type(MIN_STEPS, "the points of the curve", MAX_STEPS), default=200,
                      metavar="N",
                      help="mini-batches to train at most, one learning rate each (default: 200)")
    test.add_argument("--start-lr", type=positive_type, default=1e-7, metavar="LR",
                      help="the first learning rate (default: 1e-7)")
    test.add_argument("--end-lr", type=positive_type, default=10.0, metavar="LR",
                      help="the last learning rate, if the loss has not diverged before (default: 10)")
    test.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="FILE",
                      help=f"the figure: .png, .svg, .pdf... (default: {DEFAULT_OUT})")
    test.add_argument("--json", action="store_true",
                      help="print what was found as one JSON object, for scripts (the rest goes to stderr)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not args.json:
        _range_test(args)
        return 0
    with contextlib.redirect_stdout(sys.stderr):  # stdout holds the JSON alone
        result, command, figure = _range_test(args)
    print(json.dumps({"suggestion": result.suggestion, "steepest": result.steepest,
                      "min_over_10": result.min_over_10 if result.turned_up else None,
                      "turned_up": result.turned_up, "stopped_early": bool(result.stopped_early),
                      "steps": len(result.lrs), "lowest_loss": result.lowest, "train_command": command,
                      "figure": None if figure is None else str(figure)}, indent=2))
    return 0


def _range_test(args: argparse.Namespace) -> tuple[LRFindResult, str, Path | None]:
    """The range test as the command prints it: (result, the train command, the figure's path or None)."""
    check_settings(start_lr=args.start_lr, end_lr=args.end_lr, steps=args.steps)
    if "lr" in given_options(args, TRAIN_GROUPS):
        raise ConfigError("lr-find measures the learning rate, from --start-lr to --end-lr; drop --lr")
    config = resolve_config(args)
    if not config.batch_size:
        raise ConfigError(f"the {config.preset} config trains on the full batch (batch_size 0); the range test "
                          "needs mini-batches: pass --batch-size N, e.g. --batch-size 128")
    try:  # matplotlib: imported only here, for this command's figure (the suggestion needs none)
        from ..plots import save_figure
        from ..plots.common import figure_format
    except MissingExtra as error:
        save_figure = None
        no_figure = str(error)
    else:
        figure_format(args.out)
    if save_figure and not args.out.parent.is_dir():
        raise ConfigError(f"{args.out}: the folder {args.out.parent} does not exist; create it or choose another --out")
    model, optimizer, x_train, y_train, order = range_test_inputs(config)
    if config.fault:  # a config saved by a run of the break-it lab
        print(f"Note: the range test runs without the config's faults ({', '.join(config.fault)}): it measures "
              "the network as it should be; training with the config keeps them")
    print(f"Model: {model.widths()} ({model.num_parameters:,} parameters{config.describe_network('; ')}), "
        f"{config.describe()}")
    print(f"Range test: lr {args.start_lr:g} to {args.end_lr:g} over up to {args.steps} mini-batches "
          f"of {config.batch_size} ({len(x_train):,} training images)")
    with blas_threads(config.threads):  # --threads 1 repeats the curve bit for bit, as it repeats a run
        result = run_with_progress(model, optimizer, x_train, y_train, order, args, config.batch_size,
                                   config.label_smoothing)
    path = save_figure(result.plot(), args.out) if save_figure else f"none ({no_figure})"
    if result.learned_nothing:  # a flat curve's "steepest" point is noise
        raise ConfigError(f"{result.why_no_suggestion('--steps 200')}. Figure: {path}")
    epochs = same_steps_epochs(args, config, len(x_train))
    # the seed recipe evaluates every 10 iterations: its 8 epochs would be one evaluation, too few for the doctor
    often = epochs is not None and config.eval_every > 1 and epochs // config.eval_every < 5
    command = train_command(args, result.suggestion, epochs, eval_every=1 if often else None,
                            faulted=bool(config.fault))
    print(summary(result, command, path))
    if epochs:
        print(f"(--epochs {epochs}: the {config.preset} recipe's {config.epochs} full-batch iterations, taken as "
              f"{config.epochs} mini-batch steps; its --epochs {config.epochs} would be {config.epochs} passes over "
              "the data)")
    return result, command, path if save_figure else None


def same_steps_epochs(args: argparse.Namespace, config: TrainConfig, rows: int) -> int | None:
    """Epochs of ``config.batch_size`` that take as many steps as the recipe's full-batch
    iterations, when --batch-size turned a full-batch recipe (the seed's 500 iterations) into a
    mini-batch one and --epochs was not given; else None."""
    given = given_options(args, TRAIN_GROUPS)
    if "batch_size" not in given or "epochs" in given:
        return None
    recipe = TrainConfig.load(args.config) if args.config else PRESETS[args.preset or DEFAULT_PRESET]
    if recipe.batch_size:
        return None
    return max(1, math.ceil(config.epochs / math.ceil(rows / config.batch_size)))


def range_test_inputs(config: TrainConfig):
    """(model, optimizer, x_train, y_train, order generator) built from ``config`` as
    ``training.run`` builds a run's: its data source, its seeded train/dev split, its initial
    weights, its optimizer, and the generator that orders its batches. The range test trains on
    the images as they are: a config's augmentation is not applied."""
    source = data_source(config)
    data = load_data(config, source, progress=True)
    check_training_data(data, source, config.transpose)
    check_training_memory(config, data.images.shape, len(data.classes))  # its steps are training steps
    gens = config_generators(config)
    train_images, y_train, _, _ = run_split(config, data.images, data.labels, gens["split"])
    model = config.build_model(gens["init"], image_shape=data.images.shape[1:], num_classes=len(data.classes),
                               layer_rng=gens["layers"])
    print(f"Data: {source.describe()}")
    return model, config.build_optimizer(), scale_pixels(train_images, model.input_shape), y_train, gens["order"]


def run_with_progress(model, optimizer, x_train, y_train, order, args, batch_size: int,
                      label_smoothing: float = 0.0) -> LRFindResult:
    """``lr_find`` with a progress bar on stderr (off unless it is a terminal), on train's loss
    (label smoothing included)."""
    from tqdm.auto import tqdm

    # disable=None: tqdm shows the bar only when stderr is a terminal
    with tqdm(total=args.steps, desc="Range test", unit="batch", leave=False, dynamic_ncols=True,
              disable=None) as bar:
        def on_step(i: int, lr: float, loss: float) -> None:
            bar.set_postfix_str(f"lr {lr:.2g} loss {loss:.3f}", refresh=False)
            bar.update(1)

        return lr_find(model, optimizer, x_train, y_train, start_lr=args.start_lr, end_lr=args.end_lr,
                       steps=args.steps, batch_size=batch_size, rng=order, on_step=on_step,
                       loss_fn=SoftmaxCrossEntropy(label_smoothing))


def summary(result: LRFindResult, command: str, figure: Path | str) -> str:
    """What the test found, the suggestion, the command to use it and where the figure is."""
    last = result.lrs[-1]
    how = (f"Stopped after {len(result.lrs)} steps at lr {last:.2g}: the smoothed loss passed 4x its minimum"
           if result.stopped_early else
           f"Ran all {len(result.lrs)} steps up to lr {last:.2g}; the smoothed loss never passed 4x its minimum "
           "(a loss back at chance is not past it)")
    return "\n".join([
        how,
        (f"Suggested --lr {result.suggestion:.2g}: halfway, on the log scale, between the steepest descent of the "
         f"smoothed loss ({result.steepest:.2g}) and the lowest-loss/10 rule ({result.min_over_10:.2g})"
         if result.turned_up else
         f"Suggested --lr {result.suggestion:.2g} (steepest descent of the smoothed loss); the lowest-loss/10 rule "
         "needs the loss to turn up, and it had not by the end: raise --end-lr to see it"),
        f"Train with it:  {command}",
        f"Figure: {figure}"])


def train_command(args: argparse.Namespace, lr: float, epochs: int | None = None,
                  eval_every: int | None = None, faulted: bool = False) -> str:
    """``scratchnn train`` with the settings this command was given and ``--lr lr`` (and ``--epochs``,
    ``--eval-every``; ``--fault none`` for a config file with faults, ``faulted``, which the test left out)."""
    words = ["scratchnn", "train"]
    if args.preset or not args.config:
        words += ["--preset", args.preset or DEFAULT_PRESET]
    if args.config:
        words += ["--config", str(args.config)]
    given = {**given_options(args, TRAIN_GROUPS), **given_options(args, ("data",))}
    for name, value in given.items():
        if name == "lr":
            continue
        flag = option_of(TrainConfig, name).flag
        if isinstance(value, bool):
            words.append(flag if value else "--no-" + flag[2:])
        else:
            words += [flag, ",".join(map(str, value)) if isinstance(value, list) else f"{value:g}"
                      if isinstance(value, float) else str(value)]
    if faulted:  # the range test left them out: so does the run
        words += ["--fault", "none"]
    if args.augmentation:  # the whole table it resolved to, written out
        words += ["--augmentation", ",".join(f"{name}={value:g}" for name, value in args.augmentation.items())]
    return shlex.join([*words, *(["--epochs", str(epochs)] if epochs else []),
                       *(["--eval-every", str(eval_every)] if eval_every else []), "--lr", f"{lr:.2g}"])


def positive_type(text: str) -> float:
    """An argparse type: a finite number > 0 (argparse names the flag in its error)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value
