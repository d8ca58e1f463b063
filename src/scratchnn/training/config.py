"""TrainConfig: every choice a training run makes, readable and writable as TOML.

The resolved config is saved in the run folder (``config.toml``) and in the model file, so
``scratchnn train --config runs/X/config.toml`` repeats run X.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import re
import textwrap
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.augment import Augmentation, augmentation_for
from ..data.load import named_classes
from ..data.sources import DATASETS, get_dataset
from ..doctor.faults import FAULTS
from ..errors import ConfigError, huge_number, names_in_message, undecodable_name
from ..files import atomic_write_bytes, read_small_text
from ..model import Sequential
from ..nn.dropout import MAX_P
from ..nn.init import INITIALIZERS
from ..optim import OPTIMIZERS, SCHEDULES, make_optimizer, make_schedule
from ..optim.schedule_options import OPTION_USERS, check_schedule_options
from ..optim.schedule_state import MAX_RATE
from .architecture import ACTIVATIONS, POOLS, build_model, layer_specs
from .early_stopping import MONITORS, EarlyStopping
from .options import SHA256_FORM, fits_kind, kind_words, option, option_of, options_of, unknown_setting_hint

DOCTOR_MODES = ("off", "on", "strict")
CONFIG_FILE = "config.toml"  # in every run folder: the whole config, written before the first epoch
# when a convolution option applies, and the rule in words for the note when it is set without --conv
CONV_ONLY = {"applies": lambda c: bool(c.conv), "applies_to": "only to networks with convolutions (--conv)"}
MAX_CONFIG_BYTES = 64 * 1024  # a config.toml is ~2 kB; refuse to read a huge file


def _schedule_uses(key: str):
    return lambda config: config.schedule in OPTION_USERS[key]


def plural(value: float, word: str) -> str:
    """'1 epoch', '2.5 epochs'."""
    return f"{value:g} {word}{'' if value == 1 else 's'}"


# The schedule keys each option feeds (make_schedule's names), for the one cross-field rule.
SCHEDULE_KEYS = {"warmup": ("warmup_epochs",), "lr_gamma": ("gamma", "factor"), "lr_step": ("step_epochs",),
                 "min_lr": ("min_lr",)}


@dataclass
class TrainConfig:
    """A training run. ``batch_size = 0`` means full batch (one update per epoch, as the seed).

    Zero switches an option off: ``dropout = 0``, ``patience = 0`` (no early stopping),
    ``warmup = 0``, ``checkpoint_every = 0``; ``lr_gamma = 0`` and ``lr_step = 0`` pick the
    schedule's default. Every field is declared once with its flag, help, range and the rule
    of when it applies (``scratchnn.training.options``); flags, checks and reports are made from that.
    """

    preset: str = option("custom", "the named recipe this config started from", group=None)
    # convolutional blocks first (none for an MLP): Conv2D -> [BatchNorm2d] -> activation -> pooling 2x2 each
    conv: list[int] = option([], "convolution blocks (conv, activation, 2x2 pooling): output channels, e.g. 32,64",
                             group="network", metavar="CHANNELS", low=1)
    kernel_size: int = option(3, "convolution kernel size K x K", group="network", metavar="K", low=1, **CONV_ONLY)
    conv_repeat: int = option(1, "convolutions per block before its pooling (VGG-style: 2)", group="network",
                              metavar="N", low=1, high=4, **CONV_ONLY,
                              summary=lambda v: "" if v == 1 else f"{v} convolutions per block")
    padding: list[int] = option([], "zero padding of each convolution block, e.g. 2,0 (empty: none)",
                                group="network", metavar="P", low=0, **CONV_ONLY)
    pool: str = option("max", "pooling after each convolution", group="network", choices=tuple(POOLS),
                       summary=lambda v: "" if v == "max" else f"{v} pooling", **CONV_ONLY)
    # then the dense part: Dense -> [BatchNorm1d] -> activation -> [Dropout] per hidden layer
    hidden: list[int] = option([10], "dense hidden layer widths, e.g. 10 or 128,64", group="network",
                               metavar="SIZES", low=1)
    activation: str = option("relu", "hidden-layer activation", group="network", choices=tuple(ACTIVATIONS),
                             summary=lambda v: "" if v == "relu" else v)
    init: str = option("seed_uniform", "weight initialiser", group="network", choices=tuple(INITIALIZERS))
    bias_init: str = option("seed_uniform", "bias initialiser", group="network", choices=tuple(INITIALIZERS))
    batchnorm: bool = option(False, "batch normalisation after each convolution and hidden Dense layer",
                             group="network", summary=lambda v: "batch norm")
    dropout: float = option(0.0, "probability of dropping each hidden unit while training", group="network",
                            metavar="P", low=0.0, high=MAX_P, summary=lambda v: f"dropout {v:g}")
    input_dropout: float = option(0.0, "probability of dropping each input pixel while training",
                                  group="network", metavar="P", low=0.0, high=MAX_P,
                                  summary=lambda v: f"input dropout {v:g}")
    conv_dropout: float = option(0.0, "probability of dropping each feature-map value after every conv block's "
                                      "pooling, while training", group="network", metavar="P", low=0.0, high=MAX_P,
                                 summary=lambda v: f"conv dropout {v:g}", **CONV_ONLY)
    augment: bool = option(False, "a new random transform of every training image in every batch: for "
                           "digits shifts, rotations, scaling, slant and elastic distortion, each image with "
                           "probability 0.8 (the rest stay sharp); for clothes (fashion-mnist) left-right mirrors; "
                           "--augmentation changes it", group="network")
    # what `augment` draws, as data.augment.Augmentation's fields: a table in config.toml such as
    # {shift = 2.0, p = 0.8}; the values it names replace the dataset's default (DIGITS, CLOTHES).
    # `train` records the whole of it, so `--config runs/X/config.toml` repeats run X exactly even
    # after a later version changes the default
    augmentation: dict = option({}, "the augmentation's settings over the dataset's default (empty: the default)",
                                group=None, applies=lambda c: c.augment and bool(c.augmentation),
                                applies_to="only with --augment")
    # the optimiser and its learning-rate schedule
    optimizer: str = option("sgd", "update rule", group="optimisation", choices=tuple(OPTIMIZERS))
    lr: float = option(0.1, "learning rate (the peak one, with a schedule)", group="optimisation", above=0.0,
                       high=MAX_RATE)  # what a checkpoint may hold, so that every run can be resumed
    schedule: str = option("constant", "learning-rate schedule", group="optimisation", choices=tuple(SCHEDULES),
                           summary=lambda v: "" if v == "constant" else v)
    warmup: float = option(0.0, "epochs of linear learning-rate warm-up", group="optimisation", metavar="EPOCHS",
                           low=0.0, applies=_schedule_uses("warmup_epochs"), strict=True,
                           summary=lambda v: plural(v, "warm-up epoch"))
    min_lr: float = option(0.0, "lowest learning rate (cosine, plateau)", group="optimisation", low=0.0, high=MAX_RATE,
                           applies=_schedule_uses("min_lr"), strict=True, summary=lambda v: f"min lr {v:g}")
    lr_gamma: float = option(0.0, "decay factor (step, exponential) or reduce factor (plateau); 0: the default",
                             group="optimisation", metavar="F", low=0.0, strict=True,
                             applies=lambda c: c.schedule in OPTION_USERS["gamma"] + OPTION_USERS["factor"],
                             summary=lambda v: f"gamma {v:g}")
    lr_step: int = option(0, "epochs between step decays (0: a third of the run)", group="optimisation",
                          metavar="EPOCHS", low=0, applies=_schedule_uses("step_epochs"), strict=True,
                          summary=lambda v: f"every {plural(v, 'epoch')}")
    momentum: float = option(0.0, "momentum for sgd and rmsprop, e.g. 0.9", group="optimisation", low=0.0,
                             below=1.0, applies=lambda c: c.optimizer in ("sgd", "rmsprop"),
                             applies_to="only to --optimizer sgd and rmsprop",
                             summary=lambda v: f"momentum {v:g}")
    nesterov: bool = option(False, "Nesterov momentum (sgd)", group="optimisation",
                            applies=lambda c: c.optimizer == "sgd" and c.momentum > 0, summary=lambda v: "nesterov",
                            applies_to="only to --optimizer sgd with --momentum > 0")
    weight_decay: float = option(0.0, "L2 penalty (sgd, rmsprop, adam) or decoupled decay (adamw)",
                                 group="optimisation", metavar="L", low=0.0, summary=lambda v: f"weight decay {v:g}")
    label_smoothing: float = option(0.0, "train towards (1 - EPS) on the true class and EPS/C on every class, "
                                         "not one-hot (dev and test losses stay plain cross-entropy)",
                                    group="optimisation", metavar="EPS", low=0.0, below=1.0,
                                    summary=lambda v: f"label smoothing {v:g}")
    # the loop
    epochs: int = option(500, "passes over the training data (full batch: one iteration each)",
                         group="training loop", metavar="N", low=1, high=1_000_000, aliases=("--iterations",))
    batch_size: int = option(0, "mini-batch size; 0 = full batch", group="training loop", metavar="N", low=0)
    dev_size: int = option(1000, "images held out as the dev set", group="training loop", metavar="N", low=0)
    seed: int = option(0, "random seed for split, weights, order, dropout and augmentation", group="training loop",
                       metavar="N", low=0)
    train_size: int = option(0, "train on the first N images of the shuffled training split (0: all of them)",
                             group="training loop", metavar="N", low=0, applies=lambda c: c.train_size > 0)
    split_seed: int = option(-1, "seed of the train/dev split (-1: the same as --seed); ensemble members share one",
                             group="training loop", metavar="N", low=-1, applies=lambda c: c.split_seed >= 0)
    eval_every: int = option(10, "measure dev metrics and print a line every N epochs", group="training loop",
                             metavar="N", low=1)
    patience: int = option(0, "early stopping: stop after N evaluations without improvement (0 = off)",
                           group="training loop", metavar="N", low=0)
    monitor: str = option("dev_loss", "what early stopping watches", group="training loop",
                          choices=tuple(MONITORS), applies=lambda c: c.patience > 0,
                          applies_to="only to early stopping (--patience > 0)")
    checkpoint_every: int = option(1, "write checkpoint.safetensors every N evaluations (0 = never)",
                                   group="training loop", metavar="N", low=0)
    threads: int = option(0, "BLAS threads for the matrix products (0: the library's default, every core); "
                             "1 repeats a run bit for bit on any number of cores (another kind of CPU may round "
                             "differently)", group="training loop", metavar="N",
                          low=0, applies=lambda c: c.threads > 0)
    textbook: bool = option(False, "train on the plain textbook code, without the speed machinery "
                                   "(same numbers, slower)", group="training loop")
    # the training doctor (doctor/): health signals, findings; and the break-it lab's faults
    doctor: str = option("on", "watch the run's health: off (record nothing), on (print findings as they "
                               "appear: at each of the first 100 evaluations, then each time their number "
                               "has grown by a twentieth), "
                               "strict (an error finding stops the run, exit code 3)",
                         group="doctor", choices=DOCTOR_MODES, summary=lambda v: "" if v == "on" else f"doctor {v}")
    fault: list[str] = option([], "reproduce a classic mistake on purpose (repeatable): "
                                  + ", ".join(FAULTS) + " (scratchnn doctor --faults says what each breaks)",
                              group="doctor", metavar="NAME", choices=tuple(FAULTS),
                              applies=lambda c: bool(c.fault))
    # data source: a named dataset, a Kaggle CSV, or an IDX pair ("" = not set; TOML has no null).
    # `train` saves files as absolute paths with their SHA-256, so a run folder opened from any
    # directory finds its data, and a moved or changed file is named as such (see run_data)
    dataset: str = option("", f"a named dataset: {', '.join(DATASETS)}", group="data", metavar="NAME",
                          applies=lambda c: bool(c.dataset))
    csv: str = option("", "a Kaggle 'Digit Recognizer' CSV (.csv or .csv.gz): label,pixel0..pixel783, or "
                      "square images of another side under a header that names their columns", group="data",
                      metavar="FILE",
                      applies=lambda c: bool(c.csv))
    images: str = option("", "an IDX images file (.gz or raw)", group="data", metavar="FILE",
                         applies=lambda c: bool(c.images))
    labels: str = option("", "the IDX labels file that goes with --images", group="data", metavar="FILE",
                         applies=lambda c: bool(c.labels))
    class_names: str = option("", "names for the labels 0, 1, 2... of --csv or --images, in order: e.g. a,b,c",
                              group="data", metavar="NAMES", applies=lambda c: bool(c.class_names))
    transpose: bool = option(False, "turn each image of --csv or --images over its diagonal (EMNIST's files hold "
                                    "them so)", group="data", applies=lambda c: c.transpose)
    data_dir: str = option("", "folder to look in first for a named dataset (or set SCRATCHNN_DATA)",
                           group="data", metavar="DIR", applies=lambda c: bool(c.data_dir))
    csv_sha256: str = option("", "SHA-256 of the CSV the run was trained on", group=None,
                             applies=lambda c: bool(c.csv_sha256), form=SHA256_FORM)
    images_sha256: str = option("", "SHA-256 of the IDX images the run was trained on", group=None,
                                applies=lambda c: bool(c.images_sha256), form=SHA256_FORM)
    labels_sha256: str = option("", "SHA-256 of the IDX labels the run was trained on", group=None,
                                applies=lambda c: bool(c.labels_sha256), form=SHA256_FORM)

    def validate(self) -> TrainConfig:
        """Raise ConfigError naming the first invalid value; returns self.

        Each option's own range and choices come from its declaration; the rules that tie two
        options together are below, each written once.
        """
        for name, spec in options_of(type(self)).items():
            spec.check(getattr(self, name))
        if self.augmentation:
            try:
                self.build_augmentation(default=True)
            except ConfigError as error:
                raise ConfigError(str(error) if "augmentation" in str(error) else f"augmentation {error}") from None
        for name in ("class_names", "transpose"):
            if getattr(self, name) and not (self.csv or self.images):
                raise ConfigError(f"{option_of(type(self), name).flag} applies only to --csv or --images, not to a "
                                  "named dataset")
        if self.class_names:
            named_classes(self.class_names)
        if self.dataset:  # --print-config printed an unknown name, exit 0 (the fuzz audit)
            get_dataset(self.dataset)
        if self.padding and len(self.padding) != len(self.conv):
            raise ConfigError(f"--padding needs one value per convolution block ({len(self.conv)}), "
                              f"got {','.join(map(str, self.padding))}")
        if "sigmoid-deep" in self.fault and self.conv:
            raise ConfigError("the sigmoid-deep fault builds an MLP of its own; train it without --conv "
                              "(e.g. --preset mlp --fault sigmoid-deep)")
        if self.patience and self.monitor.startswith("dev") and self.dev_size == 0:
            raise ConfigError("early stopping (--patience) watches the dev set; give --dev-size > 0")
        given, spell = {}, {}
        for name, keys in SCHEDULE_KEYS.items():
            spell.update(dict.fromkeys(keys, option_of(type(self), name).flag))
            given[next((k for k in keys if self.schedule in OPTION_USERS[k]), keys[0])] = getattr(self, name)
        check_schedule_options(self.schedule, self.epochs, given, spell)
        if self.min_lr > self.lr:  # else "min_lr must be in [0, lr = 0.002]" once the schedule is built
            raise ConfigError(f"--min-lr (the lowest rate) must be at most --lr ({self.lr:g}), got {self.min_lr:.10g}")
        return self

    @property
    def step_name(self) -> str:
        """What one of the run's evaluation numbers counts: "iteration" on the full batch (an epoch is one step)."""
        return "iteration" if not self.batch_size else "epoch"

    def describe(self) -> str:
        """'adamw lr 0.002 (cosine, 1 warm-up epoch, weight decay 0.01), batch 128, augmented'.

        The words come from the options' own ``summary``: every option that applies and is set.
        """
        extras = self._summaries("optimisation")
        text = f"{self.optimizer} lr {self.lr:g}" + (f" ({', '.join(extras)})" if extras else "")
        text += ", full batch" if not self.batch_size else f", batch {self.batch_size}"
        return text + (", augmented" if self.augment else "")

    def describe_network(self, lead: str = "") -> str:
        """What the layer widths leave out, after ``lead``: 'batch norm, dropout 0.3, input dropout
        0.2'; '' (without ``lead``) for a network with none of it."""
        words = ", ".join(self._summaries("network"))
        return lead + words if words else ""

    def _summaries(self, group: str) -> list[str]:
        """The words of every option of ``group`` that applies here and is set (its ``summary``)."""
        words = [spec.summary(getattr(self, name)) for name, spec in options_of(type(self)).items()
                 if spec.group == group and spec.summary and getattr(self, name) and spec.applies_here(self)]
        return [word for word in words if word]

    def evaluations(self) -> int:
        """How many evaluations the run makes: every ``eval_every`` epochs, and at the last."""
        return -(-self.epochs // self.eval_every)

    def applicable(self) -> dict:
        """The options that mean something for this run (no kernel_size for an MLP), as a dict."""
        specs = options_of(type(self))
        return {name: value for name, value in self.to_dict().items()
                if name not in specs or specs[name].applies_here(self)}

    def shown(self) -> dict:
        """``applicable()`` for people to read: the augmentation table in words."""
        values = self.applicable()
        if "augmentation" in values:
            values["augmentation"] = Augmentation.text_of(values["augmentation"])
        return values

    def build_model(self, rng: np.random.Generator, image_shape=(28, 28), num_classes: int = 10,
                    layer_rng: np.random.Generator | None = None) -> Sequential:
        """The network for images of ``image_shape`` (H, W) and ``num_classes`` classes (see
        architecture.py); ``rng`` draws the initial weights, ``layer_rng`` drives dropout masks."""
        return build_model(self, rng, image_shape, num_classes, layer_rng)

    def layer_specs(self, image_shape=(28, 28), num_classes: int = 10) -> tuple[tuple, list[tuple[type, dict]]]:
        """(input shape, [(layer class, its keyword arguments), ...]) of ``build_model``'s network,
        worked out on paper and checked (architecture.py)."""
        return layer_specs(self, image_shape, num_classes)

    def build_augmentation(self, default: bool = False) -> Augmentation | None:
        """The dataset's augmentation (data.augment: DIGITS, or CLOTHES for fashion-mnist) with the
        settings in ``augmentation`` put in; None without ``augment`` (unless ``default``)."""
        if not (self.augment or default):
            return None
        return Augmentation.from_dict({**augmentation_for(self.dataset).to_dict(), **self.augmentation})

    def with_augmentation_recorded(self) -> TrainConfig:
        """A copy whose ``augmentation`` holds every setting of the one it trains with ({} without)."""
        return self.trained_with(self.build_augmentation())

    def trained_with(self, augmentation: Augmentation | None) -> TrainConfig:
        """A copy that says it trains with ``augmentation`` (None: without), every setting written out."""
        return dataclasses.replace(self, augment=augmentation is not None,
                                   augmentation=augmentation.to_dict() if augmentation else {})

    def build_optimizer(self):
        """The optimizer, given only the options that apply to it: a --momentum that does nothing
        for adamw was noted as such when the config was resolved, not an error now."""
        used = {name: getattr(self, name) for name in ("momentum", "nesterov")
                if option_of(type(self), name).applies_here(self)}
        return make_optimizer(self.optimizer, self.lr, weight_decay=self.weight_decay, **used)

    def build_schedule(self, steps_per_epoch: int):
        """The learning rate as a function of the step; epochs-based options turned into steps."""
        gamma = self.lr_gamma or None
        options = {"factor": gamma} if self.schedule == "plateau" and gamma else {"gamma": gamma}
        return make_schedule(self.schedule, self.lr, steps_per_epoch=steps_per_epoch, epochs=self.epochs,
                             warmup_epochs=self.warmup, min_lr=self.min_lr, step_epochs=self.lr_step or None,
                             **options)

    def build_early_stopping(self) -> EarlyStopping | None:
        return EarlyStopping(self.monitor, self.patience) if self.patience else None

    # --- serialisation ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict, source: str = "config", base: TrainConfig | None = None) -> TrainConfig:
        """``base`` (default: the defaults) with ``values`` ({field: value}) written over it, type-checked
        (not yet validated)."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"{source}: unknown option(s) {names_in_message(unknown)}; "
                              f"{unknown_setting_hint(unknown[0], values, known)}known: {', '.join(known)}")
        config, specs = copy.deepcopy(base) if base is not None else cls(), options_of(cls)
        for name, value in values.items():
            default = getattr(config, name)
            if not fits_kind(default, value, specs.get(name)):
                raise ConfigError(f"{source}: {name} must be {kind_words(default, specs.get(name))}, got "
                                  f"{textwrap.shorten(repr(value), 60)}")
            texts = [value] if isinstance(value, str) else value if isinstance(value, list) else []
            if any(isinstance(text, str) and "\0" in text for text in texts):  # os.stat: "embedded null byte"
                raise ConfigError(f"{source}: {name} holds a NUL character (\\0), which no file name or setting "
                                  "can; remove it")
            if isinstance(default, float) and huge_number(value):  # float() overflows
                raise ConfigError(f"{source}: {name} must be a finite number, got {huge_number(value)}")
            setattr(config, name, float(value) if isinstance(default, float) else value)
        return config

    def to_toml(self) -> str:
        return "".join(f"{k} = {_toml_value(v)}\n" for k, v in self.to_dict().items())

    def save(self, path) -> Path:
        atomic_write_bytes(Path(path), self.to_toml().encode())
        return Path(path)

    @staticmethod
    def read_file(path) -> dict:
        """The table of the config file at ``path`` (bounded, TOML), not yet a config."""
        path = Path(path)
        text = read_small_text(path, MAX_CONFIG_BYTES, "a config file (config.toml)")
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: not valid TOML ({error})") from None

    @classmethod
    def load(cls, path, base: TrainConfig | None = None) -> TrainConfig:
        """The config file at ``path``, its settings written over ``base`` (default: the defaults),
        validated."""
        path = Path(path)
        config = cls.from_dict(cls.read_file(path), source=str(path), base=base)
        try:
            return config.validate()
        except ConfigError as error:  # worded for the flags; say which file holds the value
            raise ConfigError(f"{path}: {error}") from None


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):  # an inline table; a key that is not a bare word is quoted
        return "{" + ", ".join(f"{k if re.fullmatch('[A-Za-z0-9_-]+', k) else json.dumps(k)} = {_toml_value(v)}"
                               for k, v in value.items()) + "}"
    if why := undecodable_name(str(value)):  # a lone surrogate: TOML would not read it back (the locale audit)
        raise ConfigError(f"config.toml cannot record {why}")
    return json.dumps(value)  # a JSON string literal is a valid TOML basic string
