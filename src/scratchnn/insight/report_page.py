"""The report's page: ``render_page`` writes the HTML of ``report.html`` around figures drawn
by ``report`` (each a ``ReportFigure``), the run's summary table and its configuration; every
string that comes from the run is HTML-escaped."""
from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import ScratchnnError, shell_word
from ..training.config import CONFIG_FILE, TrainConfig
from ..training.run_data import data_source
from .report_health import HEALTH_CSS


@dataclass
class ReportFigure:
    name: str  # file stem: <name>.png
    title: str
    caption: str
    png: bytes
    size: tuple[float, float]  # inches (width, height)


def render_page(run_dir: Path, model, metadata: dict, config: TrainConfig, rows, figures, notes, predicted,
                which: str, health: str = "", augmentation: str = "") -> str:
    """The HTML text of the report; every run-supplied string goes through html.escape (``health``:
    the Health section's HTML, already escaped by report_health; ``augmentation``: the summary's
    words for what the run trained on, report.trained_augmentation's)."""
    e = html.escape
    title = f"scratchnn run report: {run_dir.resolve().name}"
    created = metadata.get("created", "")
    subtitle = " · ".join(str(part) for part in (
        run_dir.resolve(), f"trained {created}" if created else "",
        f"scratchnn {metadata.get('scratchnn_version', '?')}") if part)
    summary = "".join(f"<tr><th>{e(key)}</th><td>{e(value)}</td></tr>"
                      for key, value in summary_rows(model, metadata, config, rows, predicted, which,
                                                               augmentation))
    notes_html = ("<section class='notes'><h2>Notes</h2><ul>" + "".join(f"<li>{e(n)}</li>" for n in notes)
                  + "</ul></section>") if notes else ""
    figures_html = "".join(figure_html(f) for f in figures)
    options = "".join(f"<div><dt>{e(key)}</dt><dd>{_config_value(value, path=key in PATH_OPTIONS)}</dd></div>"
                      for key, value in config.shown().items())
    generated = datetime.now().astimezone().isoformat(timespec="seconds")  # with its offset: whose clock
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}</title>
<style>{CSS}{HEALTH_CSS}</style>
</head>
<body>
<main>
<header><h1>{e(title)}</h1><p class="muted">{e(subtitle)}</p></header>
{notes_html}
<section><h2>Summary</h2><table class="summary">{summary}</table></section>
<section><h2>Figures</h2>{figures_html or "<p class='muted'>No figures could be drawn (see the notes).</p>"}</section>
{health}
<section><h2>Architecture</h2><pre>{e(model.summary())}</pre></section>
<section><h2>Configuration</h2><p class="muted">As saved with the model; <code>scratchnn train --config
{e(shell_word(run_dir.resolve() / CONFIG_FILE))}</code> repeats the run.</p><dl class="config">{options}</dl></section>
<footer class="muted">Generated {e(generated)} by scratchnn {e(__version__)} (<code>scratchnn report</code>).</footer>
</main>
</body>
</html>
"""


def summary_rows(model, metadata: dict, config: TrainConfig, rows, predicted, which: str,
                 augmentation: str = "") -> list[tuple[str, str]]:
    """(label, value) lines of the summary table (``augmentation``: its row's words, '' for none)."""
    final = metadata.get("metrics", {})
    step = config.step_name
    try:
        dataset = data_source(config).describe()
    except ScratchnnError as error:
        dataset = f"unknown ({error})"
    if "train_samples" in final:
        dataset += f" ({final['train_samples']:,} train / {final.get('dev_samples', 0):,} dev images)"
    lines = [("Dataset", dataset),
             ("Model", f"{model.widths()}, {model.num_parameters:,} parameters"),
             ("Optimisation", config.describe()),
             *([("Augmentation", augmentation)] if augmentation else []),
             (f"{step.capitalize()}s", f"{final.get('epochs', rows[-1]['epoch'] if rows else '?')} of {config.epochs}"),
             ("Training time", _duration(final["train_seconds"]) if "train_seconds" in final else "not recorded")]
    for split, best_is in (("train", "best during training"), ("dev", "best evaluation")):
        text = f"{_percent(final.get(f'{split}_accuracy'))} (final weights)"
        history = [r for r in rows if math.isfinite(r[f"{split}_accuracy"])]
        if history:
            best = max(history, key=lambda r: r[f"{split}_accuracy"])
            text += f"; {best_is} {_percent(best[f'{split}_accuracy'])} ({step} {best['epoch']:g})"
        lines.append((f"{split.capitalize()} accuracy", text))
    if "test_accuracy" in final:
        lines.append(("Test accuracy", f"{_percent(final['test_accuracy'])} ({final.get('test_samples', 0):,} images)"))
    if predicted is not None:
        _, labels, probs, _, description = predicted
        correct = int(np.count_nonzero(probs.argmax(axis=1) == labels))
        lines.append(("Figures measured on", f"{description}: {correct:,} of {len(labels):,} correct "
                      f"({_percent(correct / len(labels))})"))
    else:
        lines.append(("Figures measured on", f"the {which} set could not be loaded (see the notes)"))
    return lines


def _percent(value) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.2%}"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


