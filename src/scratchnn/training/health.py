"""Health signals of a Sequential while it trains: what ``fit`` records for the training doctor.

Cheap by design: at each evaluation one forward pass over a fixed sample of the training
images (the activations: dead and saturated units, mean and spread; the prediction shares),
plus figures of the last training step before it (gradient RMS, and the update-to-weight
ratio from a copy of each weight taken just before that step). The signals and their
arithmetic are the doctor's (doctor/signals.py); this module only knows where a Sequential
keeps them.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..doctor.signals import (MODEL, Row, dead_fraction, label_balance, prediction_share, readability, rms,
                              saturated_fraction, spread, unit_spread, update_ratio)
from ..host.resources import inference_memory
from ..model import Sequential, rows_that_fit
from ..nn.activations import Activation, LeakyReLU, ReLU, Sigmoid, Tanh

SAMPLE_SIZE = 128  # training images whose activations are measured at each evaluation: one batch
SAMPLE_CHUNK = 32  # of them through the network at once (``sample_outputs``)
HEALTH_ROWS = 250_000  # rows a run's health.csv holds at most, about 10 MB: its readers stop at 1,000,000
FIRING = (ReLU, LeakyReLU)  # units that can die: output > 0 is "fired"
SATURATING = {Sigmoid: "sigmoid", Tanh: "tanh"}


class HealthRecorder:
    """Collects ``Row``s for health.csv; ``fit(..., health=recorder)`` drives it.

    ``x_sample`` (S, *input_shape) is the fixed batch the activations are measured on.
    """

    def __init__(self, x_sample: np.ndarray, rows: list[Row] | None = None, planned: int | None = None):
        self.x_sample = x_sample
        self.rows: list[Row] = list(rows or [])
        # ``planned``: the evaluations the run makes. A long run records one in ``every`` of them,
        # fixed at the untrained network's record (its rows, times ``planned``) so that health.csv
        # stays under HEALTH_ROWS: 100,000 iterations of the seed preset, each evaluated, wrote 2
        # million rows, rewrote 80 MB at each checkpoint, and left a table the doctor and the
        # report then refused to read. A thinned run says so in a health_every row, which a
        # resumed run reads back, so that it goes on recording the same evaluations.
        self.planned = planned
        self.every = next((int(r.value) for r in self.rows if r.layer == MODEL and r.signal == "health_every"), 1)
        self._before: dict[str, np.ndarray] = {}
        self._step_rows: list[tuple[str, str, float]] = []

    @classmethod
    def for_data(cls, x_train: np.ndarray, rows: list[Row] | None = None, planned: int | None = None
                 ) -> HealthRecorder:
        """A recorder sampling SAMPLE_SIZE training images evenly spread over the set."""
        return cls(x_train[spread_rows(len(x_train), SAMPLE_SIZE)], rows, planned)

    # --- the last step before an evaluation ----------------------------------------------
    def before_step(self, model: Sequential) -> None:
        """Gradient RMS of the step about to be taken, and a copy of each weight it changes."""
        self._before.clear()
        self._step_rows = []
        for label, layer in weight_layers(model):
            self._before[label] = layer.params["W"].copy()
            if "b" in layer.params:
                self._before[label + ".b"] = layer.params["b"].copy()
            self._step_rows.append((label, "grad_rms", rms(layer.grads["W"])))

    def after_step(self, model: Sequential, first: bool = False) -> None:
        """The step's update ratios (and bias update spreads); ``first``: the run's first step,
        whose figures belong to epoch 0 (the untrained network it was taken from)."""
        for label, layer in weight_layers(model):
            if label in self._before:
                self._step_rows.append((label, "update_ratio", update_ratio(self._before[label], layer.params["W"])))
            if label + ".b" in self._before:
                moved = layer.params["b"] - self._before[label + ".b"]
                if np.any(moved):
                    self._step_rows.append((label, "bias_update_spread", spread(moved)))
        self._before.clear()
        if first:
            self._add([Row(0, layer, signal, value) for layer, signal, value in self._step_rows])

    def due(self, evaluation: int, last: bool = False) -> bool:
        """Whether evaluation number ``evaluation`` (epoch // eval_every) is one to record."""
        return last or evaluation % self.every == 0

    # --- an evaluation ---------------------------------------------------------------------
    def record(self, model: Sequential, epoch: int, steps: int, steps_per_epoch: int | None = None,
               images: tuple[int, int] | None = None) -> list[Row]:
        """Measure the network now (after ``steps`` optimizer steps; at epoch 0 also how many an
        epoch takes and how many ``images`` (train, dev) the accuracies count, if given); return
        the new rows."""
        new = [Row(epoch, layer, signal, value) for layer, signal, value in self._step_rows]
        self._step_rows = []
        x = self.x_sample
        model_rows = {"steps": steps, "input_min": float(x.min()), "input_max": float(x.max()),
                      "input_mean": float(np.mean(x, dtype=np.float64))}
        if epoch == 0:
            model_rows["classes"] = model.num_classes
            if steps_per_epoch is not None:
                model_rows["steps_per_epoch"] = steps_per_epoch
            if images is not None:
                model_rows["train_images"], model_rows["dev_images"] = images
        outputs, logits = sample_outputs(model, x)
        for index, label in layer_labels(model):
            layer = model.layers[index]
            if "W" in layer.params:
                w = layer.params["W"]
                new += [Row(epoch, label, "weight_rms", rms(w)),
                        Row(epoch, label, "unit_spread", unit_spread(w, 0 if w.ndim == 4 else -1))]
            if index in outputs:
                new += activation_rows(epoch, label, layer, outputs[index])
        top, share = prediction_share(logits)
        model_rows.update(top_class=top, top_class_share=share,
                          logit_max=float(np.max(np.abs(logits))) if np.isfinite(logits).all() else math.inf)
        new = [Row(epoch, MODEL, name, float(value)) for name, value in model_rows.items()] + new
        if epoch == 0 and self.planned and math.ceil(self.planned * len(new) / HEALTH_ROWS) > 1:
            self.every = math.ceil(self.planned * len(new) / HEALTH_ROWS)
            new.append(Row(0, MODEL, "health_every", float(self.every)))
        self._add(new)
        return new

    def _add(self, new: list[Row]) -> None:
        """``new`` rows added; those of epoch 0 in place of any earlier ones of their layer and
        signal: a run resumed from its epoch-0 checkpoint (one that diverged in its first epoch,
        or was killed before its second checkpoint) measures the untrained network again, and
        each such resume added another copy of its rows (the resume audit: 45, 77, 109 lines)."""
        again = {(row.layer, row.signal) for row in new if row.epoch == 0}
        if again:
            self.rows = [row for row in self.rows if row.epoch != 0 or (row.layer, row.signal) not in again]
        self.rows += new

    def record_labels(self, y_train: np.ndarray, num_classes: int, y_dev: np.ndarray | None = None) -> list[Row]:
        """Epoch 0's ``label_classes``, ``top_label_share`` and ``least_label_share``: how evenly the training labels
        cover the network's ``num_classes`` classes (all of them, not a sample); with ``y_dev``,
        ``dev_only_classes`` where dev holds classes training lacks. ``fit`` records them, unless
        they are recorded already (``train`` records them without the dev labels: its split is
        shuffled, so a class only in dev is rare, not a sign of data sorted before it was split;
        an earlier run's health rows hold them)."""
        if any(row.epoch == 0 and row.signal == "label_classes" for row in self.rows):
            return []
        new = [Row(0, MODEL, signal, value) for signal, value in label_balance(y_train, num_classes, y_dev).items()]
        self.rows += new
        return new

    def record_readability(self, x_train: np.ndarray, y_train: np.ndarray, augmentation,
                           input_scale: float = 1.0) -> list[Row]:
        """Epoch 0's ``template_accuracy`` and ``augmented_template_accuracy``: how much of what
        tells the classes apart survives ``augmentation`` (a callable (x, rng) -> x), on
        SAMPLE_SIZE · 4 training images spread over the set, augmented with a generator of its
        own (the run's are not touched). Every image is transformed (an ``Augmentation``'s ``p``
        taken as 1): the share it leaves sharp would hide what it does to the rest (a CNN trained
        on digits turned up to 180°, a fifth left sharp, read 32% of them, and its training
        accuracy stayed at 0.30)."""
        if dataclasses.is_dataclass(augmentation) and getattr(augmentation, "p", 1.0) < 1.0:
            augmentation = dataclasses.replace(augmentation, p=1.0)
        sample = spread_rows(len(x_train), 4 * SAMPLE_SIZE)
        x, labels = x_train[sample] / np.float32(input_scale), y_train[sample]  # the 0..1 images augmentation takes
        new = [Row(0, MODEL, signal, value)
               for signal, value in readability(x, labels, augmentation(x, np.random.default_rng(0))).items()]
        self.rows += new
        return new

    def record_divergence(self, model: Sequential, epoch: int, loss: float) -> list[Row]:
        """The step that broke training: its loss and the gradients and weights it left."""
        new = [Row(epoch, MODEL, "diverged_loss", float(loss))]
        for label, layer in weight_layers(model):
            new += [Row(epoch, label, "grad_rms", rms(layer.grads["W"]) if "W" in layer.grads else math.nan),
                    Row(epoch, label, "weight_rms", rms(layer.params["W"]))]
        self.rows += new
        return new


def sample_outputs(model: Sequential, x: np.ndarray, rows: int | None = None
                   ) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """({index: output} of each activation layer but the last, logits) of ``model`` on ``x``,
    passed ``rows`` images at a time (default: SAMPLE_CHUNK, or as many as an inference batch
    may hold where that is fewer): a pass keeps every layer's output and work arrays (the
    textbook convolutions transform the whole batch at once), and cnn-best's 128 images at once
    grew a run by 250 MB at each evaluation; the outputs kept are a small part of that."""
    rows = rows or rows_that_fit(model.layers, model.input_shape, model.dtype, inference_memory(), SAMPLE_CHUNK)
    measured = [i for i, layer in enumerate(model.layers[:-1]) if isinstance(layer, Activation)]
    parts: dict[int, list[np.ndarray]] = {i: [] for i in measured}
    logits = []
    for start in range(0, len(x), rows):
        y = None
        for index, _, y in model.forward_steps(x[start:start + rows]):
            if index in parts:
                parts[index].append(np.array(y))  # a copy: a layer may reuse its output's memory next pass
        logits.append(np.array(y))
    model.release_caches()  # no backward follows
    return {i: np.concatenate(part) for i, part in parts.items()}, np.concatenate(logits)


def spread_rows(n: int, count: int) -> np.ndarray:
    """Up to ``count`` row indices evenly spread over ``n`` rows (a slice from the start would
    be one class if the data came sorted by label)."""
    return np.linspace(0, n - 1, min(count, n)).astype(np.intp)


def layer_labels(model: Sequential) -> list[tuple[int, str]]:
    """'0.Dense', '1.ReLU', ...: a layer's index in the model and its kind."""
    return [(i, f"{i}.{type(layer).__name__}") for i, layer in enumerate(model.layers)]


def weight_layers(model: Sequential):
    """(label, layer) of the layers with a weight W (Dense, Conv2D), first to last."""
    return [(label, model.layers[i]) for i, label in layer_labels(model) if "W" in model.layers[i].params]


def activation_rows(epoch: int, label: str, layer: Activation, y: np.ndarray) -> list[Row]:
    """Mean, spread, and dead (ReLU) or saturated (sigmoid, tanh) share of an activation's output."""
    with np.errstate(over="ignore", invalid="ignore"):
        values = {"activation_mean": float(np.mean(y, dtype=np.float64)),
                  "activation_std": float(np.std(y, dtype=np.float64))}
    if isinstance(layer, FIRING):
        values["dead_fraction"] = dead_fraction(y)
    kind = next((name for cls, name in SATURATING.items() if isinstance(layer, cls)), None)
    if kind:
        values["saturated_fraction"] = saturated_fraction(y, kind)
    return [Row(epoch, label, signal, value) for signal, value in values.items()]
