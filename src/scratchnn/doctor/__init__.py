"""The training doctor: recognises the classic ways training goes wrong from the numbers.

It diagnoses from two tables and nothing else (not the config, not the preset, not the faults):
a run's ``metrics.csv`` (loss and accuracy per evaluation) and ``health.csv`` (per-layer
signals: gradient and weight RMS, update-to-weight ratio, dead and saturated units...; see
``doctor.signals``). So a learner's own NumPy network, recorded with ``HealthLog``, is
diagnosed exactly like a scratchnn run::

    findings = diagnose(metrics_rows, health_rows)
    findings = diagnose_run("runs/20261202-101500-seed")

Only the fixes read the run's settings, when given them (``Settings``; ``scratchnn train`` and
``scratchnn doctor`` pass the run's config): "lower --lr from 50 to 0.05" instead of "by 10x",
and nothing the run does already (``doctor.advice``).

``rules_causes``, ``rules_symptoms`` and ``rules_fit`` hold the diagnoses (``thresholds`` their limits),
``faults`` the break-it lab (``train --fault NAME``).
"""
from pathlib import Path

from .advice import Settings
from .diagnosis import Doctor, diagnose
from .findings import RULES, Finding, RunHealth
from .record import HealthLog
from .signals import HEALTH_FILE, METRICS_FILE, read_health_csv, read_metrics_csv

__all__ = ["diagnose", "diagnose_run", "Finding", "RunHealth", "Doctor", "HealthLog", "RULES", "Settings"]


def diagnose_run(run_dir, settings: Settings | None = None) -> list[Finding]:
    """Every finding on a run folder's metrics.csv and health.csv (fixes fitted to ``settings``)."""
    run_dir = Path(run_dir)
    tables = RunHealth(read_metrics_csv(run_dir / METRICS_FILE), read_health_csv(run_dir / HEALTH_FILE),
                       health_checked=True, metrics_checked=True)  # (the readers check every row)
    return diagnose(tables, settings=settings)
