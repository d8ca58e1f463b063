"""TrainConfig: every choice a training run makes, readable and writable as TOML.

The resolved config is saved in the run folder (``config.toml``) and in the model file, so
``scratchnn train --config runs/X/config.toml`` repeats run X.
"""
from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ConfigError
from .files import atomic_write_bytes
from .early_stopping import MONITORS, EarlyStopping
from .model import Sequential
from .data.augment import Augmentation, augmentation_for
from .nn import (AvgPool2D, BatchNorm1d, Conv2D, Dense, Dropout, Flatten, LeakyReLU, MaxPool2D, ReLU, Sigmoid,
                 Tanh, get_initializer)
from .optim import OPTIMIZERS, SCHEDULES, make_optimizer, make_schedule

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ACTIVATIONS = {"relu": ReLU, "leaky-relu": LeakyReLU, "sigmoid": Sigmoid, "tanh": Tanh}
POOLS = {"max": MaxPool2D, "avg": AvgPool2D}


@dataclass
class TrainConfig:
    """A training run. ``batch_size = 0`` means full batch (one update per epoch, as the seed).

    Zero switches an option off: ``dropout = 0``, ``patience = 0`` (no early stopping),
    ``warmup = 0``, ``checkpoint_every = 0``; ``lr_gamma = 0`` and ``lr_step = 0`` pick the
    schedule's default.
    """

    preset: str = "custom"
    # convolutional blocks first (none for an MLP): Conv2D -> activation -> pooling 2x2 each
    conv: list[int] = field(default_factory=list)  # output channels of each block
    kernel_size: int = 3
    padding: list[int] = field(default_factory=list)  # per block; empty = no padding
    pool: str = "max"
    # then the dense part: Dense -> [BatchNorm1d] -> activation -> [Dropout] per hidden layer
    hidden: list[int] = field(default_factory=lambda: [10])
    activation: str = "relu"
    init: str = "seed_uniform"
    bias_init: str = "seed_uniform"
    batchnorm: bool = False
    dropout: float = 0.0
    input_dropout: float = 0.0  # dropout on the pixels themselves, before the first layer
    augment: bool = False  # random shifts, rotations, scaling and elastic distortion of each batch
    # the optimiser and its learning-rate schedule
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup: float = 0.0  # epochs of linear warm-up
    min_lr: float = 0.0  # cosine's floor, plateau's floor
    lr_gamma: float = 0.0  # step/exponential decay factor, plateau's reduce factor (0 = default)
    lr_step: int = 0  # epochs between step decays (0 = a third of the run)
    # the loop
    epochs: int = 500
    batch_size: int = 0
    dev_size: int = 1000
    seed: int = 0
    eval_every: int = 10  # measure dev metrics and print a line every N epochs
    patience: int = 0  # early stopping after N evaluations without improvement
    monitor: str = "dev_loss"
    checkpoint_every: int = 1  # write checkpoint.safetensors every N evaluations
    textbook: bool = False  # train on the plain textbook code, without scratchnn.fast (same numbers, slower)
    # data source: a named dataset, a Kaggle CSV, or an IDX pair ("" = not set; TOML has no null)
    dataset: str = ""
    csv: str = ""
    images: str = ""
    labels: str = ""
    data_dir: str = ""

    def validate(self) -> TrainConfig:
        """Raise ConfigError naming the first invalid value; returns self."""
        if any(h <= 0 for h in self.hidden):
            raise ConfigError(f"hidden layer sizes must be positive, got {self.hidden}")
        if any(c <= 0 for c in self.conv):
            raise ConfigError(f"convolution channels must be positive, got {self.conv}")
        if self.padding and (len(self.padding) != len(self.conv) or any(p < 0 for p in self.padding)):
            raise ConfigError(f"padding needs one value >= 0 per convolution block ({len(self.conv)}), "
                              f"got {self.padding}")
        if self.kernel_size < 1:
            raise ConfigError(f"kernel-size must be >= 1, got {self.kernel_size}")
        _choice("pool", self.pool, POOLS)
        _choice("activation", self.activation, ACTIVATIONS)
        get_initializer(self.init), get_initializer(self.bias_init)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("schedule", self.schedule, SCHEDULES)
        _choice("monitor", self.monitor, MONITORS)
        if not self.lr > 0:
            raise ConfigError(f"learning rate must be > 0, got {self.lr}")
        for name in ("dropout", "input_dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"{name.replace('_', '-')} is the probability of dropping a unit, in [0, 1); "
                                  f"got {getattr(self, name)}")
        for name in ("momentum", "weight_decay", "warmup", "min_lr", "lr_gamma"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        for name in ("epochs", "batch_size", "dev_size", "eval_every", "patience", "checkpoint_every", "lr_step"):
            low = 1 if name in ("epochs", "eval_every") else 0
            if getattr(self, name) < low:
                raise ConfigError(f"{name.replace('_', '-')} must be >= {low}, got {getattr(self, name)}")
        self._validate_schedule_options()
        if self.patience and self.monitor.startswith("dev") and self.dev_size == 0:
            raise ConfigError("early stopping (--patience) watches the dev set; give --dev-size > 0")
        return self

    def _validate_schedule_options(self) -> None:
        """The schedule's own checks, in the names of the flags a user types."""
        if self.warmup >= self.epochs:
            raise ConfigError(f"--warmup {self.warmup:g} must be shorter than the run (--epochs {self.epochs})")
        if self.warmup and self.schedule == "one-cycle":
            raise ConfigError("the one-cycle schedule has its own warm-up (30% of the run); use --warmup 0")
        for flag, value, users in (("--lr-gamma", self.lr_gamma, ("step", "exponential", "plateau")),
                                   ("--lr-step", self.lr_step, ("step",)),
                                   ("--min-lr", self.min_lr, ("cosine", "plateau"))):
            if value and self.schedule not in users:
                raise ConfigError(f"{flag} does not apply to the {self.schedule} schedule, only to "
                                  f"{' and '.join(users)}")

    def build_model(self, rng: np.random.Generator, image_shape=(28, 28), num_classes: int = 10,
                    layer_rng: np.random.Generator | None = None) -> Sequential:
        """The network for images of ``image_shape`` (H, W) and ``num_classes`` classes.

        An MLP (no ``conv``) reads x (N, H·W); a CNN reads x (N, 1, H, W) through its conv
        blocks, then Flatten and the same dense part. ``rng`` draws the initial weights;
        ``layer_rng`` drives dropout masks during training.
        """
        height, width = image_shape
        input_shape = (1, height, width) if self.conv else (height * width,)
        layers, features = [], height * width
        if self.input_dropout:
            layers.append(Dropout(self.input_dropout))
        if self.conv:
            channels, paddings = 1, self.padding or [0] * len(self.conv)
            for out_channels, padding in zip(self.conv, paddings):
                layers += [Conv2D(channels, out_channels, self.kernel_size, padding=padding, init=self.init,
                                  bias_init=self.bias_init, rng=rng),
                           ACTIVATIONS[self.activation](), POOLS[self.pool](2)]
                channels = out_channels
            layers.append(Flatten())
            features = int(np.prod(Sequential(layers, input_shape).output_shapes()[-1]))
        for size in self.hidden:
            layers.append(Dense(features, size, init=self.init, bias_init=self.bias_init, rng=rng))
            if self.batchnorm:
                layers.append(BatchNorm1d(size))
            layers.append(ACTIVATIONS[self.activation]())
            if self.dropout:
                layers.append(Dropout(self.dropout))
            features = size
        layers.append(Dense(features, num_classes, init=self.init, bias_init=self.bias_init, rng=rng))
        return Sequential(layers, input_shape, rng=layer_rng)

    def build_augmentation(self) -> Augmentation | None:
        """The dataset's augmentation (data.augment: DIGITS, or CLOTHES for fashion-mnist)."""
        return augmentation_for(self.dataset) if self.augment else None

    def build_optimizer(self):
        return make_optimizer(self.optimizer, self.lr, momentum=self.momentum, nesterov=self.nesterov,
                              weight_decay=self.weight_decay)

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
    def from_dict(cls, values: dict, source: str = "config") -> TrainConfig:
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"{source}: unknown option(s) {', '.join(unknown)}; "
                              f"known: {', '.join(known)}")
        config = cls()
        for name, value in values.items():
            default = getattr(config, name)
            if isinstance(default, bool) != isinstance(value, bool) or not _same_kind(default, value):
                raise ConfigError(f"{source}: {name} must be {type(default).__name__}, got {value!r}")
            setattr(config, name, float(value) if isinstance(default, float) else value)
        return config

    def to_toml(self) -> str:
        return "".join(f"{k} = {_toml_value(v)}\n" for k, v in self.to_dict().items())

    def save(self, path) -> Path:
        atomic_write_bytes(Path(path), self.to_toml().encode())
        return Path(path)

    @classmethod
    def load(cls, path) -> TrainConfig:
        path = Path(path)
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such config file") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise ConfigError(f"{path}: not valid TOML ({error})") from None
        return cls.from_dict(values, source=str(path)).validate()


def _choice(what: str, value: str, choices) -> None:
    if value not in choices:
        raise ConfigError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")


def _same_kind(default, value) -> bool:
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, list):
        return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    return isinstance(value, type(default))


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(value)  # a JSON string literal is a valid TOML basic string
