"""Health signals: what the doctor reads, the arithmetic that measures them, and their table.

A run's health is a tidy table, ``health.csv``, one measurement per row::

    epoch,layer,signal,value
    0,model,input_max,1.0
    10,0.Dense,grad_rms,0.0021
    10,1.ReLU,dead_fraction,0.3

``epoch`` is the evaluation it belongs to (0: the untrained network; with full batches an
epoch is one iteration); ``layer`` is a layer's label (``model`` for figures of the whole
network). The signals, and what measures them:

========================  ===============================================================
model  ``classes``         number of classes C (the chance loss is ln C)
model  ``input_min/max/mean``  the pixels the network is fed (a sampled batch)
model  ``top_class``, ``top_class_share``  the class predicted most often on the sampled
                           batch, and its share of the predictions
model  ``logit_max``       max |logit| on the sampled batch (e^89 overflows float32)
model  ``steps``           optimizer steps taken so far
model  ``steps_per_epoch``  at epoch 0: optimizer steps in an epoch (1: full batch)
model  ``diverged_loss``   the loss when the NaN guard stopped training (NaN, inf or huge)
model  ``label_classes``, ``top_label_share``, ``least_label_share``  at epoch 0: how many
                           classes the training labels hold, the share of the most common one
                           and of the rarest one they hold
model  ``lowest_label``, ``highest_label``  at epoch 0: the smallest and largest label (labels
                           numbered from 1 hold 1..C-1, and no 0)
model  ``dev_only_classes``  at epoch 0, where the dev labels hold classes the training labels
                           lack (sorted data split before it was shuffled): how many
model  ``template_accuracy``, ``augmented_template_accuracy``  with augmentation, at epoch 0:
                           the share of sampled training images a nearest-class-mean template
                           reads right as they are, and after the run's augmentation
model  ``train_images``, ``dev_images``  at epoch 0: how many images the train and dev
                           accuracies count (what tells a gap from the noise of a small set)
model  ``health_every``    at epoch 0, for a run long enough to need it: the health of one
                           evaluation in this many is recorded (health.csv stays under 250,000 rows)
weights ``weight_rms``     √mean(W²) of a layer's weight (W of Dense and Conv2D)
weights ``grad_rms``       √mean(dW²) of the last step's gradient
weights ``update_ratio``   ‖ΔW‖ / ‖W‖ of the last step (healthy: about 1e-3)
weights ``bias_update_spread``  how different the last step's bias changes were across
                           units: std(Δb) / RMS(Δb) (a correct gradient: about 1; one number
                           for every unit: 0); recorded when the bias moved
weights ``unit_spread``    how different the layer's units are: the RMS over inputs of the
                           standard deviation across units, over the weight RMS (random
                           init: about 1; identical units: 0)
activations ``dead_fraction``   units that never fired (ReLU output > 0) on the sampled batch
activations ``saturated_fraction``  outputs in the flat tails (tanh |y| > 0.99; sigmoid
                           y < 0.01 or y > 0.99)
activations ``activation_mean/std``  of the layer's outputs on the sampled batch
========================  ===============================================================

``metrics.csv`` gives the loss and accuracy per evaluation (``epoch, train_loss,
train_accuracy, dev_loss, dev_accuracy``; more columns are allowed and ignored).

Nothing here knows scratchnn's layers: a learner's own NumPy loop records the same rows with
``HealthLog`` (doctor/record.py), and the doctor diagnoses them alike.
"""
from __future__ import annotations

import csv
import difflib
import io
import itertools
import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..files import atomic_write_bytes, read_at_most, why_unreadable

HEALTH_FILE = "health.csv"
METRICS_FILE = "metrics.csv"
MODEL = "model"  # the layer label of whole-network signals
HEADER = ("epoch", "layer", "signal", "value")
# A run writes 20 (seed) to 51 (cnn-best) rows of health an evaluation, ~40 bytes each: a seed run
# evaluated at each of 3,000 iterations, 60,000 rows (2.4 MB). Read tables take ~20x their bytes in
# memory; these bounds (cnn-best: ~19,000 evaluations) keep the doctor to a few hundred MB.
MAX_TABLE_BYTES = 32 * 2**20
MAX_TABLE_ROWS = 1_000_000
MAX_LABEL = 100

