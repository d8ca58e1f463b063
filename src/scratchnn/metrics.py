"""Classification metrics: accuracy, confusion matrix, per-class accuracy, and their text form."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import ShapeError


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of predictions (N,) equal to labels (N,); NaN for an empty set (no examples: no
    accuracy, as ``evaluate`` says).

    >>> accuracy(np.array([3, 1, 4, 1]), np.array([3, 1, 4, 7]))
    0.75
    """
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if predictions.ndim != 1 or predictions.shape != labels.shape:
        raise ShapeError(f"accuracy compares class indices (N,) with labels (N,), got {predictions.shape} and "
                         f"{labels.shape}; for probabilities (N, C) pass probs.argmax(axis=1)")
    return float(np.mean(predictions == labels)) if len(labels) else float("nan")


def one_answer_accuracy(labels: np.ndarray, num_classes: int) -> tuple[int, float]:
    """(the commonest class, the accuracy of answering it for every image): the score a model
    must beat to have learned anything (10 even digits: ~0.11; labels 95% ones: 0.95)."""
    counts = np.bincount(np.asarray(labels, np.intp).ravel(), minlength=num_classes)
    top = int(counts.argmax())
    return top, float(counts[top]) / max(int(counts.sum()), 1)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts (C, C): row = true class, column = predicted class.

    >>> confusion_matrix(np.array([0, 1, 1]), np.array([0, 1, 0]), 2)
    array([[1, 0],
           [1, 1]])
    """
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    if labels.ndim != 1 or predictions.shape != labels.shape:
        raise ShapeError(f"confusion_matrix compares labels (N,) with class indices (N,), got {labels.shape} and "
                         f"{predictions.shape}; for probabilities (N, C) pass probs.argmax(axis=1)")
    for name, values in (("labels", labels), ("predictions", predictions)):
        if len(values) and (values.dtype.kind not in "iu" or values.min() < 0 or values.max() >= num_classes):
            raise ShapeError(f"confusion_matrix: {name} must be class indices 0..{num_classes - 1}, got "
                             f"{values.dtype} from {values.min()} to {values.max()}")
    # NOTE: as intp: uint8 labels (read_idx_pair's) times 26 classes wrapped round past 255
    cells = labels.astype(np.intp) * num_classes + predictions.astype(np.intp)
    return np.bincount(cells, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def per_class_accuracy(matrix: np.ndarray) -> np.ndarray:
    """Recall of each class: diagonal / row sum (NaN for a class with no samples)."""
    totals = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(matrix) / totals, np.nan)


def format_report(matrix: np.ndarray, classes: Sequence[str]) -> str:
    """Per-class accuracy lines followed by the confusion matrix as a text table."""
    recall = per_class_accuracy(matrix)
    width = max(len(c) for c in classes)
    lines = ["Per-class accuracy:"]
    for name, value, count in zip(classes, recall, matrix.sum(axis=1)):
        shown = "   n/a" if np.isnan(value) else f"{value:6.2%}"
        lines.append(f"  {name:>{width}}  {shown}  ({count} samples)")
    cell = max(5, len(str(matrix.max())) + 1)
    short = [c[:cell - 1] for c in classes]
    lines += ["", "Confusion matrix (rows: true class, columns: predicted):",
              " " * (width + 2) + "".join(f"{s:>{cell}}" for s in short)]
    for name, row in zip(classes, matrix):
        lines.append(f"  {name:>{width}}" + "".join(f"{v:>{cell}}" for v in row))
    return "\n".join(lines)


def confident_mistakes(probas: np.ndarray, labels: np.ndarray, limit: int) -> np.ndarray:
    """Indices of the misread rows of ``probas`` (N, C), the most confident wrong answer first
    (ties: lower index first); at most ``limit`` of them.

    >>> confident_mistakes(np.array([[.9, .1], [.4, .6], [.2, .8]]), np.array([1, 0, 1]), 5)
    array([0, 1])
    """
    wrong = np.flatnonzero(probas.argmax(axis=1) != labels)
    order = np.argsort(-probas[wrong].max(axis=1), kind="stable")
    return wrong[order[:limit]]
