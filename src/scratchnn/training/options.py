"""A training option written once: its default, help, group, range and when it applies.

Each ``TrainConfig`` field is declared with ``option(...)``; the command line's flags, the
config's validation, ``TrainConfig.describe()`` and the report's configuration table are all
generated from that one declaration. Adding an option is adding one field.

    >>> from scratchnn.training.config import TrainConfig
    >>> spec = option_of(TrainConfig, "dropout")
    >>> spec.flag, spec.group, spec.low, spec.high
    ('--dropout', 'network', 0.0, 0.9999)
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, huge_number, names_in_message

GROUPS = ("network", "optimisation", "training loop", "doctor", "data")
SETTING_GROUPS = ("network", "optimisation", "training loop")  # what the network and its training are
# a data file's recorded digest: else "that file has changed (sha256 now ...)" blamed the file (the fuzz audit)
SHA256_FORM = ("[0-9a-f]{64}", "a SHA-256 of 64 hexadecimal digits (as train records it), or empty")
TRAIN_GROUPS = (*SETTING_GROUPS, "doctor")  # a training run also watches (or breaks) itself


@dataclass(frozen=True)
class Option:
    """What the user sees of one config field.

    ``low``/``high`` are inclusive bounds, ``above``/``below`` exclusive ones; for a list they
    bound every element. ``choices`` is the set of allowed strings. ``applies(config)`` says
    whether the option means anything for this config (the report shows only those); with
    ``strict`` a value set where it does not apply is an error, not just ignored.
    ``summary(value)`` is the option's words in ``describe()`` (an optimisation option) or
    ``describe_network()`` (a network one); '' says nothing.
    """

    name: str
    help: str
    group: str | None  # None: no flag (set by a preset or a config file only)
    metavar: str | None = None
    choices: Sequence[str] | None = None
    low: float | None = None
    high: float | None = None
    above: float | None = None
    below: float | None = None
    applies: Callable[[Any], bool] | None = None
    applies_to: str = ""  # the rule in words, for the error: "only to the step and exponential schedules"
    strict: bool = False
    aliases: tuple[str, ...] = ()
    summary: Callable[[Any], str] | None = None
    form: tuple[str, str] | None = None  # (regular expression, its words) a non-empty string must match

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def choices_told(self) -> str:
        """Where the choices are explained, for an error that lists them ('' when their names suffice)."""
        return " (scratchnn doctor --faults says what each breaks)" if self.flag == "--fault" else ""

    def check(self, value) -> None:
        """Raise ConfigError if ``value`` is outside this option's range or choices."""
        if isinstance(value, dict):  # a table of settings: its own type checks it (TrainConfig.validate)
            return
        for item in value if isinstance(value, list) else [value]:
            if self.choices is not None and item not in self.choices:
                raise ConfigError(f"unknown {self.flag[2:]} {str(item)[:40]!r}; choose one of {', '.join(self.choices)}"
                                  f"{self.choices_told}")
            if isinstance(item, str) and item and self.form and not re.fullmatch(self.form[0], item):
                raise ConfigError(f"{self.name} must be {self.form[1]}, got {item[:80]!r}")
            if isinstance(item, (bool, str)):
                continue
            if huge_number(item):  # float() of a 400-digit integer overflows
                limit = " and far below 2**63" if self.high is None and self.below is None else ""  # not "too small"
                raise ConfigError(f"{self.flag} must be {self.range_text()}{limit}, got {huge_number(item)}")
            if not math.isfinite(item):
                raise ConfigError(f"{self.flag} must be a finite number, got {item}")
            inside = ((self.low is None or item >= self.low) and (self.high is None or item <= self.high)
                      and (self.above is None or item > self.above) and (self.below is None or item < self.below))
            if not inside:
                raise ConfigError(f"{self.flag} must be {self.range_text()}, got {_text(value)}")

    def range_text(self) -> str:
        """'in [0, 1)', '>= 1', '> 0' ..."""
        low = (f"[{_bound(self.low)}" if self.low is not None else f"({_bound(self.above)}" if self.above is not None
               else None)
        high = (f"{_bound(self.high)}]" if self.high is not None else f"{_bound(self.below)})" if self.below is not None
                else None)
        if low and high:
            return f"in {low}, {high}"
        if low:
            return (">= " if low[0] == "[" else "> ") + low[1:]
        return ("<= " if high[-1] == "]" else "< ") + high[:-1]

    def shown(self, value) -> str:
        """The value as a flag takes it: 0.5, 32,64, max."""
        return _text(value)

    def applies_here(self, config) -> bool:
        return self.applies is None or bool(self.applies(config))