MODEL_SIGNALS = ("classes", "input_min", "input_max", "input_mean", "top_class", "top_class_share",
                 "logit_max", "steps", "steps_per_epoch", "diverged_loss", "label_classes", "top_label_share",
                 "least_label_share", "lowest_label", "highest_label", "dev_only_classes", "template_accuracy",
                 "augmented_template_accuracy",
                 "health_every", "train_images", "dev_images")
WEIGHT_SIGNALS = ("weight_rms", "grad_rms", "update_ratio", "unit_spread", "bias_update_spread")
ACTIVATION_SIGNALS = ("dead_fraction", "saturated_fraction", "activation_mean", "activation_std")
SIGNALS = MODEL_SIGNALS + WEIGHT_SIGNALS + ACTIVATION_SIGNALS
METRIC_COLUMNS = ("epoch", "train_loss", "train_accuracy", "dev_loss", "dev_accuracy", "lr")  # lr: optional too
SATURATION = 0.99  # |tanh| or max(σ, 1 − σ) past this is on the flat part: slope < 0.02


# --- the arithmetic -----------------------------------------------------------------------
def rms(a: np.ndarray) -> float:
    """√mean(a²), in float64 (a float32 sum of squares of a million weights loses digits)."""
    a = np.asarray(a, dtype=np.float64)
    return float(np.sqrt(np.mean(np.square(a)))) if a.size else 0.0


def update_ratio(before: np.ndarray, after: np.ndarray) -> float:
    """‖after − before‖ / ‖before‖ (Frobenius); inf when a zero weight moved, NaN when a zero
    weight stayed zero (no size to compare a step with)."""
    before = np.asarray(before, dtype=np.float64)
    # NOTE: RMS, not np.linalg.norm: the same ratio (both have as many entries), without a BLAS
    # call, which on a busy machine stalls for ~100 ms where plain NumPy takes ~0.3 ms
    moved, size = rms(np.asarray(after, dtype=np.float64) - before), rms(before)
    if size == 0:
        return math.inf if moved else math.nan
    return moved / size


def unit_spread(w: np.ndarray, units_axis: int = -1) -> float:
    """How different a layer's units are: RMS over inputs of the std across units, / RMS(W).

    ``w`` holds one unit per index of ``units_axis`` (Dense W (D, M): axis -1, M units;
    Conv2D W (F, C, KH, KW): axis 0, F filters). Randomly initialised units give about 1;
    units that are copies of each other (zero or constant init keeps them so: each gets the
    same gradient) give 0. A single unit has nothing to differ from: 1 by convention.
    """
    w = np.moveaxis(np.asarray(w, dtype=np.float64), units_axis, 0)
    if w.shape[0] < 2:
        return 1.0
    w = w.reshape(w.shape[0], -1)
    size = rms(w)
    if size == 0:
        return 0.0
    return rms(w.std(axis=0)) / size


def spread(a: np.ndarray) -> float:
    """std(a) / RMS(a): 0 when every entry is the same number, about 1 for varied ones. A single
    number has nothing to differ from: 1 by convention (a layer of one unit, --hidden 1)."""
    a = np.asarray(a, dtype=np.float64)
    if a.size < 2:
        return 1.0
    size = rms(a)
    return float(np.std(a)) / size if size else 0.0


def dead_fraction(y: np.ndarray) -> float:
    """Share of units that never fired (output > 0) on the batch y (N, units) or (N, C, H, W).

    A unit is a feature of a dense layer, or a channel of a convolution (over every position).
    """
    y = np.asarray(y)
    if y.ndim < 2 or y.shape[1] == 0:
        return 0.0
    fired = (y > 0).any(axis=tuple(a for a in range(y.ndim) if a != 1))
    return 1.0 - float(np.count_nonzero(fired)) / fired.size


