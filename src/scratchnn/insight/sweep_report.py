"""``scratchnn report SWEEP_DIR``: a sweep's figures and trials on one page, ``sweep.html``.

Optuna's matplotlib visualisations (optimisation history, parameter importances, parallel
coordinates, slices) as embedded PNGs, then one row per trial with its params, outcome and a
link to the trial's own report (written here for finished trials that have none yet).
Needs the ``tune`` extra (Optuna) and matplotlib.
"""
from __future__ import annotations

import base64
import html
import warnings
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from .. import plots  # noqa: F401  (first: without matplotlib, the one-line MissingExtra that names the extra)

import matplotlib.pyplot as plt  # noqa: E402  (Optuna draws with pyplot; the backend stays the caller's)

from .. import __version__  # noqa: E402
from ..errors import ScratchnnError, readable, shell_word  # noqa: E402
from ..files import atomic_write_bytes  # noqa: E402
from ..training.run import REPORT_FILE  # noqa: E402
from ..plots.common import figure_png  # noqa: E402

SWEEP_REPORT_FILE = "sweep.html"
CSS = """body{font:15px/1.45 system-ui,sans-serif;margin:0;background:#fafafa;color:#222}
main{max-width:1100px;margin:auto;padding:1.5em}h1{font-size:1.5em}.muted{color:#666}
figure{margin:1em 0;background:#fff;padding:.5em;border:1px solid #ddd}img{max-width:100%;height:auto}
table{border-collapse:collapse;background:#fff;font-size:.9em}td,th{border:1px solid #ddd;padding:.3em .6em;
text-align:left}tr.best{background:#eef7ee}code{background:#eee;padding:0 .2em}"""


TRIAL_REPORTS = 20  # the best trials whose run reports the sweep's report draws


def write_sweep_report(sweep_dir, log: Callable[[str], None] = print, trial_reports: bool = True) -> Path:
    """Draw the sweep in ``sweep_dir`` into ``sweep_dir/sweep.html``; returns its path."""
    import optuna
    from optuna.trial import TrialState

    from ..tune.study import open_study, read_sweep_folder

    folder = read_sweep_folder(Path(sweep_dir))
    study = open_study(folder.storage(), folder.seed, name=folder.study)
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    notes, figures = [], []
    if trial_reports:
        _write_trial_reports(folder, complete, log, notes)
    optuna_plots = optuna.visualization.matplotlib  # not ..plots, imported above for its check
    drawings = [("Optimisation history", "dev accuracy of each trial and the best so far",
                 optuna_plots.plot_optimization_history),
                ("Parameter importances", "how much each option sets the best trials apart from the rest (PED-ANOVA)",
                 lambda study, **names: optuna_plots.plot_param_importances(  # Optuna 4's default, fANOVA, needs
                     study, evaluator=optuna.importance.PedAnovaImportanceEvaluator(), **names)),  # scikit-learn
                ("Parallel coordinates", "each line one trial, coloured by dev accuracy",
                 optuna_plots.plot_parallel_coordinate),
                ("Slices", "dev accuracy against each option", optuna_plots.plot_slice)]
    for title, caption, draw in drawings:
        if len(complete) < 2:
            notes.append(f"{title}: needs at least 2 complete trials ({len(complete)} so far)")
            continue
        before = set(plt.get_fignums())
        try:
            with warnings.catch_warnings(), plt.ioff():  # an interactive session opens no window for it
                warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
                axes = draw(study, target_name="dev accuracy")
                figure = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
                figure.set_size_inches(max(figure.get_size_inches()[0], 7), max(figure.get_size_inches()[1], 4.5))
                figure.tight_layout()  # NOTE: parallel coordinates' twin axes make it warn; harmless
            figures.append((title, caption, figure_png(figure)))
        except (ValueError, RuntimeError, ZeroDivisionError, ImportError) as error:  # e.g. one param with one value
            notes.append(f"{title}: not drawn ({error})")
        finally:
            for number in set(plt.get_fignums()) - before:  # Optuna's figure, not the caller's (a notebook's)
                plt.close(number)
    page = render_sweep_page(folder.path, trials, figures, notes)
    path = atomic_write_bytes(folder.path / SWEEP_REPORT_FILE, readable(page).encode("utf-8"))
    log(f"Sweep report written to {path}")
    return path


