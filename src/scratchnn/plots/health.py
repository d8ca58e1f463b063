"""The training doctor's signals over time: gradients and update sizes, dead and saturated units.

Both figures take the rows of a health.csv (``doctor.signals.Row``s, or (epoch, layer, signal,
value) tuples: what ``read_health_csv``, ``HealthRecorder.rows`` or a learner's ``HealthLog.rows``
hold) and draw one line per layer against the evaluation it was measured at.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from ..doctor.thresholds import DEAD, HIGH_UPDATE, LOW_UPDATE, SATURATED
from ..doctor.signals import MODEL, check_health_rows
from ..errors import ShapeError
from .common import verbatim

HEALTHY_UPDATE = (1e-4, 1e-2)  # a decade either side of the usual ~1e-3 step-to-weight ratio
MAX_LINES = 12  # layers drawn per panel; a table with more is cut (and the title says so)

Series = dict[str, tuple[np.ndarray, np.ndarray]]  # layer -> (epochs (T,), values (T,))


def layer_series(rows: Iterable, signal: str) -> Series:
    """{layer: (epochs (T,), values (T,))} of one per-layer signal, sorted by epoch; layers in
    the order they first appear (first to last through the network, as fit records them)."""
    points: dict[str, dict[int, float]] = {}
    for row in check_health_rows(list(rows)):
        if row.signal == signal and row.layer != MODEL:
            points.setdefault(row.layer, {})[row.epoch] = row.value
    return {layer: (np.array(sorted(values), dtype=float), np.array([values[e] for e in sorted(values)]))
            for layer, values in points.items()}


def gradient_figure(rows: Iterable, step_name: str = "epoch") -> Figure:
    """Two panels, log y: each weight layer's gradient RMS √mean(dW²), and its update ratio
    ‖ΔW‖/‖W‖ of the last step before each evaluation, the healthy band around 1e-3 shaded and
    the doctor's limits (``lr-too-low`` below, ``lr-too-high`` above) dotted.

    Points that a log axis cannot show (0, NaN, inf: a zero weight's ratio is undefined) are
    left out, and the legend counts them.
    """
    rows = list(rows)
    grads, ratios = layer_series(rows, "grad_rms"), layer_series(rows, "update_ratio")
    if not grads and not ratios:
        raise ShapeError("no grad_rms or update_ratio rows to draw; record weight layers with a gradient "
                         "and the weights before the step")
    fig = Figure(figsize=(11.5, 3.8), layout="constrained")
    ax_grad, ax_ratio = fig.subplots(1, 2, sharex=True)  # one evaluation alone: the same axis on both
    low, high = HEALTHY_UPDATE
    ax_ratio.axhspan(low, high, color="tab:green", alpha=0.12, label=f"healthy ({low:g} to {high:g})")
    for limit in (LOW_UPDATE, HIGH_UPDATE):
        ax_ratio.axhline(limit, color="0.4", linestyle=":", linewidth=1)
    ax_ratio.plot([], [], color="0.4", linestyle=":", linewidth=1,
                  label=f"doctor's limits ({LOW_UPDATE:g}, {HIGH_UPDATE:g})")
    cut = [_log_lines(ax_grad, grads, "Gradient RMS per layer"),
           _log_lines(ax_ratio, ratios, "Update ratio ‖ΔW‖ / ‖W‖ per layer")]
    for ax in (ax_grad, ax_ratio):
        _epoch_axis(ax, step_name)
    fig.suptitle("Gradients and step sizes" + _cut_note(max(cut)))
    return fig


def units_figure(rows: Iterable, step_name: str = "epoch") -> Figure:
    """Share of each activation layer's units that never fired on the sampled batch (ReLU:
    ``dead_fraction``) and of outputs on the flat tails (sigmoid, tanh: ``saturated_fraction``),
    0 to 100%, one panel per signal recorded; the doctor's thresholds dashed."""
    rows = list(rows)
    panels = [(signal, title, limit) for signal, title, limit in (
        ("dead_fraction", "Dead units (never fired)", DEAD),
        ("saturated_fraction", "Saturated outputs (flat tails)", SATURATED)) if layer_series(rows, signal)]
    if not panels:
        raise ShapeError("no dead_fraction or saturated_fraction rows to draw; the network has no ReLU, "
                         "sigmoid or tanh layer recorded")
    fig = Figure(figsize=(5.75 * len(panels) + (0.5 if len(panels) == 1 else 0), 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    cut = 0
    for ax, (signal, title, limit) in zip(axes, panels):
        series = layer_series(rows, signal)
        ax.axhline(limit, color="tab:red", linestyle="--", linewidth=1, label=f"doctor's limit ({limit:.0%})")
        cut = max(cut, len(series) - MAX_LINES)
        for layer, (epochs, values) in list(series.items())[:MAX_LINES]:
            ax.plot(epochs, values, label=_legend_text(layer), **_markers(len(epochs)))
        ax.set_ylim(-0.03, 1.03)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_title(title)
        ax.legend(fontsize=8)
        _epoch_axis(ax, step_name)
    fig.suptitle("Activation layers: units that stopped responding" + _cut_note(cut))
    return fig


def _log_lines(ax, series: Series, title: str) -> int:
    """One line per layer on a log axis, skipping what it cannot show; returns the layers cut."""
    drawn, every_epoch = False, [e for epochs, _ in series.values() for e in epochs]
    for layer, (epochs, values) in list(series.items())[:MAX_LINES]:
        shown = np.isfinite(values) & (values > 0)
        hidden = len(values) - int(shown.sum())
        label = _legend_text(layer) + (f" ({hidden} of {len(values)} not drawn: 0, NaN or inf)" if hidden else "")
        ax.plot(epochs[shown], values[shown], label=label, **_markers(len(epochs)))
        drawn = drawn or bool(shown.any())
    ax.set_yscale("log")
    if not drawn:  # a zero-initialised layer's gradient, say: say so instead of an empty axis
        ax.set_ylim(1e-8, 1)
        if every_epoch:  # the evaluations still set the x axis, as on the panel beside it
            ax.set_xlim(min(every_epoch) - 0.5, max(every_epoch) + 0.5)
        ax.text(0.5, 0.5, "no value above 0 to draw", transform=ax.transAxes, ha="center", color="0.4")
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return max(0, len(series) - MAX_LINES)


def _epoch_axis(ax, step_name: str) -> None:
    ax.set_xlabel(step_name)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)


def _markers(points: int) -> dict:
    return {"marker": "o", "markersize": 3} if points <= 20 else {}


def _cut_note(cut: int) -> str:
    return f" (the first {MAX_LINES} layers; {cut} more not drawn)" if cut else ""


def _legend_text(layer: str) -> str:
    """A layer label as matplotlib shows it verbatim: '$' would start mathtext (and a malformed
    formula would fail the whole figure), a leading '_' would hide the line from the legend."""
    text = verbatim(layer)
    return " " + text if text.startswith("_") else text