def saturated_fraction(y: np.ndarray, kind: str) -> float:
    """Share of outputs on an activation's flat tails: tanh |y| > 0.99, sigmoid y ∉ [0.01, 0.99]."""
    y = np.asarray(y, dtype=np.float64)
    if kind == "tanh":
        flat = np.abs(y) > SATURATION
    elif kind == "sigmoid":  # NOTE: not y < 1 − 0.99, which is 0.010000000000000009 in floats
        flat = np.maximum(y, 1 - y) > SATURATION
    else:
        raise ValueError(f"saturation is measured for tanh and sigmoid, not {kind!r}")
    return float(np.count_nonzero(flat)) / flat.size if flat.size else 0.0


def prediction_share(logits: np.ndarray) -> tuple[int, float]:
    """(the most-predicted class, its share of the predictions) for logits (N, C)."""
    counts = np.bincount(np.asarray(logits).argmax(axis=1), minlength=np.asarray(logits).shape[1])
    top = int(counts.argmax())
    return top, float(counts[top]) / max(int(counts.sum()), 1)


def label_balance(labels: np.ndarray, num_classes: int, dev_labels: np.ndarray | None = None) -> dict[str, float]:
    """``label_classes``: how many of the ``num_classes`` classes the training labels (N,) hold;
    ``top_label_share`` and ``least_label_share``: the share of the most common one and of the
    rarest one they hold (10 balanced digits: 10, ~0.11 and ~0.09); ``lowest_label`` and
    ``highest_label``: whether the labels held are 0, 1, 2... or another range. Given the
    ``dev_labels`` (M,), and only when there are some, ``dev_only_classes``: how many classes
    they hold that the training labels lack (no regularisation teaches those: the split is at fault)."""
    counts = np.bincount(np.asarray(labels, np.intp).ravel(), minlength=num_classes)
    total, held = int(counts.sum()), counts[counts > 0]
    numbers = np.flatnonzero(counts)
    values = {"label_classes": float(held.size),
              "top_label_share": float(counts.max()) / total if total else math.nan,
              "least_label_share": float(held.min()) / total if total else math.nan,
              "lowest_label": float(numbers[0]) if total else math.nan,
              "highest_label": float(numbers[-1]) if total else math.nan}
    dev_only = 0 if dev_labels is None else np.setdiff1d(np.asarray(dev_labels, np.intp), numbers).size
    if dev_only:
        values["dev_only_classes"] = float(dev_only)
    return values


def template_accuracy(x: np.ndarray, labels: np.ndarray, seen: np.ndarray) -> float:
    """How readable the images ``seen`` (x as the network gets them: augmented, say) are without
    any training: the share that the nearest class mean of ``x`` (N, ...) with ``labels`` (N,)
    labels right. Digits as they are: ~86%; shifted 8 pixels and turned upside down: ~15%."""
    x, seen, labels = np.asarray(x, np.float64), np.asarray(seen, np.float64), np.asarray(labels)
    if x.shape != seen.shape or labels.shape != x.shape[:1]:
        raise ValueError(f"template_accuracy needs images and seen images of one shape and a label each, got "
                         f"{x.shape}, {seen.shape} and {labels.shape}")
    if not len(x):
        return math.nan
    flat, look, classes = x.reshape(len(x), -1), seen.reshape(len(seen), -1), np.unique(labels)
    means = np.stack([flat[labels == c].mean(axis=0) for c in classes])
    distances = (means ** 2).sum(axis=1) - 2 * look @ means.T  # ‖s − m‖² less the ‖s‖² all classes share
    return float(np.mean(classes[distances.argmin(axis=1)] == labels))


def readability(x: np.ndarray, labels: np.ndarray, augmented: np.ndarray) -> dict[str, float]:
    """``template_accuracy`` of the images as they are and once augmented, by signal name."""
    return {"template_accuracy": template_accuracy(x, labels, x),
            "augmented_template_accuracy": template_accuracy(x, labels, augmented)}