def _write_trial_reports(folder, complete, log, notes: list[str]) -> None:
    """A run report for each of the TRIAL_REPORTS best complete trials that has none (each trial
    is an ordinary run folder), saying which it draws: ~3 s each, and a 400-trial sweep's 153
    reports took 7 minutes without a word (the scale audit). The rest are one command away."""
    from .report import write_report

    best = sorted(complete, key=lambda t: (-t.value, t.number))[:TRIAL_REPORTS]
    missing = [t for t in best if not (folder.trial_dir(t.number) / REPORT_FILE).exists()]
    for i, trial in enumerate(missing, start=1):
        run_dir = folder.trial_dir(trial.number)
        log(f"Drawing trial {trial.number}'s report ({i} of {len(missing)})")
        try:
            write_report(run_dir, log=lambda line: None)
        except ScratchnnError as error:
            notes.append(f"trial {trial.number}: no report ({error})")
    rest = len(complete) - len(best)
    log(f"Trial reports: the {len(best)} best complete trial(s) under {folder.path / 'trials'}"
        + (f"; the other {rest}: scratchnn report {shell_word(folder.path / 'trials')}/NNNN" if rest else ""))


def render_sweep_page(sweep_dir: Path, trials, figures, notes) -> str:
    """The HTML text; every study-supplied string goes through html.escape."""
    e = html.escape
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    best = max(complete, key=lambda t: (t.value, -t.number)) if complete else None
    names = sorted({name for t in trials for name in t.params})
    head = "".join(f"<th>{e(n)}</th>" for n in ("trial", *names, "outcome", "doctor", "seconds", "report"))
    rows = []
    for t in trials:
        outcome = (f"dev accuracy {t.value:.4f}" if t.state.name == "COMPLETE" else
                   t.user_attrs.get("pruned", "pruned") if t.state.name == "PRUNED" else
                   f"failed: {t.user_attrs.get('error', '')}" if t.state.name == "FAIL" else t.state.name.lower())
        seconds = f"{t.duration.total_seconds():.1f}" if t.duration else ""
        report = Path("trials") / f"{t.number:04d}" / REPORT_FILE
        link = f"<a href='{e(report.as_posix())}'>report</a>" if (sweep_dir / report).exists() else ""
        doctor = " ".join(t.user_attrs.get("findings") or []) or ("healthy" if "findings" in t.user_attrs else "")
        cells = [str(t.number), *(_value(t.params.get(n, "")) for n in names), outcome, doctor, seconds]
        rows.append(f"<tr{' class=best' if t is best else ''}>" + "".join(f"<td>{e(c)}</td>" for c in cells)
                    + f"<td>{link}</td></tr>")
    figures_html = "".join(
        f"<figure><h3>{e(title)}</h3><img alt='{e(title)}' src='data:image/png;base64,"
        f"{base64.b64encode(png).decode('ascii')}'><figcaption class='muted'>{e(caption)}</figcaption></figure>"
        for title, caption, png in figures)
    notes_html = ("<section><h2>Notes</h2><ul>" + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul></section>"
                  if notes else "")
    ended = [t for t in trials if t.state.name in ("FAIL", "PRUNED")]
    summary = (f"Best: trial {best.number}, dev accuracy {best.value:.4f}; <code>scratchnn train --config "
               f"{e(shell_word(sweep_dir.resolve() / 'best.toml'))}</code> repeats it." if best else
               f"No trial finished well: {len(ended)} of {len(trials)} failed or were pruned (the table says why)."
               if ended else "No trial has completed yet.")
    title = f"scratchnn sweep report: {sweep_dir.resolve().name}"
    generated = datetime.now().astimezone().isoformat(timespec="seconds")  # with its offset: whose clock
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}</title><style>{CSS}</style></head>
<body><main>
<header><h1>{e(title)}</h1><p class="muted">{e(str(sweep_dir.resolve()))} · {len(trials)} trials</p></header>
<p>{summary}</p>
{notes_html}
<section><h2>Figures</h2>{figures_html or "<p class='muted'>No figures yet.</p>"}</section>
<section><h2>Trials</h2><table><tr>{head}</tr>{"".join(rows)}</table></section>
<footer class="muted">Generated {e(generated)} by scratchnn {e(__version__)}.</footer>
</main></body></html>
"""


def _value(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
