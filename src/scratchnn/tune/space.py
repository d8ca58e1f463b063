"""A search space written in TOML: which training options a sweep varies, and over what range.

One line per option, named as in ``config.toml`` (the flag without ``--``, dashes as
underscores)::

    lr = {low = 1e-4, high = 1e-1, log = true}      # a float, sampled on a log scale
    dropout = {low = 0, high = 0.5}                 # a float, uniform
    batch_size = {choices = [64, 128, 256]}         # one of these values
    hidden = {choices = ["256", "512,256"]}         # a list option: each choice as a flag writes it
    epochs = {low = 5, high = 20, step = 5}         # an integer option gives integers

Every range is checked against the option's own range (``dropout`` below 1, ``lr`` above 0)
and a mistake is an error naming the line. ``DEFAULT_SPACES`` holds a ready space per preset.
This module needs no Optuna: ``Dimension.suggest`` calls the methods of the trial it is given.
"""
from __future__ import annotations

import difflib
import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, huge_number
from ..files import read_small_text
from ..training.config import TrainConfig
from ..training.options import Option, options_of

SEARCHABLE_GROUPS = ("network", "optimisation", "training loop")  # not the data: every trial sees the same
# Options of those groups a search would make meaningless: trials scored on other dev digits, or a
# setting every trial overrides.
NOT_SEARCHED = {
    "dev_size": "trials scored on dev sets of other sizes cannot be compared; every trial uses the base config's",
    "split_seed": "trials scored on other dev digits cannot be compared; give --split-seed N to fix the split",
    "seed": "the seed also draws the dev split, so trials would be scored on other digits; compare seeds with "
            "scratchnn train --seeds 0,1,2",
    "threads": "every trial runs on one BLAS thread (one trial per core: --workers)",
}
RANGE_KEYS = {"low", "high", "log", "step"}
MAX_SPACE_BYTES = 64 * 1024  # a search space is a few lines; refuse to read a huge file

_MLP_SPACE = """\
lr = {low = 3e-4, high = 1e-2, log = true}
weight_decay = {low = 1e-4, high = 1e-1, log = true}
dropout = {low = 0.0, high = 0.5}
input_dropout = {low = 0.0, high = 0.3}
batch_size = {choices = [64, 128, 256]}
"""
DEFAULT_SPACES: dict[str, str] = {
    "seed": """\
lr = {low = 0.01, high = 1.0, log = true}
hidden = {choices = ["10", "32", "64"]}
""",
    "mlp": _MLP_SPACE + 'hidden = {choices = ["256", "512,256", "1024,512"]}\n',
    "deep-mlp": _MLP_SPACE + 'hidden = {choices = ["512,256,128", "1024,512,256"]}\n',
    "cnn": """\
lr = {low = 3e-4, high = 1e-2, log = true}
weight_decay = {low = 1e-4, high = 1e-1, log = true}
dropout = {low = 0.0, high = 0.5}
hidden = {choices = ["64", "128", "256"]}
""",
    "cnn-best": """\
lr = {low = 1e-3, high = 1e-2, log = true}
weight_decay = {low = 1e-3, high = 1e-1, log = true}
dropout = {low = 0.2, high = 0.5}
hidden = {choices = ["128", "256", "512"]}
""",
    "lenet5": """\
lr = {low = 3e-4, high = 1e-2, log = true}
batch_size = {choices = [64, 128, 256]}
""",
}


@dataclass(frozen=True)
class Dimension:
    """One searched option: a range (``low``..``high``, maybe ``log`` or ``step``) or ``choices``."""

    name: str
    kind: str  # "float", "int" or "choice"
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple = ()

    def suggest(self, trial):
        """The value an Optuna ``trial`` picks (choices come back as written in the space)."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def describe(self) -> str:
        if self.kind == "choice":
            return f"{self.name} in {{{', '.join(map(str, self.choices))}}}"
        scale = ", log" if self.log else f", step {self.step:g}" if self.step else ""
        return f"{self.name} in [{self.low:g}, {self.high:g}{scale}]"


@dataclass(frozen=True)
class SearchSpace:
    """The dimensions of a sweep, in the order they were written; ``text`` is the TOML itself."""

    dimensions: tuple[Dimension, ...]
    text: str

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.dimensions]

    def suggest(self, trial) -> dict:
        """{option: value} for one trial."""
        return {d.name: d.suggest(trial) for d in self.dimensions}

    def apply(self, config: TrainConfig, params: dict) -> TrainConfig:
        """A copy of ``config`` with the trial's ``params`` written in, validated."""
        values = config.to_dict()
        specs = options_of(TrainConfig)
        for name, value in params.items():
            values[name] = _list_value(value) if isinstance(values[name], list) else value
            if isinstance(getattr(config, name), float):
                values[name] = float(values[name])
            specs[name].check(values[name])
        return TrainConfig.from_dict(values, source="trial").validate()