def option(default, help: str, *, group: str | None, **spec) -> Any:
    """A dataclass field carrying its ``Option`` (the name is filled in by ``options_of``)."""
    if group is not None and group not in GROUPS:
        raise ValueError(f"unknown option group {group!r}")
    meta = {"option": {"help": help, "group": group, **spec}}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def options_of(cls) -> dict[str, Option]:
    """Every declared option of a dataclass, in declaration order, by field name (a new dict of the
    class's frozen Options, made once: loading a config asks seven times, and the page's runs list
    loads a hundred configs)."""
    return dict(_declared(cls))


@functools.cache
def _declared(cls) -> tuple[tuple[str, Option], ...]:
    return tuple((f.name, Option(name=f.name, **f.metadata["option"])) for f in dataclasses.fields(cls)
                 if "option" in f.metadata)


def kind_words(default, spec: Option | None) -> str:
    """What a setting with ``default`` takes, in words: 'a number', 'a list of whole numbers', ..."""
    return ("true or false" if isinstance(default, bool) else "a whole number" if isinstance(default, int)
            else "a number" if isinstance(default, float) else "a string" if isinstance(default, str)
            else "a table such as {rotate = 5.0}" if isinstance(default, dict)
            else "a list of names" if spec is not None and spec.choices else "a list of whole numbers")


def fits_kind(default, value, spec=None) -> bool:
    """Whether ``value`` has the kind of a setting whose default is ``default``: a number where a
    float is (an int too), a bool where a bool is, a list of whole numbers, or of names where the
    option (``spec``) has choices (fault)."""
    words = spec is not None and bool(spec.choices)
    return isinstance(default, bool) == isinstance(value, bool) and _same_kind(default, value, words)


def _same_kind(default, value, words: bool = False) -> bool:
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, list):
        kind = (lambda v: isinstance(v, str)) if words else (lambda v: isinstance(v, int) and not isinstance(v, bool))
        return isinstance(value, list) and all(kind(v) for v in value)
    return isinstance(value, type(default))


def _bound(value: float) -> str:
    """A range's end as a person writes it: 1000000, not 1e+06; 0.5 as 0.5."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def option_of(cls, name: str) -> Option:
    return options_of(cls)[name]


def _text(value) -> str:
    if isinstance(value, dict):  # a table, as its flag takes it: rotate=5,p=0.5
        return ",".join(f"{name}={_text(entry)}" for name, entry in value.items())
    if isinstance(value, float):  # short (2e+06), but never rounded: 0.9999999 was shown as 1
        return f"{value:g}" if float(f"{value:g}") == value else repr(value)
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


# what other tools call some settings (Keras, PyTorch scripts), for "did you mean"
OTHER_NAMES = {"learning_rate": "lr", "num_epochs": "epochs", "n_epochs": "epochs", "batchsize": "batch_size",
               "hidden_layers": "hidden", "hidden_sizes": "hidden", "optimiser": "optimizer", "l2": "weight_decay",
               "dropout_rate": "dropout", "lr_schedule": "schedule", "random_seed": "seed"}


def known_settings(values: dict, cls, source: str, log: Callable[[str], None]) -> dict:
    """``values`` without the settings that are no field of ``cls``, named in a note to ``log``: the training
    config a newer scratchnn wrote into a model file, read where the model is only used (evaluate,
    predict, explain, report), whose layers this version reads; the compatibility audit: one
    unknown setting refused the whole model. A run resumed or repeated still refuses them."""
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        log(f"Note: {source} holds settings this scratchnn does not know ({names_in_message(unknown)}), a newer "
            "version's: they are left out (upgrade scratchnn to read them)")
    return {name: value for name, value in values.items() if name in known}


def unknown_setting_hint(name, values: dict, known) -> str:
    """A hint for the unknown setting ``name``: the known one it is close to, the top level for a
    table ([training]: settings are not grouped), or a newer version's setting."""
    close = difflib.get_close_matches(str(name), [*known, *OTHER_NAMES], n=1, cutoff=0.75)
    if close:
        return f"did you mean {OTHER_NAMES.get(close[0], close[0])}? "
    if isinstance(values[name], dict):
        return "settings are not grouped in tables: write them at the top level, without the [table] line; "
    return "a setting of a newer scratchnn? (upgrade scratchnn to read it); "
