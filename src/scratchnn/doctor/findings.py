"""Findings, the rules that make them, and the tables they read.

A rule is a function of a ``RunHealth`` (the metrics and health tables of one run) that returns
a ``Trigger`` (when and what it saw) or None. ``@rule`` registers it with a stable id, a
severity, an explanation a learner can follow and the fix as flags; its docstring states the
precise trigger. Rules are registered in order of diagnosis: causes (the inputs, the labels,
the initialisation, the learning rate) before the symptoms they produce (dead units, one class
for every image, a loss stuck at chance), so the first finding names the cause.
"""
from __future__ import annotations

import bisect
import math
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from types import MappingProxyType

from .signals import MODEL, Row, check_health_rows, check_metric_rows

SEVERITIES = ("error", "warning", "advice")  # error: cannot learn; warning: learns badly


@dataclass(frozen=True)
class Trigger:
    """What a rule saw: the evaluation it first held at, in numbers, and the layer if one; ``fix``
    where the tables themselves call for another than the rule's general one."""

    epoch: int
    message: str
    layer: str | None = None
    fix: str | None = None


@dataclass(frozen=True)
class Finding:
    id: str
    severity: str
    epoch: int
    message: str
    explanation: str
    fix: str
    layer: str | None = None
    step: str = "epoch"  # what ``epoch`` counts: "iteration" in a full-batch run, where an epoch is one step

    def line(self, step: str | None = None) -> str:
        """'[dead-relu] warning: 3.ReLU: 83% of its 256 units never fired (epoch 2)'; ``step``
        overrides what the number is called (the finding's own ``step`` by default)."""
        return f"[{self.id}] {self.severity}: {self.message} ({step or self.step} {self.epoch})"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    explanation: str
    fix: str
    check: Callable[[RunHealth], Trigger | None]

    @property
    def trigger(self) -> str:
        """The rule's precise trigger, as its docstring states it."""
        if self.check.__doc__ is None and sys.flags.optimize >= 2:  # (printed empty: the locale audit)
            return "not shown: python -OO removed the docstrings that state each rule's trigger; run without -OO"
        return " ".join((self.check.__doc__ or "").split())

    def examine(self, run: RunHealth) -> Finding | None:
        found = self.check(run)
        if found is None:
            return None
        return Finding(self.id, self.severity, found.epoch, found.message, self.explanation, found.fix or self.fix,
                       found.layer)

    def to_dict(self) -> dict:
        """What ``scratchnn doctor --rules --json`` prints: the rule in words, its trigger included."""
        return {"id": self.id, "severity": self.severity, "explanation": self.explanation,
                "trigger": self.trigger, "fix": self.fix}


RULES: list[Rule] = []


def rule(id: str, severity: str, explanation: str, fix: str):
    """Register the decorated check as a rule (in diagnosis order: register causes first)."""
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, got {severity!r}")

    def register(check):
        if any(r.id == id for r in RULES):
            raise ValueError(f"a rule named {id!r} is already registered")
        RULES.append(Rule(id, severity, " ".join(explanation.split()), fix, check))
        return check
    return register


