"""History: what ``fit`` returns, one EpochResult per evaluated epoch, that can draw itself.

It is a plain ``list`` of EpochResult (``history[-1].dev_accuracy`` works as before), plus
``plot()`` for the curves, ``column(name)`` for one metric as an array, and a table when a
notebook shows it.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import math
from pathlib import Path

import numpy as np

from ..display import html_table, text_table
from ..files import atomic_write_bytes

FIELDS = ("epoch", "train_loss", "train_accuracy", "dev_loss", "dev_accuracy", "lr", "seconds")


class History(list):
    """EpochResults in epoch order; ``plot()`` draws loss, accuracy and learning rate.
    ``step_name``: what one evaluated step is, "epoch", or "iteration" for full-batch training
    (``fit`` sets it), the curves' x axis."""

    def __init__(self, results=(), step_name: str | None = None):
        super().__init__(results)
        self.step_name = step_name or getattr(results, "step_name", "epoch")

    def column(self, name: str) -> np.ndarray:
        """One metric over the evaluated epochs, float (R,): ``history.column("dev_accuracy")``."""
        if name not in FIELDS:
            raise ValueError(f"unknown metric {name!r}; choose one of {', '.join(FIELDS)}")
        return np.array([getattr(result, name) for result in self], dtype=float)

    def plot(self, step_name: str | None = None):
        """The training curves as a matplotlib Figure (shown inline when a notebook cell ends
        with it): loss and accuracy, train beside dev, and the learning rate, per evaluation
        (``step_name`` on the x axis, by default the history's own)."""
        from ..plots.curves import training_curves  # matplotlib only when a plot is asked for

        return training_curves(self, step_name or self.step_name)

    def _table(self) -> tuple[list[str], list[list[str]]]:
        rows = [[_cell(getattr(result, name)) for name in FIELDS] for result in self]
        return list(FIELDS), rows

    def __str__(self) -> str:
        return text_table(*self._table(), numeric=range(len(FIELDS))) if self else "History (no epochs)"

    def _repr_html_(self) -> str:
        return html_table(*self._table(), caption=f"History: {len(self)} evaluated epoch(s)",
                          numeric=range(len(FIELDS)))

    def to_rows(self) -> list[dict]:
        """The epochs as dicts (the columns of metrics.csv)."""
        return [dataclasses.asdict(result) for result in self]


def _cell(value) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "-"
    return f"{value:.4g}" if abs(value) < 1e-3 or abs(value) >= 1e4 else f"{value:.4f}"


def write_metrics_csv(path: Path, history: list) -> None:
    """metrics.csv: one row of an EpochResult's FIELDS per evaluation, written atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")  # as health.csv and the submissions (the outputs audit)
    writer.writerow(FIELDS)
    writer.writerows([getattr(r, f) for f in FIELDS] for r in history)
    atomic_write_bytes(path, buffer.getvalue().encode())