# --- the table ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    epoch: int
    layer: str
    signal: str
    value: float


class HealthText:
    """health.csv's rows as text so far, for a table that only grows (a run writes it at every
    checkpoint): each ``write_health_csv`` then formats only the rows added since the last."""

    def __init__(self):
        self.rows, self.chunks = 0, []


def write_health_csv(path, rows: list[Row], text: HealthText | None = None) -> Path:
    """Write the rows as health.csv, atomically (a reader never sees half a table); ``text``:
    the rows formatted by earlier calls (a fresh one formats them all)."""
    text = HealthText() if text is None else text
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if not text.chunks:
        writer.writerow(HEADER)
    writer.writerows((r.epoch, r.layer, r.signal, repr(float(r.value))) for r in rows[text.rows:])
    text.rows = len(rows)
    text.chunks.append(buffer.getvalue())
    atomic_write_bytes(Path(path), "".join(text.chunks).encode())
    return Path(path)


def read_health_csv(path) -> list[Row]:
    """The rows of a health.csv, validated; DataError naming the line of anything malformed."""
    return check_health_rows(_csv_lines(path, HEADER), str(path))


def check_health_rows(rows: Iterable, source: str = "health") -> list[Row]:
    """Rows as (epoch, layer, signal, value) sequences or Rows, checked one by one."""
    checked = []
    for number, row in enumerate(rows, start=2):
        where = f"{source}, row {number}"
        if isinstance(row, Row):
            row = (row.epoch, row.layer, row.signal, row.value)
        if len(row) != 4:
            raise DataError(f"{where}: expected 4 fields (epoch, layer, signal, value), got {len(row)}")
        epoch, layer, signal, value = row
        epoch = _integer(epoch, where)
        layer = sys.intern(str(layer))  # one string per layer name, not one per row
        if not layer or len(layer) > MAX_LABEL or not layer.isprintable():
            raise DataError(f"{where}: layer label must be 1-{MAX_LABEL} printable characters, got {layer[:40]!r}")
        if signal not in SIGNALS:
            close = difflib.get_close_matches(str(signal)[:40], SIGNALS, n=1)
            # a run's file with a well-formed name this version lacks: a later version's signal, most likely
            newer = (" (or, if a newer scratchnn wrote this file, upgrade scratchnn to read it)"
                     if source.endswith(".csv") and str(signal).isidentifier() else "")
            raise DataError(f"{where}: unknown signal {str(signal)[:40]!r}; "
                            + (f"did you mean {close[0]!r}?" if close else f"the {len(SIGNALS)} signals are "
                               "listed in scratchnn.doctor.signals.SIGNALS (doctor/signals.py says what each is)")
                            + newer)
        signal = sys.intern(str(signal))
        if (layer == MODEL) != (signal in MODEL_SIGNALS):
            raise DataError(f"{where}: {signal} belongs to " + ("the model" if signal in MODEL_SIGNALS else "a layer")
                            + f", got layer {layer!r}")
        value = _number(value, where)
        if signal == "health_every" and not (1 <= value <= MAX_TABLE_ROWS and float(value).is_integer()):
            raise DataError(f"{where}: health_every is a whole number of evaluations from 1, got {value!r}")
        checked.append(Row(epoch, layer, signal, value))
    return checked


def read_metrics_csv(path) -> list[dict[str, float]]:
    """metrics.csv rows as {column: value} for the columns the doctor reads (others ignored)."""
    return check_metric_rows(_csv_lines(path, METRIC_COLUMNS[:3], optional=METRIC_COLUMNS[3:]), str(path))


