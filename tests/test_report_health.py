"""The report's Health section: the doctor's figures and findings from health.csv, escaped; a run
without health.csv or with a broken one still gets its report, saying so."""
import csv
import html
import math
import re
import shutil

import numpy as np
import pytest
from test_report import SCRIPT, Page, small_csv, tiny_run

from scratchnn.doctor import diagnose_run
from scratchnn.doctor.signals import HEALTH_FILE, Row, read_health_csv, write_health_csv
from scratchnn.errors import ConfigError, ShapeError
from scratchnn.plots.health import MAX_LINES, gradient_figure, layer_series, units_figure
from scratchnn.insight.report import REPORT_FILE, write_report
from scratchnn.insight.report_health import ABSENT, HEALTH_FIGURES

HOSTILE = SCRIPT + r" $\frac{"  # HTML to escape, and a formula matplotlib's mathtext cannot parse


@pytest.fixture(scope="module")
def sick_run(shared_dir, tmp_path_factory):
    """Two epochs of a zero-initialised MLP on 300/100 real digits: the doctor has findings."""
    base = tmp_path_factory.mktemp("health")
    return tiny_run(small_csv(shared_dir, base), base / "run", preset="sick", fault=["zero-init"])


def copy_run(run, tmp_path):
    return shutil.copytree(run, tmp_path / "copy", ignore=shutil.ignore_patterns("*.png", REPORT_FILE))


def health_section(text: str) -> str:
    start = text.index("<section id='health'>")
    return text[start:text.index("</section>", start)]


def test_the_health_section_shows_the_figures_and_every_finding(sick_run, tmp_path):
    run = copy_run(sick_run, tmp_path)
    lines = []
    text = write_report(run, log=lines.append).read_text(encoding="utf-8")
    assert Page(text).open == []
    section = health_section(text)
    for name in HEALTH_FIGURES:
        png = (run / f"{name}.png").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 10_000, name
        assert f"<figure id='{name}'>" in section, f"{name} is not in the Health section"
        assert f"<figure id='{name}'>" not in text.replace(section, ""), f"{name} is drawn twice"
    assert lines[-1].endswith("health_gradients.png, health_units.png)")
    findings = diagnose_run(run)
    assert [f.id for f in findings][:1] == ["symmetric-units"], "the zero-init run should be diagnosed"
    shown = re.findall(r"<code>\[(.*?)\]</code> <strong>(.*?)</strong>", section)
    assert shown == [(f.id, f.severity) for f in findings]  # all of them, in the doctor's order
    for finding in findings:
        for text_part in (finding.message, finding.explanation, finding.fix):
            assert html.escape(text_part) in section, text_part
        assert f"<div class='finding {finding.severity}'>" in section
    assert "class='notes'" not in text


def test_a_hostile_layer_label_is_escaped_on_the_page_and_drawn_verbatim(sick_run, tmp_path):
    run = copy_run(sick_run, tmp_path)
    rows = [Row(r.epoch, HOSTILE if r.layer == "1.ReLU" else r.layer, r.signal, r.value)
            for r in read_health_csv(run / HEALTH_FILE)]
    write_health_csv(run / HEALTH_FILE, rows)
    text = write_report(run, log=lambda line: None).read_text(encoding="utf-8")
    assert "<script" not in text
    section = health_section(text)
    assert "[dead-relu]" in section  # the finding that names the relabelled layer...
    assert html.escape(HOSTILE) in section  # ...shows the label as text
    assert (run / "health_units.png").exists()  # '$' did not start a formula that fails the figure


def test_a_run_without_health_says_so_instead_of_the_section(sick_run, tmp_path):
    run = copy_run(sick_run, tmp_path)
    (run / HEALTH_FILE).unlink()  # a run from before the doctor, or trained with --doctor off
    lines = []
    text = write_report(run, log=lines.append).read_text(encoding="utf-8")
    section = health_section(text)
    assert html.escape(ABSENT) in section and "<figure" not in section and "class='finding" not in section
    assert not any((run / f"{name}.png").exists() for name in HEALTH_FIGURES)
    assert "class='notes'" not in text and "6 figures" in lines[-1]  # nothing is wrong: it is just older


def test_a_corrupt_health_csv_is_a_note_and_the_rest_of_the_report_stands(sick_run, tmp_path):
    run = copy_run(sick_run, tmp_path)
    (run / HEALTH_FILE).write_text("epoch,layer,signal,value\n0,model,stepz,1\n")
    lines = []
    text = write_report(run, log=lines.append).read_text(encoding="utf-8")
    notes = re.findall(r"<li>(.*?)</li>", text)
    assert len(notes) == 1 and "health.csv could not be read" in notes[0] and "unknown signal" in notes[0]
    assert "\n" not in notes[0]
    assert "<figure" not in health_section(text)
    assert "6 figures" in lines[-1] and (run / "training_curves.png").exists()


