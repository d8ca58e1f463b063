"""Training curves: loss, accuracy and learning rate against the epoch, train beside dev."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from ..errors import ShapeError

COLUMNS = ("epoch", "train_loss", "train_accuracy", "dev_loss", "dev_accuracy", "lr")


def metric_columns(rows: Sequence) -> dict[str, np.ndarray]:
    """The COLUMNS of metrics rows as float arrays (R,); a row is a mapping (a metrics.csv line)
    or an object with those attributes (an EpochResult)."""
    table = {name: np.empty(len(rows)) for name in COLUMNS}
    for i, row in enumerate(rows):
        for name in COLUMNS:
            try:
                table[name][i] = float(row[name] if isinstance(row, Mapping) else getattr(row, name))
            except (KeyError, AttributeError):
                raise ShapeError(f"metrics row {i + 1} has no {name!r}; rows need {', '.join(COLUMNS)} "
                                 "(the columns of metrics.csv)") from None
            except (TypeError, ValueError):
                raise ShapeError(f"metrics row {i + 1}: {name} is not a number") from None
    return table


def training_curves(rows: Sequence, step_name: str = "epoch") -> Figure:
    """Three panels over the R evaluated epochs (or iterations for full-batch runs): the
    cross-entropy loss, the accuracy (train and dev) and the learning rate.

    Train figures average the batches of an epoch as they were seen (before each update, dropout
    on); dev figures are measured after the epoch. A dev set of size 0 (NaN) draws no dev line.
    """
    if not len(rows):
        raise ShapeError("no metrics rows to plot; train for at least one evaluated epoch")
    t = metric_columns(rows)
    x = t["epoch"]
    # a handful of points is easier to read with markers; a single point needs one to show at all
    style = {"marker": "o", "markersize": 4} if len(x) <= 20 else {}
    fig = Figure(figsize=(11.5, 3.6), layout="constrained")
    ax_loss, ax_acc, ax_lr = fig.subplots(1, 3)
    for ax, metric, title in ((ax_loss, "loss", "Loss (cross-entropy)"), (ax_acc, "accuracy", "Accuracy")):
        ax.plot(x, t[f"train_{metric}"], color="tab:blue", label="train", **style)
        if np.isfinite(t[f"dev_{metric}"]).any():
            ax.plot(x, t[f"dev_{metric}"], color="tab:orange", label="dev", **style)
        ax.set_title(title)
        ax.legend()
    losses = np.concatenate([t["train_loss"], t["dev_loss"]])
    losses = losses[np.isfinite(losses) & (losses > 0)]
    if len(losses) and losses.max() > 10 * losses.min():  # decades of loss: a log axis shows the tail
        ax_loss.set_yscale("log")
    ax_acc.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax_lr.plot(x, t["lr"], color="tab:green", **style)
    ax_lr.set_title("Learning rate")
    top = np.nanmax(t["lr"]) if np.isfinite(t["lr"]).any() else 0.0
    if top > 0:  # from 0, so a constant rate is a flat line, not a zoom into rounding noise
        ax_lr.set_ylim(0, 1.08 * top)
    ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    for ax in (ax_loss, ax_acc, ax_lr):
        ax.set_xlabel(step_name)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    if len(x) == 1:
        for ax in (ax_loss, ax_acc, ax_lr):
            ax.set_xlim(x[0] - 1, x[0] + 1)
    fig.suptitle(f"Training curves over {len(x)} evaluation{'s' * (len(x) != 1)} "
                 f"({step_name} {x[0]:g} to {x[-1]:g})" if len(x) > 1 else
                 f"Training curves: a single evaluation ({step_name} {x[0]:g})")
    return fig
