"""The report's Health section: the training doctor's signals over time, and its findings.

Read from the run's ``health.csv`` and ``metrics.csv`` through ``scratchnn.doctor``, exactly
as ``scratchnn doctor RUN_DIR`` reads them, so the page and the command never disagree. A run
without health.csv (trained before the doctor existed, or with ``--doctor off``) gets a
sentence saying so instead; an unreadable one gets a note, and the rest of the report stands.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

from ..doctor import RunHealth, Settings, diagnose
from ..doctor.findings import Finding
from ..doctor.signals import HEALTH_FILE, METRICS_FILE, Row, read_health_csv, read_metrics_csv
from ..errors import DataError, ShapeError

HEALTH_FIGURES = ("health_gradients", "health_units")
ABSENT = (f"This run has no {HEALTH_FILE}: it was trained before scratchnn recorded health signals, or with "
          "--doctor off. Train it again with --doctor on (the default) to see its gradients, update sizes, "
          "dead or saturated units and the doctor's findings here.")


@dataclass
class Health:
    """What the section shows: the rows of health.csv (None: no section, ``absent`` says why),
    the findings (None: the doctor could not run, a note says why) and figures it could not draw."""

    rows: list[Row] | None
    findings: list[Finding] | None = None
    absent: str = ""
    missing: list[str] = field(default_factory=list)


def read_health(run_dir: Path, notes: list[str], settings: Settings | None = None) -> Health:
    """The run's health table and the doctor's findings on it (fixes fitted to the run's
    ``settings``); notes for what could not be read."""
    path = run_dir / HEALTH_FILE
    if not path.exists():
        return Health(None, absent=ABSENT)
    try:
        rows = read_health_csv(path)
    except DataError as error:
        notes.append(f"{HEALTH_FILE} could not be read ({error}), so there is no Health section.")
        return Health(None, absent=f"The run's {HEALTH_FILE} could not be read (see the notes).")
    try:
        tables = RunHealth(read_metrics_csv(run_dir / METRICS_FILE), rows, health_checked=True, metrics_checked=True)
        findings = diagnose(tables, settings=settings)
    except DataError as error:
        notes.append(f"The doctor could not read this run's tables ({error}), so the Health section has no findings.")
        findings = None
    return Health(rows, findings)


def health_figures(health: Health, step: str):
    """(name, title, caption, Figure) of each health figure that can be drawn from the rows;
    what cannot (a table without gradients, a network without ReLU, sigmoid or tanh) is
    recorded in ``health.missing``."""
    from ..plots import gradient_figure, units_figure  # matplotlib only when a report is drawn

    if health.rows is None:
        return []
    drawn = []
    for name, title, caption, draw in (
            ("health_gradients", "Gradients and update sizes",
             f"Each weight layer's gradient RMS √mean(dW²) and update ratio ‖ΔW‖/‖W‖, measured on the last step "
             f"before each evaluation ({step} 0: the first step, from the untrained weights). A healthy ratio is "
             "around 1e-3 (shaded); far below, the layer barely moves; far above, each step rewrites it. A first "
             "layer whose gradient is thousands of times smaller than the last's is not learning.",
             gradient_figure),
            ("health_units", "Dead and saturated units",
             "Measured on a fixed sample of training images at each evaluation: the share of a ReLU layer's "
             "units that never fired (output > 0) on any of them, and the share of sigmoid or tanh outputs on "
             "their flat tails (|tanh| > 0.99; sigmoid below 0.01 or above 0.99), where almost no gradient "
             "passes.", units_figure)):
        try:
            drawn.append((name, title, caption, draw(health.rows, step)))
        except ShapeError as error:
            health.missing.append(f"No {title.lower()} figure: {error}.")
    return drawn


def health_html(health: Health, figures_html: str, step: str = "epoch") -> str:
    """The section's HTML: the findings first (what a learner came for), then the figures."""
    e = html.escape
    if health.rows is None:
        return f"<section id='health'><h2>Health</h2><p class='muted'>{e(health.absent)}</p></section>"
    if health.findings is None:
        findings = "<p class='muted'>No findings: the doctor could not read the tables (see the notes).</p>"
    elif not health.findings:
        evaluations = len({row.epoch for row in health.rows})
        findings = (f"<p>The doctor found nothing wrong in {evaluations} evaluation{'s' * (evaluations != 1)} "
                    "of this run's health signals.</p>")
    else:
        findings = "<div class='findings'>" + "".join(_finding_html(f, step) for f in health.findings) + "</div>"
    missing = "".join(f"<p class='muted'>{e(text)}</p>" for text in health.missing)
    return (f"<section id='health'><h2>Health</h2><p class='muted'>What <code>scratchnn doctor</code> reads "
            f"from this run's {HEALTH_FILE} and {METRICS_FILE}.</p>{findings}{figures_html}{missing}</section>")


def _finding_html(finding: Finding, step: str) -> str:
    e = html.escape
    where = f" {e(finding.layer)}:" if finding.layer and finding.layer not in finding.message else ""
    return (f"<div class='finding {e(finding.severity, quote=True)}'><p><code>[{e(finding.id)}]</code> "
            f"<strong>{e(finding.severity)}</strong>:{where} {e(finding.message)} "
            f"<span class='muted'>({step} {finding.epoch})</span></p><p>{e(finding.explanation)}</p>"
            f"<p><strong>Fix:</strong> {e(finding.fix)}</p></div>")


HEALTH_CSS = """
.findings { margin-bottom: 16px; }
.finding { border-left: 4px solid var(--line); padding: 4px 12px; margin-bottom: 10px; }
.finding p { margin: 4px 0; }
.finding.error { border-color: #cf222e; }
.finding.warning { border-color: #bf8700; }
.finding.advice { border-color: #0969da; }
"""