class RunHealth:
    """One run's tables, indexed for the rules: metrics per evaluation, signals per layer.

    ``metrics``: rows of metrics.csv as dicts (epoch, train_loss, train_accuracy, dev_loss,
    dev_accuracy); ``health``: ``Row``s or (epoch, layer, signal, value) tuples of health.csv.
    Both are validated (a learner's own tables may say anything), the health rows unless
    ``health_checked`` says they are ``Row``s that ``check_health_rows`` returned already.
    """

    def __init__(self, metrics: Iterable[dict], health: Iterable, health_checked: bool = False,
                 metrics_checked: bool = False):
        self.metrics: list[dict[str, float]] = []
        self.rows: list[Row] = []
        self._signals: dict[tuple[str, str], dict[int, float]] = defaultdict(dict)
        self._layers: dict[str, list[str]] = defaultdict(list)
        self._epochs: set[int] = set()
        self._in_order: list[int] | None = None  # epochs' sorted, until rows come
        self._columns: dict[str, list[tuple[int, float]]] = {}  # metric()'s, grown with the table
        self.grow(list(metrics) if metrics_checked else check_metric_rows(list(metrics)),
                  list(health) if health_checked else check_health_rows(list(health)))

    def grow(self, metrics: list[dict[str, float]], rows: list[Row]) -> None:
        """Add checked rows, as if the tables had held them from the start: the tables a live
        doctor reads grow evaluation by evaluation, and indexing only what is new keeps its cost
        to the rows added (re-indexing everything at each look made a 5,000-evaluation run's
        diagnosis quadratic). ``metrics`` must come after the metrics held, as metrics.csv's do."""
        if metrics and self.metrics and metrics[0]["epoch"] <= self.metrics[-1]["epoch"]:
            raise ValueError("metric rows are added in epoch order")
        self.metrics += metrics
        self.rows += rows
        for row in rows:
            values = self._signals[row.layer, row.signal]
            if not values and row.layer != MODEL:  # (a layer's first row of this signal)
                self._layers[row.signal].append(row.layer)
            values[row.epoch] = row.value
            self._epochs.add(row.epoch)
        self._epochs.update(m["epoch"] for m in metrics)
        self._in_order = None
        for column, values in self._columns.items():
            values += [(m["epoch"], m[column]) for m in metrics if not math.isnan(m[column])]

    def up_to(self, epoch: int) -> RunHealth:
        """The tables as they stood at ``epoch`` (what a live doctor saw then); checked already."""
        return RunHealth([m for m in self.metrics if m["epoch"] <= epoch],
                         [r for r in self.rows if r.epoch <= epoch], health_checked=True, metrics_checked=True)

    def as_they_grew(self, epochs: Iterable[int]) -> Iterator[RunHealth]:
        """The tables as they stood at each of ``epochs`` (ascending), as ``up_to`` gives them:
        one RunHealth grown from one to the next when the health rows are in epoch order (as
        scratchnn and HealthLog write them), else a copy each."""
        rows = self.rows
        if any(a.epoch > b.epoch for a, b in zip(rows, rows[1:])):
            yield from (self.up_to(epoch) for epoch in epochs)
            return
        grown = RunHealth([], [], health_checked=True, metrics_checked=True)
        held_metrics, held_rows = 0, 0
        for epoch in epochs:
            metrics_end = bisect.bisect_right(self.metrics, epoch, key=lambda m: m["epoch"])
            rows_end = bisect.bisect_right(rows, epoch, key=lambda r: r.epoch)
            grown.grow(self.metrics[held_metrics:metrics_end], rows[held_rows:rows_end])
            held_metrics, held_rows = metrics_end, rows_end
            yield grown

    @property
    def epochs(self) -> list[int]:
        """Every epoch that has a row in either table, in order."""
        if self._in_order is None:
            self._in_order = sorted(self._epochs)
        return list(self._in_order)

    @property
    def one_step_per_epoch(self) -> bool:
        """Whether an epoch is one optimizer step (a full-batch run, or a training set no larger
        than a batch): ``steps_per_epoch`` says so, else every evaluation came after as many
        steps as epochs (a table without it, as a loop of one's own writes)."""
        recorded = self.value("steps_per_epoch", MODEL, 0)
        if recorded is not None:
            return recorded == 1
        steps = [(epoch, count) for epoch, count in self.series("steps") if epoch > 0]
        return bool(steps) and all(count == epoch for epoch, count in steps)

    def series(self, signal: str, layer: str = MODEL) -> list[tuple[int, float]]:
        """(epoch, value) of one signal of one layer, in epoch order."""
        return sorted(self._signals.get((layer, signal), {}).items())

    def value(self, signal: str, layer: str = MODEL, epoch: int | None = None) -> float | None:
        """The signal at ``epoch`` (default: its latest); None when it was not recorded."""
        values = self._signals.get((layer, signal), {})
        if epoch is None:
            return values[max(values)] if values else None
        return values.get(epoch)

    def values(self, signal: str, layer: str = MODEL) -> Mapping[int, float]:
        """{epoch: value} of one signal of one layer (read-only): ``value`` for many epochs at once."""
        return MappingProxyType(self._signals.get((layer, signal), {}))

    def layers(self, signal: str) -> list[str]:
        """The layers that recorded ``signal``, first to last as the network runs."""
        return list(self._layers.get(signal, []))

    def metric(self, column: str) -> list[tuple[int, float]]:
        """(epoch, value) of a metrics.csv column, skipping the evaluations where it is NaN."""
        if column not in self._columns:
            self._columns[column] = [(m["epoch"], m[column]) for m in self.metrics if not math.isnan(m[column])]
        return list(self._columns[column])

    @property
    def classes(self) -> int:
        recorded = self.value("classes")
        return int(recorded) if recorded and recorded >= 2 else 10

    @property
    def chance_loss(self) -> float:
        """ln C: the cross-entropy of a uniform guess over C classes."""
        return math.log(self.classes)
