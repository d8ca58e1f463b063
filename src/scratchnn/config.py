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
from .model import Sequential
from .nn import Dense, ReLU, get_initializer

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ACTIVATIONS = {"relu": ReLU}


@dataclass
class TrainConfig:
    """A training run. ``batch_size = 0`` means full batch (one update per epoch, as the seed)."""

    preset: str = "custom"
    hidden: list[int] = field(default_factory=lambda: [10])
    activation: str = "relu"
    init: str = "seed_uniform"
    bias_init: str = "seed_uniform"
    optimizer: str = "sgd"
    lr: float = 0.1
    epochs: int = 500
    batch_size: int = 0
    dev_size: int = 1000
    seed: int = 0
    eval_every: int = 10  # measure dev metrics and print a line every N epochs
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
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"unknown activation {self.activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        get_initializer(self.init), get_initializer(self.bias_init)
        if not self.lr > 0:
            raise ConfigError(f"learning rate must be > 0, got {self.lr}")
        for name in ("epochs", "batch_size", "dev_size", "eval_every"):
            low = 1 if name in ("epochs", "eval_every") else 0
            if getattr(self, name) < low:
                raise ConfigError(f"{name.replace('_', '-')} must be >= {low}, got {getattr(self, name)}")
        return self

    def build_model(self, rng: np.random.Generator, input_shape=(784,), num_classes: int = 10) -> Sequential:
        """784 -> hidden[0] -> ... -> num_classes, with the activation after each hidden layer."""
        layers, width = [], int(np.prod(input_shape))
        for size in self.hidden:
            layers += [Dense(width, size, init=self.init, bias_init=self.bias_init, rng=rng),
                       ACTIVATIONS[self.activation]()]
            width = size
        layers.append(Dense(width, num_classes, init=self.init, bias_init=self.bias_init, rng=rng))
        return Sequential(layers, input_shape)

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