def test_a_broken_health_csv_never_replaces_a_page_that_had_its_figures(sick_run, tmp_path):
    run = copy_run(sick_run, tmp_path)
    write_report(run, log=lambda line: None)
    before = (run / REPORT_FILE).read_bytes()
    (run / HEALTH_FILE).write_bytes(b"\xff\xfe not text")
    with pytest.raises(ConfigError, match=r"left as it was: it has health_gradients, health_units, .*not UTF-8"):
        write_report(run, log=lambda line: None)
    assert (run / REPORT_FILE).read_bytes() == before
    assert all((run / f"{name}.png").exists() for name in HEALTH_FIGURES)


def test_without_readable_metrics_the_figures_stay_and_the_findings_are_a_note(sick_run, tmp_path):
    run = copy_run(sick_run, tmp_path)
    with (run / "metrics.csv").open() as f:
        table = list(csv.reader(f))
    table[1][0] = "1.5"  # an epoch that is not a whole number
    (run / "metrics.csv").write_text("\n".join(",".join(row) for row in table) + "\n")
    text = write_report(run, log=lambda line: None).read_text(encoding="utf-8")
    section = health_section(text)
    assert all(f"<figure id='{name}'>" in section for name in HEALTH_FIGURES)
    assert "the doctor could not read the tables" in section and "<code>[" not in section
    assert "The doctor could not read this run&#x27;s tables" in text and "epoch must be a whole number" in text


# --- the figures on their own ------------------------------------------------------------
def rows_of(table):
    """Rows from {(layer, signal): [values at epochs 0, 1, ...]}."""
    return [Row(epoch, layer, signal, value) for (layer, signal), values in table.items()
            for epoch, value in enumerate(values)]


def test_layer_series_keeps_each_layer_in_order_and_ignores_the_model_rows():
    rows = rows_of({("0.Dense", "grad_rms"): [1.0, 2.0], ("2.Dense", "grad_rms"): [3.0, 4.0],
                    ("0.Dense", "weight_rms"): [5.0, 6.0], ("model", "steps"): [0, 1]})
    series = layer_series(reversed(rows), "grad_rms")
    assert list(series) == ["2.Dense", "0.Dense"]  # first seen first: the order the rows came in
    assert series["0.Dense"][0].tolist() == [0, 1] and series["0.Dense"][1].tolist() == [1.0, 2.0]
    assert layer_series(rows, "steps") == {}


def test_the_gradient_figure_counts_what_a_log_axis_cannot_draw():
    rows = rows_of({("0.Dense", "grad_rms"): [0.0, 0.0, 0.0], ("2.Dense", "grad_rms"): [1e-2, 2e-2, 3e-2],
                    ("0.Dense", "update_ratio"): [math.nan, math.inf, 1e-3]})
    fig = gradient_figure(rows, "iteration")
    ax_grad, ax_ratio = fig.axes
    assert ax_grad.get_yscale() == ax_ratio.get_yscale() == "log"
    labels = ax_grad.get_legend_handles_labels()[1]
    assert labels == ["0.Dense (3 of 3 not drawn: 0, NaN or inf)", "2.Dense"]
    ratio_labels = ax_ratio.get_legend_handles_labels()[1]
    assert "0.Dense (2 of 3 not drawn: 0, NaN or inf)" in ratio_labels
    assert any(label.startswith("healthy") for label in ratio_labels)
    band = next(p for p in ax_ratio.patches if p.get_label().startswith("healthy"))
    box = band.get_window_extent()  # a Rectangle, or before matplotlib 3.9 a Polygon: where it is drawn
    low, high = ax_ratio.transData.inverted().transform([[0, box.y0], [0, box.y1]])[:, 1]
    assert low < 1e-3 < high  # the shaded band is around 1e-3
    assert ax_grad.get_xlabel() == "iteration"
    with pytest.raises(ShapeError, match="no grad_rms or update_ratio rows"):
        gradient_figure(rows_of({("model", "steps"): [0]}))


def test_the_units_figure_draws_the_signals_recorded_and_cuts_too_many_layers():
    dead_only = rows_of({("1.ReLU", "dead_fraction"): [0.1, 0.9]})
    fig = units_figure(dead_only)
    assert len(fig.axes) == 1 and fig.axes[0].get_title() == "Dead units (never fired)"
    many = rows_of({(f"{i}.Tanh", "saturated_fraction"): [0.0, 0.5] for i in range(MAX_LINES + 3)}
                   | {("0.ReLU", "dead_fraction"): [0.2, 0.3]})
    fig = units_figure(many)
    assert [ax.get_title() for ax in fig.axes] == ["Dead units (never fired)", "Saturated outputs (flat tails)"]
    assert len(fig.axes[1].get_lines()) == MAX_LINES + 1  # the layers drawn and the doctor's limit
    assert "3 more not drawn" in fig.get_suptitle()
    with pytest.raises(ShapeError, match="no dead_fraction or saturated_fraction rows"):
        units_figure(rows_of({("0.Dense", "grad_rms"): [np.float64(1.0)]}))
