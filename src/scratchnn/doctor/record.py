"""HealthLog: record the doctor's signals from your own training loop, in plain NumPy.

For a network you wrote yourself (the seed tutorial's, say): call these at each evaluation,
then ``diagnose()`` or ``save(folder)`` (writes metrics.csv and health.csv, so
``scratchnn doctor FOLDER`` works on it). Arrays may be in any float dtype; nothing is kept
but the figures.

    log = HealthLog(classes=10)
    log.labels(Y, dev_labels=Y_dev)       # before training: labels (N,), class indices 0..C-1
    log.evaluation(i, train_loss=loss, train_accuracy=acc)
    log.inputs(i, X)                      # the pixels you feed
    log.augmentation(X, Y, augment(X))    # once, if you augment
    log.outputs(i, Z2)                    # logits (N, C); the seed's Z2 (C, N): classes_axis=0
    log.weights(i, "W1", W1, grad=dW1, before=W1_before_step)
    log.activation(i, "A1", A1, kind="relu")
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import ConfigError, ShapeError
from ..files import atomic_write_bytes
from ..nn.habits import as_array
from ..nn.losses import check_labels, label_shape_hint
from .advice import Settings
from .diagnosis import diagnose
from .findings import Finding
from .signals import (HEALTH_FILE, METRICS_FILE, MODEL, Row, dead_fraction, label_balance, prediction_share, rms,
                      readability, saturated_fraction, spread, unit_spread, update_ratio, write_health_csv)

KINDS = ("relu", "sigmoid", "tanh", "other")


class HealthLog:
    """Collects metrics rows and health rows; ``diagnose`` runs the doctor on them."""

    def __init__(self, classes: int = 10):
        if isinstance(classes, bool) or not isinstance(classes, (int, np.integer)) or classes < 2:
            raise ConfigError(f"classes is the network's number of outputs, a whole number >= 2, got {classes!r}")
        self.metrics: list[dict] = []
        self.classes = int(classes)
        self.rows: list[Row] = [Row(0, MODEL, "classes", float(classes))]

    def _add(self, epoch: int, layer: str, values: dict) -> None:
        self.rows += [Row(int(epoch), layer, signal, float(value)) for signal, value in values.items()]

    def evaluation(self, epoch: int, *, train_loss: float, train_accuracy: float,
                   dev_loss: float = math.nan, dev_accuracy: float = math.nan) -> None:
        """One row of metrics.csv: the loss and accuracy at this evaluation."""
        self.metrics.append({"epoch": int(epoch), "train_loss": train_loss, "train_accuracy": train_accuracy,
                             "dev_loss": dev_loss, "dev_accuracy": dev_accuracy})

    def inputs(self, epoch: int, x: np.ndarray) -> None:
        """The pixels the network is fed (any shape; a torch tensor too)."""
        x = as_array(x)
        self._add(epoch, MODEL, {"input_min": np.min(x), "input_max": np.max(x),
                                 "input_mean": np.mean(x, dtype=np.float64)})

    def labels(self, labels: np.ndarray, dev_images: int | None = None, *,
               dev_labels: np.ndarray | None = None) -> None:
        """Before training: every training label (N,); the doctor checks that they cover the
        network's classes evenly (``label_classes``, ``top_label_share``, ``least_label_share``).
        Given the number of ``dev_images`` too, it weighs a train-dev gap against the noise of
        sets that small (``train_images``, ``dev_images``); given the ``dev_labels`` (M,) (their
        count is then ``dev_images``), it also names dev classes the training labels lack
        (``dev_only_classes``: a split of data sorted by label)."""
        labels = self._checked_labels(labels, "labels")
        if dev_labels is not None:
            dev_labels = self._checked_labels(dev_labels, "dev_labels")
            dev_images = len(dev_labels) if dev_images is None else dev_images
        self._add(0, MODEL, label_balance(labels, self.classes, dev_labels))
        if dev_images is not None:
            self._add(0, MODEL, {"train_images": np.asarray(labels).size, "dev_images": dev_images})

    def _checked_labels(self, labels, name: str) -> np.ndarray:
        """Labels (N,), class indices below ``classes``: a label out of range, or one-hot rows read
        as class numbers, were taken and the doctor then blamed the data file (the API audit)."""
        labels = as_array(labels)
        if labels.ndim != 1:
            raise ShapeError(f"HealthLog {name}: labels are (N,), a class index for each image, got shape "
                             f"{labels.shape}{label_shape_hint(labels.shape, self.classes)}")
        try:
            return check_labels(labels, len(labels), self.classes)
        except ShapeError as error:
            top = labels.max() if labels.dtype.kind in "iu" and labels.size else None
            more = (f"; or, if the network has {top + 1} outputs, HealthLog(classes={top + 1})"
                    if top is not None and top >= self.classes and "labels - 1" not in str(error) else "")
            raise ShapeError(f"HealthLog {name}: {error}{more}") from None

    def augmentation(self, x: np.ndarray, labels: np.ndarray, x_augmented: np.ndarray) -> None:
        """Before training, if you augment: sampled images, their labels and the same images
        augmented; the doctor compares how readable they are (``template_accuracy``)."""
        self._add(0, MODEL, readability(x, labels, x_augmented))

    def outputs(self, epoch: int, logits: np.ndarray, classes_axis: int = -1) -> None:
        """Logits (N, C) (the seed's Z2 is (C, N): pass classes_axis=0). Checked against ``classes``:
        read along the wrong axis, the tutorial's Z2 named the wrong class as the one answer."""
        logits = as_array(logits)
        if logits.ndim != 2 or classes_axis not in (-2, -1, 0, 1):
            raise ShapeError(f"HealthLog outputs: logits are (N, C), or (C, N) with classes_axis=0; got shape "
                             f"{logits.shape} and classes_axis={classes_axis!r}")
        along, other = logits.shape[classes_axis], 1 - classes_axis % 2
        if along != self.classes:
            if logits.shape[other] != self.classes:
                fix = f"if the network has {along} outputs, HealthLog(classes={along})"
            elif other == 0:
                fix = "pass classes_axis=0 for the tutorial's (10, m) layout, Z2 (C, N)"
            else:
                fix = "pass classes_axis=-1 for logits (N, C)"
            raise ShapeError(f"HealthLog outputs: logits of shape {logits.shape} have {along} along classes_axis="
                             f"{classes_axis}, not the log's {self.classes} classes; {fix}")
        logits = np.moveaxis(logits, classes_axis, -1)
        top, share = prediction_share(logits)
        big = float(np.max(np.abs(logits))) if np.isfinite(logits).all() else math.inf
        self._add(epoch, MODEL, {"top_class": top, "top_class_share": share, "logit_max": big})

    def weights(self, epoch: int, name: str, w: np.ndarray, *, grad: np.ndarray | None = None,
                before: np.ndarray | None = None, bias_step: np.ndarray | None = None,
                units_axis: int = -1) -> None:
        """A weight matrix after a step; ``grad`` the step's gradient, ``before`` W before the step,
        ``bias_step`` the change the step made to the layer's bias. ``units_axis``: -1 for
        x @ W with W (D, M); 0 for the seed's W.dot(X) with W (M, D)."""
        w, grad, before, bias_step = (None if a is None else as_array(a) for a in (w, grad, before, bias_step))
        values = {"weight_rms": rms(w), "unit_spread": unit_spread(w, units_axis)}
        if grad is not None:
            values["grad_rms"] = rms(grad)
        if before is not None:
            values["update_ratio"] = update_ratio(before, w)
        if bias_step is not None and np.any(bias_step):
            values["bias_update_spread"] = spread(bias_step)
        self._add(epoch, name, values)

    def activation(self, epoch: int, name: str, y: np.ndarray, kind: str = "relu", units_axis: int = 1) -> None:
        """A hidden layer's output; ``units_axis`` 1 for (N, units), 0 for the seed's (units, N)."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        y = np.moveaxis(as_array(y), units_axis, 1)
        values = {"activation_mean": np.mean(y, dtype=np.float64), "activation_std": np.std(y, dtype=np.float64)}
        if kind == "relu":
            values["dead_fraction"] = dead_fraction(y)
        elif kind in ("sigmoid", "tanh"):
            values["saturated_fraction"] = saturated_fraction(y, kind)
        self._add(epoch, name, values)

    def diverged(self, epoch: int, loss: float, weights: dict[str, np.ndarray] | None = None) -> None:
        """Training broke here: the loss was NaN, infinite or absurd. ``weights`` ({name: W}) as
        they were then tell an overflowing softmax (finite weights) from exploding ones."""
        self._add(epoch, MODEL, {"diverged_loss": loss})
        for name, w in (weights or {}).items():
            self._add(epoch, name, {"weight_rms": rms(w)})

    def diagnose(self, settings: Settings | None = None) -> list[Finding]:
        """The doctor's findings on what was logged; with ``settings`` (e.g. ``Settings({"lr": 0.5})``)
        each fix names the values to change."""
        return diagnose(self.metrics, self.rows, settings)

    def save(self, folder) -> Path:
        """Write metrics.csv and health.csv into ``folder`` (created if needed)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        columns = ("epoch", "train_loss", "train_accuracy", "dev_loss", "dev_accuracy")
        lines = [",".join(columns)] + [",".join(str(int(m[c])) if c == "epoch" else repr(float(m[c])) for c in columns)
                                       for m in self.metrics]
        atomic_write_bytes(folder / METRICS_FILE, ("\n".join(lines) + "\n").encode())
        write_health_csv(folder / HEALTH_FILE, self.rows)
        return folder
