"""Walk one image through a network and keep every intermediate a learner reads about.

``trace(model, x, label)`` runs one sample x (*input_shape) forward in evaluation mode and records,
for each layer, its input and output shapes, the output itself and a summary of it; then the
softmax step by step, and with a label the loss and one backward pass's gradient norms.
``format_trace`` turns a trace into short, aligned text; ``explain_figure`` draws it.

The caller's model is left exactly as it was: the walk runs on a copy that shares its parameters.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import ShapeError
from ..data.split import refuse_non_real
from ..model import Sequential
from ..nn.activations import Activation
from ..nn.losses import SoftmaxCrossEntropy


@dataclass(frozen=True)
class Summary:
    """min / mean / max of some values, how many are > 0 and how many are exactly 0."""

    min: float
    mean: float
    max: float
    positive: int
    zeros: int
    size: int

    @classmethod
    def of(cls, values: np.ndarray) -> Summary:
        v = np.asarray(values, np.float64)
        return cls(float(v.min()), float(v.mean()), float(v.max()), int((v > 0).sum()), int((v == 0).sum()),
                   int(v.size))


@dataclass
class LayerStep:
    """One layer's part of the walk. ``output`` is the sample's output (*output_shape), a copy.

    ``top`` lists the k largest units (index, value) of a flat output; for feature maps (C, H, W)
    it lists the k channels with the highest peak (channel, max), and ``channels`` summarises
    each map. ``grad_norms`` (‖∂L/∂param‖ per parameter) and ``output_grad_norm`` (‖∂L/∂y‖)
    are filled only when the trace had a label.
    """

    index: int
    kind: str
    config: dict
    role: str  # "pre-activation", "activation", "logits" or ""
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    output: np.ndarray
    summary: Summary
    top: list[tuple[int, float]]
    channels: list[Summary] = field(default_factory=list)
    param_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    param_norms: dict[str, float] = field(default_factory=dict)
    grad_norms: dict[str, float] = field(default_factory=dict)
    output_grad_norm: float | None = None


@dataclass
class SoftmaxSteps:
    """softmax(z) in four steps, in float64, for logits z (C,):

        shifted = z − max z        (the largest becomes 0, so exp cannot overflow)
        exp = e^shifted            (all in (0, 1])
        total = Σ exp
        probs = exp / total        (sums to 1)
    """

    logits: np.ndarray
    max: float
    shifted: np.ndarray
    exp: np.ndarray
    total: float
    probs: np.ndarray

    @classmethod
    def of(cls, logits: np.ndarray) -> SoftmaxSteps:
        z = np.asarray(logits, np.float64)
        shifted = z - z.max()
        exp = np.exp(shifted)
        total = float(exp.sum())
        return cls(z, float(z.max()), shifted, exp, total, exp / total)


@dataclass
class Trace:
    """Everything ``format_trace`` and ``explain_figure`` show about one sample x (*input_shape).

    With a label: ``loss`` is what training computes (SoftmaxCrossEntropy, log-sum-exp form:
    log Σ exp(shifted) − shifted[label]); ``neg_log_p`` is the same number as −log p[label];
    ``dlogits`` = p − onehot(label) (C,) is where the backward pass starts.
    """

    x: np.ndarray
    input_summary: Summary
    steps: list[LayerStep]
    softmax: SoftmaxSteps
    label: int | None = None
    loss: float | None = None
    neg_log_p: float | None = None
    dlogits: np.ndarray | None = None

    @property
    def prediction(self) -> int:
        return int(np.argmax(self.softmax.probs))


def trace(model: Sequential, x: np.ndarray, label: int | None = None, *, top_k: int = 3) -> Trace:
    """Run one sample x (*input_shape) or (1, *input_shape) through ``model`` (training=False).

    With ``label`` (a class index) also computes the loss and runs one backward pass for the
    gradient norms. ``top_k``: how many of the largest units (or strongest maps) each step names.
    ``model`` itself is not run: its parameters, gradients and caches stay as they are.
    """
    x = _one_sample(model, x)
    num_classes = model.num_classes
    if label is not None:
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= label < num_classes:
            raise ShapeError(f"label must be a class index in 0..{num_classes - 1}, got {label!r}")
        label = int(label)
    model = _working_copy(model)
    steps, y = [], x
    for i, _, out in model.forward_steps(x):
        steps.append(_step(model, i, y[0], out[0], top_k))
        y = out
    if y.shape != (1, num_classes):
        raise ShapeError(f"the model's output has shape {y.shape[1:]}, expected ({num_classes},) logits")
    result = Trace(x[0].copy(), Summary.of(x), steps, SoftmaxSteps.of(y[0]))
    if label is not None:
        _add_loss_and_gradients(model, result, y, label)
    return result


def _working_copy(model: Sequential) -> Sequential:
    """A copy to run the walk on: it shares the parameters and buffers (evaluation mode only reads
    them) and has its own gradients, caches and work arrays (a copied layer starts without them:
    ``Layer.__getstate__``), so ``model`` may go on predicting on other threads meanwhile.

    NOTE: saving and restoring grads and caches is not enough: a layer may reuse a work array in
    place (Conv2D's im2col buffer, while the batch shape stays the same) that the cache of the
    caller's pending backward still points to.
    """
    memo = {id(array): array for layer in model.layers
            for array in (*layer.params.values(), *layer.buffers.values())}
    return copy.deepcopy(model, memo)


def _one_sample(model: Sequential, x) -> np.ndarray:
    """x as a float batch of one (1, *input_shape) in the model's dtype."""
    x = np.asarray(x)
    refuse_non_real(x)
    shape = model.input_shape
    if x.shape == shape:
        x = x[None]
    if x.shape != (1, *shape):
        raise ShapeError(f"explain takes one sample of shape {shape} (or a batch of one), got {x.shape}")
    if not np.isfinite(x).all():
        raise ShapeError("input contains NaN or infinite values; clean the image first")
    return x.astype(model.dtype)


def _step(model: Sequential, i: int, x: np.ndarray, y: np.ndarray, top_k: int) -> LayerStep:
    layer = model.layers[i]
    kind = type(layer).__name__
    following = model.layers[i + 1] if i + 1 < len(model.layers) else None
    role = ("logits" if following is None else "activation" if isinstance(layer, Activation)
            else "pre-activation" if isinstance(following, Activation) else "")
    if y.ndim == 3:  # feature maps (C, H, W): one summary per channel, channels ranked by peak
        channels = [Summary.of(channel) for channel in y]
        peaks = y.reshape(len(y), -1).max(axis=1)
    else:
        channels, peaks = [], y.ravel()
    order = np.argsort(-peaks, kind="stable")[:top_k]
    return LayerStep(i, kind, layer.config(), role, tuple(x.shape), tuple(y.shape), y.copy(), Summary.of(y),
                     [(int(j), float(peaks[j])) for j in order], channels,
                     {k: tuple(p.shape) for k, p in layer.params.items()},
                     {k: float(np.linalg.norm(p)) for k, p in layer.params.items()})


def _add_loss_and_gradients(model: Sequential, result: Trace, logits: np.ndarray, label: int) -> None:
    """Loss both ways, then backward layer by layer, recording ‖∂L/∂y‖ and ‖∂L/∂param‖."""
    loss_fn = SoftmaxCrossEntropy()
    result.label = label
    result.loss = loss_fn.forward(logits, np.array([label]))
    result.neg_log_p = float(-np.log(result.softmax.probs[label]))
    dy = loss_fn.backward()  # (1, C): p − onehot, already divided by N = 1
    result.dlogits = np.array(dy[0], np.float64)
    # need_dx: walk every layer, even the parameterless ones in front of the first Dense or Conv2D
    for i, layer, dy_out, _ in model.backward_steps(dy, need_dx=True):
        step = result.steps[i]
        step.output_grad_norm = float(np.linalg.norm(dy_out))
        step.grad_norms = {k: float(np.linalg.norm(g)) for k, g in layer.grads.items()}


# --- text -----------------------------------------------------------------------------------------
def describe(step: LayerStep) -> str:
    """What the layer did, in one line of plain words."""
    s, n = step.summary, step.summary.size
    unit = "values" if len(step.output_shape) > 1 else "units"
    shape_in, shape_out = format_shape(step.input_shape), format_shape(step.output_shape)
    if step.kind == "Dense":
        text = (f"z = x·W + b: each of the {step.output_shape[0]} outputs weighs all {step.input_shape[0]} "
                "inputs and adds a bias")
    elif step.kind == "ReLU":
        text = f"ReLU keeps positive values and sets the rest to 0: {s.positive} of {n} {unit} active"
    elif step.kind == "LeakyReLU":
        text = (f"LeakyReLU keeps positive values and multiplies the rest by {step.config.get('alpha', 0):g}: "
                f"{s.positive} of {n} {unit} positive")
    elif step.kind == "Sigmoid":
        text = f"Sigmoid squashes each value into (0, 1) with 1/(1 + e^-z); {s.positive} of {n} above 0"
    elif step.kind == "Tanh":
        text = f"Tanh squashes each value into (-1, 1); {s.positive} of {n} {unit} positive"
    elif step.kind == "Dropout":
        text = f"Dropout (p = {step.config.get('p', 0):g}) acts only in training; here it passes values through"
    elif step.kind.startswith("BatchNorm"):
        text = "BatchNorm standardises each unit with the mean and variance seen in training, then γ·x̂ + β"
    elif step.kind.startswith("Conv"):
        text = (f"{step.kind} slides {step.output_shape[0]} learned filters over the input: "
                f"{step.output_shape[0]} feature maps of {_size(step.output_shape)}")
    elif "Pool" in step.kind:
        how = "the largest value" if step.kind.startswith("Max") else "the average"
        text = (f"{step.kind} keeps {how} of each window: {_size(step.input_shape)} maps "
                f"become {_size(step.output_shape)}")
    elif step.kind == "Flatten":
        text = f"Flatten lays the {shape_in} maps out as one row of {n} values"
    else:
        text = f"{step.kind} maps {shape_in} to {shape_out}"
    return text


def format_trace(trace: Trace, classes: Sequence[str]) -> str:
    """The walk as text: one block per layer, the softmax table, the loss and gradient norms."""
    sm = trace.softmax
    if len(classes) != len(sm.probs):
        raise ShapeError(f"got {len(classes)} class names for a model with {len(sm.probs)} classes")
    s = trace.input_summary
    lines = [f"Input {format_shape(trace.x.shape)}: the image as {s.size} numbers, {_stats(s)}, "
             f"{s.positive} above 0", ""]
    widths = [max(len(text) for text in column) for column in zip(*(
        (step.kind, format_shape(step.input_shape), format_shape(step.output_shape)) for step in trace.steps))]
    for step in trace.steps:
        lines += _format_step(step, widths)
    lines += _format_softmax(trace, classes)
    if trace.label is not None:
        lines += [""] + _format_loss(trace, classes) + [""] + _format_gradients(trace)
    return "\n".join(lines)


def _format_step(step: LayerStep, widths: list[int]) -> list[str]:
    """'Layer 1  ReLU  (16,) -> (16,)  activation  min ...', the plain-words line, the top units."""
    kind, shape_in, shape_out = widths
    head = (f"Layer {step.index:<2} {step.kind:<{kind}}  {format_shape(step.input_shape):>{shape_in}} -> "
            f"{format_shape(step.output_shape):<{shape_out}}  {step.role:<14}  {_stats(step.summary)}")
    lines = [head.rstrip(), f"         {describe(step)}."]
    if step.channels:
        lines.append(f"         strongest maps (peak): {_top(step.top)}")
        lines += _wrapped("mean per map:", [c.mean for c in step.channels])
    elif len(step.output_shape) == 1 and step.role != "pre-activation":  # its activation lists them
        lines.append(f"         largest: {_top(step.top)}")
    return lines


def _format_softmax(trace: Trace, classes: Sequence[str]) -> list[str]:
    sm, best = trace.softmax, trace.prediction
    width = max(5, *(len(c) for c in classes))
    lines = ["", f"Softmax, step by step: the last layer's {len(sm.probs)} outputs (logits, one score per class) "
             "become probabilities",
             f"  {'class':<{width}} {'logit':>9} {'shifted':>9} {'exp':>10} {'probability':>12}"]
    for i, name in enumerate(classes):
        mark = "  <- prediction" if i == best else ""
        if i == trace.label:
            mark += "  <- true label" if i != best else ", true label"
        lines.append(f"  {name:<{width}} {sm.logits[i]:>9.4f} {sm.shifted[i]:>9.4f} {_num(sm.exp[i]):>10} "
                     f"{sm.probs[i]:>12.2%}{mark}")
    lines.append(f"  {'sum':<{width}} {'':>9} {'':>9} {_num(sm.total):>10} {sm.probs.sum():>12.2%}")
    lines += [f"  1. shifted = logit - max logit ({sm.max:.4f}): the largest becomes 0, so exp cannot overflow",
              "  2. exp = e^shifted: every value turns positive, the largest is 1",
              f"  3. sum = Σ exp = {sm.total:.4f}",
              "  4. probability = exp / sum: all in (0, 1), adding up to 1",
              f"Prediction: {classes[best]} (probability {sm.probs[best]:.2%})"]
    return lines


def _format_loss(trace: Trace, classes: Sequence[str]) -> list[str]:
    sm, y = trace.softmax, trace.label
    verdict = "correct" if y == trace.prediction else f"wrong: predicted {classes[trace.prediction]}"
    dlogits = " ".join(f"{v:+.3f}" for v in trace.dlogits)
    return [f"Loss for the true label {classes[y]} ({verdict}), cross-entropy:",
            f"  -log p[{y}] = -log {sm.probs[y]:.6f} = {trace.neg_log_p:.6f}",
            f"  log Σ exp(shifted) - shifted[{y}] = log {sm.total:.6f} - ({sm.shifted[y]:.6f}) = {trace.loss:.6f}"
            "  (training's stable form)",
            f"  ∂L/∂logits = p - onehot({y}) = [{dlogits}]"]


def _format_gradients(trace: Trace) -> list[str]:
    """‖∂L/∂y‖ for every layer's output and ‖∂L/∂param‖ next to ‖param‖ for each parameter."""
    rows = [("layer", "", "shape", "‖grad‖", "‖value‖")]
    for step in trace.steps:
        rows.append((f"{step.index} {step.kind}", "output", format_shape(step.output_shape),
                     f"{step.output_grad_norm:.4g}", ""))
        for key, shape in step.param_shapes.items():
            rows.append(("", key, format_shape(shape), f"{step.grad_norms[key]:.4g}",
                         f"{step.param_norms[key]:.4g}"))
    widths = [max(len(row[c]) for row in rows) for c in range(5)]
    lines = ["Gradient norms from one backward pass (how hard this image pushes each part):"]
    for row in rows:
        lines.append(f"  {row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:<{widths[2]}}  "
                     f"{row[3]:>{widths[3]}}  {row[4]:>{widths[4]}}".rstrip())
    return lines


def _stats(s: Summary) -> str:
    return f"min {s.min:.3g}  mean {s.mean:.3g}  max {s.max:.3g}"


def _num(v: float) -> str:
    """4 decimals, or scientific notation for tiny values that would print as 0.0000."""
    return f"{v:.4f}" if v == 0 or abs(v) >= 1e-3 else f"{v:.3e}"


def _top(top: list[tuple[int, float]]) -> str:
    return ", ".join(f"#{i} {v:.3g}" for i, v in top)


def _wrapped(title: str, values: Sequence[float], per_line: int = 10) -> list[str]:
    chunks = [values[i:i + per_line] for i in range(0, len(values), per_line)]
    pad = " " * (9 + len(title) + 1)
    return [(f"         {title} " if j == 0 else pad) + " ".join(f"{v:.3g}" for v in chunk)
            for j, chunk in enumerate(chunks)]


def format_shape(shape: tuple[int, ...]) -> str:
    """(784,) or (1, 28, 28): a sample shape as Python writes a tuple."""
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _size(shape: tuple[int, ...]) -> str:
    """'28x28' for the spatial part of (C, H, W); the whole shape otherwise."""
    return "x".join(map(str, shape[-2:])) if len(shape) == 3 else format_shape(shape)


def input_image(x: np.ndarray, image_shape=None) -> np.ndarray:
    """A 2-D picture (H, W) of one input sample: (H, W), (1, H, W), or an (H·W,) vector of
    ``image_shape`` (the model file's), else a square one."""
    if x.ndim == 3:
        return x[0] if len(x) == 1 else x.mean(axis=0)
    if x.ndim == 1 and image_shape is not None and math.prod(image_shape) == x.size:
        return x.reshape(tuple(image_shape))
    if x.ndim == 1 and math.isqrt(x.size) ** 2 == x.size:
        side = math.isqrt(x.size)
        return x.reshape(side, side)
    return np.atleast_2d(x)