PATH_OPTIONS = ("csv", "images", "labels", "data_dir")


def _config_value(value, path: bool = False) -> str:
    if value == "" or value == []:
        return f"<span class='muted'>{'not set' if value == '' else 'none'}</span>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        value = ", ".join(map(str, value))
    text = html.escape(str(value))
    # a long path may break after a separator (<wbr>), never in the middle of a name
    return text.replace("/", "/<wbr>").replace("\\", "\\<wbr>") if path else text


def figure_html(figure: ReportFigure) -> str:
    width, height = (round(s * 96) for s in figure.size)  # CSS px: 96 per inch
    data = base64.b64encode(figure.png).decode("ascii")
    return (f"<figure id='{figure.name}'><h3>{html.escape(figure.title)}</h3>"
            f"<img src='data:image/png;base64,{data}' width='{width}' height='{height}' "
            f"alt='{html.escape(figure.title, quote=True)}'>"
            f"<figcaption>{html.escape(figure.caption)} <span class='muted'>({figure.name}.png)</span>"
            "</figcaption></figure>")


CSS = """
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --card: #ffffff; }
* { box-sizing: border-box; }
body { margin: 0; background: #f6f8fa; color: var(--ink);
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1200px; margin: 0 auto; padding: 24px 20px 40px; }
h1 { font-size: 26px; margin: 0 0 4px; overflow-wrap: anywhere; }
h2 { font-size: 19px; margin: 0 0 12px; }
h3 { font-size: 16px; margin: 0 0 8px; }
section, header { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
                  padding: 16px 20px; margin-bottom: 16px; }
.muted { color: var(--muted); }
.notes { background: #fff8c5; border-color: #d4a72c; }
.notes ul { margin: 0; padding-left: 20px; }
table.summary { border-collapse: collapse; width: 100%; }
table.summary th, table.summary td { text-align: left; vertical-align: top; padding: 6px 10px;
                                     border-bottom: 1px solid var(--line); overflow-wrap: anywhere; }
table.summary th { width: 190px; font-weight: 600; white-space: nowrap; }
figure { margin: 0 0 24px; padding-bottom: 16px; border-bottom: 1px solid var(--line); }
figure:last-child { margin-bottom: 0; padding-bottom: 0; border-bottom: 0; }
figure img { display: block; max-width: 100%; height: auto; margin: 0 auto; }
figcaption { margin-top: 8px; color: var(--ink); }
pre { background: #f6f8fa; border: 1px solid var(--line); border-radius: 6px; padding: 12px;
      overflow-x: auto; font-size: 13px; margin: 0; }
code { font-size: 13px; }
dl.config { column-width: 17rem; column-gap: 24px; margin: 0; }
dl.config div { break-inside: avoid; display: flex; gap: 8px; padding: 3px 0; border-bottom: 1px solid var(--line); }
dl.config dt { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 13px; flex: 0 0 8.5rem; }
dl.config dd { margin: 0; overflow-wrap: anywhere; }
footer { font-size: 13px; text-align: center; }
"""
