"""Command-line flags made from ``TrainConfig``'s option declarations (``scratchnn.training.options``).

A flag's name, help, metavar, type, choices and group all come from the field, so a new
option needs no code here. Choices are case-insensitive and a near miss is answered with
"did you mean"; a list like ``128,,64`` is refused instead of read as ``128,64``.
"""
from __future__ import annotations

import argparse
import difflib

from ..training.config import TrainConfig
from ..training.options import Option, options_of

TITLES = {"network": "network", "optimisation": "optimisation", "training loop": "training loop",
          "doctor": "training doctor and break-it lab", "data": "data"}


def add_option_arguments(parser: argparse.ArgumentParser, groups: tuple[str, ...],
                         descriptions: dict[str, str] | None = None, config_class=TrainConfig,
                         hidden: tuple[str, ...] = ()) -> None:
    """One flag per TrainConfig option of ``groups``, in argparse groups of those names; ``hidden``
    ones are parsed (so the command can say why it refuses them) but left out of ``--help``.

    Every flag defaults to None, so ``given_options`` can tell a flag the user typed from one
    left alone (presets and config files fill in the rest).
    """
    made = {}
    for name, spec in options_of(config_class).items():
        if spec.group not in groups:
            continue
        if spec.group not in made:
            made[spec.group] = parser.add_argument_group(TITLES[spec.group], (descriptions or {}).get(spec.group))
        default = getattr(config_class(), name)
        kwargs: dict = {"dest": name, "default": None, "help": argparse.SUPPRESS if name in hidden else spec.help}
        if isinstance(default, bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        elif isinstance(default, list) and spec.choices:  # --fault a --fault b,c -> [a, b, c]
            kwargs.update(action=NamesAction, metavar=spec.metavar, type=names_type(spec),
                          help=kwargs["help"] + "; none, alone: a config file's left out")  # the CLI's word only
        else:
            kwargs["metavar"] = spec.metavar or ("{" + ",".join(spec.choices) + "}" if spec.choices else None)
            kwargs["type"] = (list_type(spec) if isinstance(default, list) else choice_type(spec) if spec.choices
                              else not_blank(str) if name in NO_BLANK else type(default))
        made[spec.group].add_argument(spec.flag, *spec.aliases, **kwargs)


# a blank value of these names nothing (--csv= fell back to MNIST); a blank --data-dir or
# --class-names clears a config file's value, so those keep taking ''
NO_BLANK = ("csv", "images", "labels")


def not_blank(kind):
    """An argparse type: ``kind(text)``, refusing an empty or blank value (``--csv=`` fell back to
    downloading MNIST, ``--out=`` wrote a run's files loose into the current folder)."""
    def parse(text: str):
        if not text.strip():
            raise argparse.ArgumentTypeError(f"expected a value, got {text!r}; leave the flag out for its default")
        return kind(text)
    parse.__name__ = kind.__name__  # argparse names the type in some messages
    return parse


def given_options(args: argparse.Namespace, groups: tuple[str, ...]) -> dict:
    """The options of ``groups`` that were given on the command line: {field name: value}."""
    return {name: getattr(args, name) for name, spec in options_of(TrainConfig).items()
            if spec.group in groups and getattr(args, name, None) is not None}


def choice_type(spec: Option):
    """An argparse type: the choice whatever its case, or an error that suggests the nearest."""
    by_lower = {choice.lower(): choice for choice in spec.choices}

    def parse(text: str) -> str:
        if text.lower() in by_lower:
            return by_lower[text.lower()]
        near = difflib.get_close_matches(text.lower(), list(by_lower), n=1)
        hint = f"; did you mean {by_lower[near[0]]!r}?" if near else spec.choices_told
        raise argparse.ArgumentTypeError(f"unknown {spec.flag[2:]} {text!r}: choose one of "
                                         f"{', '.join(spec.choices)}{hint}")
    parse.__name__ = spec.flag[2:]  # argparse names the type in some messages
    return parse


class NamesAction(argparse.Action):
    """argparse's extend (--fault a --fault b,c -> [a, b, c]), where none (an empty list) stands
    alone across the flags too (the review: --fault zero-init --fault none kept zero-init)."""

    def __call__(self, parser, namespace, values, option_string=None):
        have = getattr(namespace, self.dest, None)
        if (values == [] and have) or (have == [] and values):
            parser.error(f"argument {option_string}: none stands alone (it leaves a config file's out)")
        setattr(namespace, self.dest, [*(have or []), *values])


def names_type(spec: Option):
    """An argparse type: 'a,b' -> ['a', 'b'], each one of the option's choices (any case); 'none'
    -> [], which clears a config file's list (the advice audit: a lab run's config.toml kept its
    --fault, and no flag could take it out)."""
    choice = choice_type(spec)

    def parse(text: str) -> list[str]:
        if text.strip().lower() == "none":
            return []
        if "none" in (part.strip().lower() for part in text.split(",")):
            raise argparse.ArgumentTypeError(f"none stands alone (it leaves a config file's out), got {text!r}")
        return [choice(part.strip()) for part in text.split(",")]
    parse.__name__ = spec.flag[2:]
    return parse


def list_type(spec: Option):
    """An argparse type: '128,64' -> [128, 64]; every value an integer >= the option's low bound."""
    def parse(text: str) -> list[int]:
        parts = [part.strip() for part in text.split(",")]
        if text.strip() == "" or "" in parts:
            raise argparse.ArgumentTypeError(f"expected comma-separated integers like 128,64 with no empty "
                                             f"value, got {text!r}")
        try:
            values = [int(part) for part in parts]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated integers like 128,64, got {text!r}") from None
        if spec.low is not None and min(values) < spec.low:
            raise argparse.ArgumentTypeError(f"every value must be an integer >= {spec.low:g}, got {text!r}")
        return values
    parse.__name__ = spec.flag[2:]
    return parse


def table_type(flag: str, names: list[str], bases: dict[str, dict] | None = None):
    """An argparse type: 'rotate=5,p=0.5' -> {'rotate': 5.0, 'p': 0.5}, each name one of ``names``
    (a near miss gets "did you mean"), each value a number; what the numbers may be is for the
    table's own type to say (TrainConfig.validate). A first part that is a key of ``bases``
    starts from that whole table: 'clothes,p=0.5' is the clothes' settings with p = 0.5."""
    bases = bases or {}

    def parse(text: str) -> dict[str, float]:
        table = {}
        first, _, rest = text.partition(",")
        if first.strip() in bases:
            table, text = dict(bases[first.strip()]), rest
            if not text.strip():
                return table
        given: set[str] = set()
        for part in text.split(","):
            name, equals, value = (piece.strip() for piece in part.partition("="))
            if not (name and equals and value):
                if name in bases:
                    raise argparse.ArgumentTypeError(f"{name!r} names a whole table: give it first, "
                                                     f"then NAME=VALUE pairs, e.g. {name},p=0.5")
                near = difflib.get_close_matches(name, list(bases), n=1)
                if near:
                    raise argparse.ArgumentTypeError(f"unknown table {name!r} (did you mean {near[0]!r}?); "
                                                     f"the whole tables: {', '.join(bases)}")
                kinds = f" (or a whole table first: {', '.join(bases)})" if bases else ""
                raise argparse.ArgumentTypeError(f"expected NAME=VALUE pairs like {names[0]}=1.5,p=0.5{kinds}, "
                                                 f"got {text!r}")
            if name not in names:
                near = difflib.get_close_matches(name, names, n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                raise argparse.ArgumentTypeError(f"unknown setting {name!r}{hint}; known: {', '.join(names)}")
            if name in given:
                raise argparse.ArgumentTypeError(f"{name} is given twice in {text!r}; give each setting once")
            given.add(name)
            try:
                table[name] = float(value)
            except ValueError:
                raise argparse.ArgumentTypeError(f"{name} must be a number, got {value!r}") from None
        return table
    parse.__name__ = flag[2:]
    return parse


def suggest_flag(parser: argparse.ArgumentParser, unknown: str,
                 commands: dict[str, argparse.ArgumentParser] | None = None) -> str:
    """'; did you mean --epochs?' for a mistyped flag of ``parser``, '; --threads is a flag of train,
    ...' for another of ``commands``' flags, else ''. Names are compared without their dashes, and
    only close ones (the advice audit: --threads to evaluate was offered --transpose, which then
    read every image turned over; --tta to train, --out)."""
    name = unknown.split("=", 1)[0]
    owners = [command for command, other in (commands or {}).items() if other is not parser and name in _flags(other)]
    if owners:
        return f"; {name} is a flag of {', '.join(owners)}, not of {parser.prog.split()[-1]}"
    near = difflib.get_close_matches(name.lstrip("-"), [flag[2:] for flag in _flags(parser)], n=1, cutoff=0.7)
    return f"; did you mean --{near[0]}?" if near else ""


def _flags(parser: argparse.ArgumentParser) -> list[str]:
    """The flags ``--help`` shows (not the hidden ones a command parses only to refuse)."""
    return [s for action in parser._actions if action.help != argparse.SUPPRESS
            for s in action.option_strings if s.startswith("--")]