def parse_space(text: str, source: str = "search space") -> SearchSpace:
    """Read a TOML search space; a ConfigError names the line of the first mistake."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{source}: not valid TOML ({error})") from None
    if not table:
        raise ConfigError(f"{source}: the search space is empty; give at least one line like "
                          "lr = {low = 1e-4, high = 1e-1, log = true}")
    specs = {name: spec for name, spec in options_of(TrainConfig).items() if spec.group in SEARCHABLE_GROUPS}
    dimensions = []
    for name, rule in table.items():
        where = f"{source}, line {_line_of(text, name)}"
        if name in NOT_SEARCHED:
            raise ConfigError(f"{where}: {name} cannot be searched: {NOT_SEARCHED[name]}")
        if name in options_of(TrainConfig) and name not in specs:  # a setting, but every trial shares it
            raise ConfigError(f"{where}: {name} cannot be searched: only the network, the optimisation and the "
                              f"training loop can; give it as {options_of(TrainConfig)[name].flag} to the sweep, for "
                              "every trial")
        if name not in specs:
            near = difflib.get_close_matches(name, [n for n in specs if n not in NOT_SEARCHED], n=1)
            hint = (f"; did you mean {near[0]!r}?" if near
                    else f"; searchable: {', '.join(n for n in specs if n not in NOT_SEARCHED)}")
            raise ConfigError(f"{where}: unknown option {name!r}{hint}")
        if not isinstance(rule, dict):
            raise ConfigError(f"{where}: {name} must be a table like {{low = 0.1, high = 1}} or "
                              f"{{choices = [...]}}, got {rule!r}")
        dimensions.append(_dimension(name, rule, specs[name], getattr(TrainConfig(), name), where))
    return SearchSpace(tuple(dimensions), text)


def load_space(spec: str | Path, preset: str) -> SearchSpace:
    """``default`` (the preset's own space) or a TOML file."""
    if str(spec) == "default":
        if preset not in DEFAULT_SPACES:
            raise ConfigError(f"no default search space for preset {preset!r} (there is one for "
                              f"{', '.join(DEFAULT_SPACES)}); write a TOML space and pass --space FILE")
        return parse_space(DEFAULT_SPACES[preset], f"default space of {preset}")
    return parse_space(read_small_text(spec, MAX_SPACE_BYTES, "a search space"), str(spec))


def _dimension(name: str, rule: dict, spec: Option, default, where: str) -> Dimension:
    if "choices" in rule:
        if set(rule) != {"choices"}:
            raise ConfigError(f"{where}: {name} gives choices and {', '.join(sorted(set(rule) - {'choices'}))}; "
                              "give either choices or a range")
        choices = rule["choices"]
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}: {name} choices must be a non-empty list, got {choices!r}")
        if len(set(map(repr, choices))) != len(choices):
            raise ConfigError(f"{where}: {name} lists a choice twice")
        for choice in choices:
            _check_value(name, choice, spec, default, where)
        return Dimension(name, "choice", choices=tuple(choices))
    unknown = set(rule) - RANGE_KEYS
    if unknown:
        near = difflib.get_close_matches(sorted(unknown)[0], [*RANGE_KEYS, "choices"], n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ConfigError(f"{where}: {name} has unknown key(s) {', '.join(sorted(unknown))}{hint}; "
                          "use low, high, log, step or choices")
    if isinstance(default, (bool, str, list)):
        raise ConfigError(f"{where}: {name} is not a number; search it with choices = [...]")
    if "low" not in rule or "high" not in rule:
        raise ConfigError(f"{where}: {name} needs both low and high")
    low, high, log, step = rule["low"], rule["high"], rule.get("log", False), rule.get("step")
    for key, value in (("low", low), ("high", high), *((("step", step),) if step is not None else ())):
        if huge_number(value):  # math.isfinite of a 400-digit integer overflows
            raise ConfigError(f"{where}: {name} {key} must be a finite number, got {huge_number(value)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{where}: {name} {key} must be a finite number, got {str(value)[:40]!r}")
        if isinstance(default, int) and not isinstance(value, int):
            raise ConfigError(f"{where}: {name} is an integer option; {key} must be an integer, got {value!r}")
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: {name} log must be true or false, got {log!r}")
    if low > high:
        raise ConfigError(f"{where}: {name} low {low:g} is above high {high:g}")
    if log and low <= 0:
        raise ConfigError(f"{where}: {name} log = true needs low > 0, got {low:.10g}")
    if log and step is not None:
        raise ConfigError(f"{where}: {name} takes log or step, not both")
    if step is not None and step <= 0:
        raise ConfigError(f"{where}: {name} step must be > 0, got {step:.10g}")
    if step is not None and high > low:
        steps = (high - low) / step  # Optuna would move high down to a whole number of steps, with a warning
        if abs(steps - round(steps)) > 1e-9 * max(1.0, steps):
            raise ConfigError(f"{where}: {name} step {step:g} does not divide {low:g}..{high:g}; make high - low a "
                              f"whole number of steps (high = {low + math.floor(steps) * step:g}, say)")
    for value in (low, high):
        _check_value(name, value, spec, default, where)
    kind = "int" if isinstance(default, int) else "float"
    return Dimension(name, kind, float(low), float(high), log, None if step is None else float(step))


def _check_value(name: str, value, spec: Option, default, where: str) -> None:
    """The option's own range and choices, for one end of a range or one choice."""
    try:
        if isinstance(default, list):
            if not isinstance(value, str):
                raise ConfigError(f"{name} choices are written like \"512,256\", got {value!r}")
            value = _list_value(value)
        elif isinstance(default, bool) != isinstance(value, bool) or (
                not isinstance(value, type(default)) and not (isinstance(default, float) and isinstance(value, int))):
            raise ConfigError(f"{name} takes {type(default).__name__} values, got {value!r}")
        spec.check(value)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None


def _list_value(text: str) -> list[int]:
    """'512,256' -> [512, 256]; '' -> [] (no layers)."""
    try:
        return [int(part) for part in text.split(",")] if text.strip() else []
    except ValueError:
        raise ConfigError(f"expected comma-separated integers like \"512,256\", got {text!r}") from None


def _line_of(text: str, name: str) -> int:
    """The line that sets ``name`` (1-based), found by its key at the start of a line."""
    pattern = re.compile(rf"^\s*[\"']?{re.escape(name)}[\"']?\s*=")
    return next((n for n, line in enumerate(text.splitlines(), 1) if pattern.match(line)), 1)
