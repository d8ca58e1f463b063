"""Diagnosis: every rule (``doctor.rules_causes``, ``doctor.rules_symptoms``) over one run's tables, the most telling finding first."""
from __future__ import annotations

from . import rules_causes, rules_symptoms  # noqa: F401  (importing them registers every rule: causes first)
from .findings import RULES, Finding, RunHealth
from .signals import Row


def diagnose(metrics, health) -> list[Finding]:
    """Every finding on a run's tables, the most telling first.

    ``metrics`` and ``health`` are rows (dicts for metrics, ``Row``s or 4-tuples for health), or
    a ``RunHealth``'s inputs; see doctor.signals for their columns. Findings come in diagnosis
    order (causes before symptoms), ``advice`` after every error and warning.
    """
    run = metrics if isinstance(metrics, RunHealth) else RunHealth(metrics, health)
    findings = [f for f in (r.examine(run) for r in RULES) if f is not None]
    return sorted(findings, key=lambda f: f.severity == "advice")  # stable: keeps the rules' order


class Doctor:
    """The live doctor: ``update`` after each evaluation returns the findings that are new."""

    def __init__(self):
        self.seen: dict[str, Finding] = {}

    def update(self, metrics, health: list[Row]) -> list[Finding]:
        new = [f for f in diagnose(metrics, health) if f.id not in self.seen]
        self.seen.update((f.id, f) for f in new)
        return new

    @property
    def findings(self) -> list[Finding]:
        return list(self.seen.values())
