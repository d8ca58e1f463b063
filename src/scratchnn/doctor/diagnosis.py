"""Diagnosis: every rule (``rules_causes``, ``rules_symptoms``, ``rules_fit``) over one run's
tables, the most telling finding first."""
from __future__ import annotations

import bisect
import dataclasses

from . import advice_data, rules_causes, rules_symptoms, rules_fit  # noqa: F401  (registers every rule: causes,
# then symptoms, then how the network fits; and the fixes of what the data and the fit show)
from ..errors import DataError
from .advice import CAUSES, SATURATING_CAUSES, Settings, fitted, step_name
from .findings import RULES, Finding, RunHealth
from .signals import Row, check_health_rows, check_metric_rows


def diagnose(metrics, health=None, settings: Settings | None = None) -> list[Finding]:
    """Every finding on a run's tables, the most telling first.

    ``metrics`` and ``health`` are rows (dicts for metrics, ``Row``s or 4-tuples for health), or
    ``metrics`` is a ``RunHealth`` of both; see doctor.signals for their columns. The tables are read as the
    live doctor read them, evaluation by evaluation, so what ``scratchnn train`` printed, its
    summary and ``scratchnn doctor`` agree: a condition that held for a while and not at the end
    (a loss at chance for 30 iterations, then learning) is a finding, at the epoch it held. One
    thing the live doctor could not know: a symptom met before its cause points to that cause
    here (``traced_to_later_causes``).
    Findings come in diagnosis order (causes before symptoms), ``advice`` after every error and
    warning. Given the run's ``settings``, each fix names the values to change (doctor.advice).
    """
    run = metrics if isinstance(metrics, RunHealth) else RunHealth(metrics, health)
    doctor = Doctor(settings, step_name(settings, run))  # the whole run tells what a step is
    epochs = run.epochs
    evaluated = [m["epoch"] for m in run.metrics]
    looks = [epoch for i, epoch in enumerate(epochs)
             if not (evaluated and epoch < evaluated[0])  # the live doctor first looks at the first evaluation
             and (examined(bisect.bisect_right(evaluated, epoch)) or i == len(epochs) - 1)]
    for tables in run.as_they_grew(looks):
        doctor.examine(tables)
    order = {rule.id: i for i, rule in enumerate(RULES)}
    found = traced_to_later_causes(doctor.findings, run, settings, doctor.step)
    return sorted(found, key=lambda f: (f.severity == "advice", order[f.id]))


def traced_to_later_causes(findings: list[Finding], run: RunHealth, settings: Settings | None,
                           step: str | None = None) -> list[Finding]:
    """The findings, each symptom whose root cause (advice.CAUSES: the data, the labels, the
    initial weights, the loss code) the run showed only later pointed to it: the live doctor
    fits a fix when it meets a finding, and a symptom met first kept its own (the doctor audit:
    shuffled labels' [dead-relu] never pointed to [memorising]). A rate found wrong later is not
    such a cause: random labels end in steps that look too small, and one-cycle's last steps
    are tiny by design (the re-audit: [chance-loss] at 60 sent to "raise --lr" by an
    [lr-too-low] at 250). Other fixes stay as they were."""
    general = {rule.id: rule.fix for rule in RULES}
    whole = fitted([dataclasses.replace(f, fix=general[f.id]) for f in findings], run, settings, step=step)
    roots = tuple(f"this follows from [{cause}]" for cause in (*CAUSES, *SATURATING_CAUSES))
    return [later if later.fix.startswith(roots) and later.fix != found.fix else found
            for found, later in zip(findings, whole)]


EVERY_EVALUATION = 100  # the first evaluations are all examined; after them, ...
LATER_SHARE = 20  # ... one in (evaluations so far // this): each examination reads the whole table


def examined(evaluations: int) -> bool:
    """Whether the doctor examines the tables when they hold ``evaluations`` evaluations: each
    of the first EVERY_EVALUATION, then each 1/LATER_SHARE past the last one examined (100, 105,
    110, ..., 120, 126, ...: a finding is at most 5% of the run late), so examinations grow with
    the log of the run. Examining all of them cost the square of their number (a seed run
    evaluated at each of 3,000 iterations: 12 s of training, 165 s of doctor); one in
    ``evaluations // 20`` still made one in 20 (1,000 examinations of a 20,000-evaluation run,
    two minutes). The rules date each finding from the rows, and the live doctor and
    ``diagnose`` examine alike."""
    if evaluations <= EVERY_EVALUATION:
        return True
    mark = EVERY_EVALUATION
    while mark < evaluations:
        mark += mark // LATER_SHARE
    return mark == evaluations


class Doctor:
    """The live doctor: ``update`` after each evaluation returns the findings that are new, at
    the evaluations ``examined`` picks; pass ``last=True`` at the run's last one (or call it once
    more after the loop), so it has looked at everything ``diagnose`` will.

    It is called at every evaluation with the run's growing health table, so it validates only
    the rows added since the last call and examines only the rules that have not fired yet
    (each reports once): on the seed network, revalidating and re-examining everything each
    time cost 8% of the training time. Given the run's ``settings``, fixes name its values;
    ``step`` is what the findings' numbers count (default: as the settings or the tables say)."""

    def __init__(self, settings: Settings | None = None, step: str | None = None):
        self.settings, self.step = settings, step
        self.seen: dict[str, Finding] = {}
        self._run = RunHealth([], [])  # the tables so far, each row checked and indexed once, as it comes

    def update(self, metrics, health: list[Row], last: bool = False) -> list[Finding]:
        """The new findings, when the tables are ``examined`` (or it is the ``last`` evaluation)."""
        held = self._run
        if len(health) < len(held.rows) or len(metrics) < len(held.metrics):  # not the same growing tables
            held = self._run = RunHealth([], [])
        new = check_metric_rows(metrics[len(held.metrics):])
        if held.metrics and new and new[0]["epoch"] <= held.metrics[-1]["epoch"]:
            raise DataError(f"metrics: epochs must increase row by row, got {held.metrics[-1]['epoch']} "
                            f"then {new[0]['epoch']}")
        held.grow(new, check_health_rows(health[len(held.rows):]))
        if not (examined(len(metrics)) or last):
            return []
        return self.examine(held)

    def examine(self, run: RunHealth) -> list[Finding]:
        """The findings of the rules that have not fired yet on ``run``'s tables as they stand."""
        found = [f for f in (r.examine(run) for r in RULES if r.id not in self.seen) if f is not None]
        new = fitted(sorted(found, key=lambda f: f.severity == "advice"), run, self.settings,  # diagnose's order
                     earlier=self.seen.values(), step=self.step)
        self.seen.update((f.id, f) for f in new)
        return new

    @property
    def findings(self) -> list[Finding]:
        return list(self.seen.values())