def check_metric_rows(rows: Iterable[dict], source: str = "metrics") -> list[dict[str, float]]:
    """Metric rows (dicts with at least epoch, train_loss, train_accuracy), checked, sorted by epoch."""
    checked = []
    for number, row in enumerate(rows, start=2):
        where = f"{source}, row {number}"
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected a mapping of column to value, got {type(row).__name__}")
        missing = [c for c in METRIC_COLUMNS[:3] if c not in row]
        if missing:
            raise DataError(f"{where}: missing {', '.join(missing)}")
        values = {"epoch": _integer(row["epoch"], where)}
        for column in METRIC_COLUMNS[1:]:
            cell = row.get(column, math.nan)
            cell = math.nan if column == "lr" and cell == "" else cell  # an lr column left blank: not recorded
            value = values[column] = _number(cell, f"{where}, {column}")
            if "loss" in column and value < 0:  # NaN and inf pass: a diverged loss is a finding, not bad data
                raise DataError(f"{where}, {column}: a cross-entropy loss is 0 or more, got {value!r}")
            if "accuracy" in column and not (math.isnan(value) or 0 <= value <= 1):
                raise DataError(f"{where}, {column}: an accuracy is between 0 and 1, got {value!r}")
            if column == "lr" and not (math.isnan(value) or 0 <= value < math.inf):
                raise DataError(f"{where}, lr: a learning rate is 0 or more and finite, got {value!r}")
        checked.append(values)
    epochs = [r["epoch"] for r in checked]
    if epochs != sorted(set(epochs)):
        raise DataError(f"{source}: epochs must increase row by row, got {epochs[:10]}")
    return checked


def _csv_lines(path, required: tuple[str, ...], optional: tuple[str, ...] = ()):
    """Yield a bounded CSV's data rows: tuples for health (exact header), dicts otherwise."""
    path = Path(path)
    try:
        data = read_at_most(path, MAX_TABLE_BYTES)
        if len(data) > MAX_TABLE_BYTES:
            raise DataError(f"{path}: over the {MAX_TABLE_BYTES:,} bytes a run's table can hold")
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text; expected a CSV table") from None
    except OSError as error:
        raise DataError(f"{path}: {why_unreadable(error)}; a run folder written by scratchnn train has it") from None
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        if header is None:
            raise DataError(f"{path}: empty; expected a header line")
        if required == HEADER:
            if tuple(header) != HEADER:
                raise DataError(f"{path}: header must be {','.join(HEADER)}, got {_shown(header)}")
            rows = list(itertools.islice(reader, MAX_TABLE_ROWS + 1))
        else:
            missing = [c for c in required if c not in header]
            if missing or len(set(header)) != len(header):
                raise DataError(f"{path}: header needs the columns {', '.join(required)} once each, got "
                                f"{_shown(header)}")
            keep = [c for c in (*required, *optional) if c in header]
            rows = []
            for line in reader:
                if len(line) != len(header):
                    raise DataError(f"{path}, row {reader.line_num}: {len(line)} fields, the header has {len(header)}")
                row = dict(zip(header, line))
                rows.append({c: row[c] for c in keep})
                if len(rows) > MAX_TABLE_ROWS:
                    break
    except csv.Error as error:
        raise DataError(f"{path}: not a valid CSV table ({error})") from None
    if len(rows) > MAX_TABLE_ROWS:
        raise DataError(f"{path}: more than the {MAX_TABLE_ROWS:,} rows a run's table can hold")
    return rows


def _shown(header: list[str]) -> str:
    """A header as the file spelled it, on one line (a quoted field may hold a line break)."""
    return repr(",".join(header)[:80])[1:-1]


def _integer(value, where: str) -> int:
    try:
        number = int(value)
        if isinstance(value, float) and number != value:
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise DataError(f"{where}: epoch must be a whole number, got {str(value)[:40]!r}") from None
    if not 0 <= number <= 10**9:
        raise DataError(f"{where}: epoch must be between 0 and 1e9, got {number}")
    return number


def _number(value, where: str) -> float:
    """A float; NaN and inf are allowed (a diverged loss is one), words are not."""
    if isinstance(value, bool):
        raise DataError(f"{where}: expected a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        raise DataError(f"{where}: expected a number, got {str(value)[:40]!r}") from None
