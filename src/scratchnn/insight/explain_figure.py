"""The walk of ``scratchnn.insight.explain.trace`` as one matplotlib figure (object API, no pyplot).

Top row: the input image, the class probabilities and (with a label) the gradient norms.
Below, one row per layer: a heat strip of a flat output (D,), or a grid of feature maps for
an output (C, H, W), coloured blue-white-red around 0 when it has negative values.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from ..errors import ShapeError
from ..plots.common import percent, verbatim_all
from .explain import LayerStep, Trace, format_shape, input_image

MAX_MAPS = 16  # feature maps drawn per layer; the rest are named in the row title
MAX_LABELLED = 20  # a strip this short gets a tick per unit (and the logits their values)


def explain_figure(trace: Trace, classes: Sequence[str], image_shape=None) -> Figure:
    """One figure: the input (H, W), probabilities (C,), gradient norms, then every layer's output;
    an MLP's input vector is drawn as an image of ``image_shape`` (the model file's), else square."""
    if len(classes) != len(trace.softmax.probs):
        raise ShapeError(f"got {len(classes)} class names for a model with {len(trace.softmax.probs)} classes")
    classes = verbatim_all(classes)
    # n square maps share ~8 inches of width, so a row of them needs ~8/n inches plus its title
    heights = [2.6] + [8 / min(step.output_shape[0], MAX_MAPS) + 0.6 if len(step.output_shape) == 3
                       else 1.05 for step in trace.steps]
    fig = Figure(figsize=(10, sum(heights)), layout="constrained")
    rows = fig.subfigures(len(heights), 1, height_ratios=heights)
    _draw_top(rows[0], trace, classes, image_shape)
    for row, step in zip(rows[1:], trace.steps):
        if len(step.output_shape) == 3:
            _draw_maps(row, step)
        else:
            _draw_strip(row, step, classes if step.role == "logits" else None)
    return fig


def _draw_top(fig, trace: Trace, classes: Sequence[str], image_shape) -> None:
    probs, best, label = trace.softmax.probs, trace.prediction, trace.label
    has_grads = label is not None
    axes = fig.subplots(1, 3 if has_grads else 2, width_ratios=[1, 1.6, 1.6] if has_grads else [1, 1.6])
    title = f"Prediction: {classes[best]} ({percent(probs[best])})"
    if has_grads:
        title += f"   True label: {classes[label]}   Loss -log p[{label}] = {trace.loss:.3f}"
    fig.suptitle(title, color="black" if label in (None, best) else "firebrick")

    image = input_image(trace.x, image_shape)  # on the 0..1 scale the network reads: a faint digit looks faint
    axes[0].imshow(image, cmap="gray", interpolation="nearest", vmin=min(0.0, float(image.min())),
                   vmax=max(1.0, float(image.max())))
    axes[0].set_title(f"input {format_shape(trace.x.shape)}", fontsize="medium")
    axes[0].set_axis_off()

    ax = axes[1]
    colors = ["tab:blue" if i == best else "firebrick" if i == label else "silver" for i in range(len(probs))]
    ax.barh(range(len(probs)), probs, color=colors)
    for i, p in enumerate(probs):
        ax.text(p + 0.02, i, f"{p:.1%}", va="center", fontsize="x-small")
    ax.set_yticks(range(len(probs)), classes, fontsize="small")
    ax.invert_yaxis()
    ax.set_xlim(0, 1.3)  # room for the percentages right of a bar near 1
    ax.set_xticks([0, 0.5, 1])
    ax.set_title("softmax: exp(z - max z) / Σ exp", fontsize="medium")
    ax.set_xlabel("probability")
    if label is not None and label != best:  # which bar is which, when the two differ
        from matplotlib.patches import Patch

        ax.legend(handles=[Patch(color="tab:blue", label="predicted"), Patch(color="firebrick", label="true label")],
                  loc="lower right", fontsize="x-small")

    if has_grads:
        names, norms = [], []
        for step in trace.steps:
            for key, value in step.grad_norms.items():
                names.append(f"{step.index}.{key} ({step.kind})")
                norms.append(value)
        ax = axes[2]
        ax.barh(range(len(norms)), norms, color="tab:orange")
        ax.set_yticks(range(len(norms)), names, fontsize="small")
        ax.invert_yaxis()
        ax.set_title("gradient norm ‖∂L/∂param‖", fontsize="medium")
        ax.set_xlabel("norm")


def _draw_strip(fig, step: LayerStep, classes: Sequence[str] | None) -> None:
    values = step.output.ravel()
    ax = fig.subplots()
    cmap, low, high = _colors(values)
    image = ax.imshow(values[None, :], aspect="auto", cmap=cmap, vmin=low, vmax=high, interpolation="nearest")
    ax.set_yticks([])
    if len(values) <= MAX_LABELLED:
        ax.set_xticks(range(len(values)), classes if classes is not None else range(len(values)), fontsize="small")
    if classes is not None and len(values) <= MAX_LABELLED:
        for i, v in enumerate(values):  # the logits are few and worth reading exactly
            dark = abs(v) > 0.6 * max(abs(low), abs(high))
            ax.text(i, 0, f"{v:.2f}", ha="center", va="center", fontsize="x-small",
                    color="white" if dark else "black")
    fig.colorbar(image, ax=ax, fraction=0.03, pad=0.01, aspect=6)
    fig.suptitle(_row_title(step), fontsize="medium", x=0.02, ha="left")


def _draw_maps(fig, step: LayerStep) -> None:
    maps = step.output
    shown = min(len(maps), MAX_MAPS)
    cmap, low, high = _colors(maps)  # one scale for the whole layer, so the maps compare
    axes = np.atleast_1d(fig.subplots(1, shown))
    for c, ax in enumerate(axes):
        image = ax.imshow(maps[c], cmap=cmap, vmin=low, vmax=high, interpolation="nearest")
        ax.set_title(f"#{c}", fontsize="x-small")
        ax.set_axis_off()
    fig.colorbar(image, ax=list(axes), fraction=0.02, pad=0.01)
    more = f" (first {shown} of {len(maps)} maps)" if shown < len(maps) else ""
    fig.suptitle(_row_title(step) + more, fontsize="medium", x=0.02, ha="left")


def _row_title(step: LayerStep) -> str:
    s = step.summary
    role = f" {step.role}" if step.role else ""
    shapes = f"{format_shape(step.input_shape)} → {format_shape(step.output_shape)}"
    return (f"Layer {step.index}: {step.kind} {shapes}{role}   min {s.min:.3g}, max {s.max:.3g}, "
            f"{s.positive} of {s.size} > 0")


def _colors(values: np.ndarray) -> tuple[str, float, float]:
    """A diverging map centred on 0 when there are negative values, else a sequential one from 0."""
    low, high = float(values.min()), float(values.max())
    if low < 0:
        bound = max(-low, high)
        return "RdBu_r", -bound, bound
    return "viridis", 0.0, high if high > 0 else 1.0
