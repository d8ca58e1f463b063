"""``scratchnn evaluate``: accuracy, per-class accuracy and a confusion matrix on one set.

Several models (or a folder of member runs) are evaluated as an ensemble, each member's own
accuracy beside the ensemble's; ``--tta N`` adds a column with test-time augmentation.
"""
from __future__ import annotations

import argparse

from ..data.tta import VIEW_KINDS
from ..ensemble import average
from ..metrics import accuracy, confusion_matrix, format_report
from .common import (add_data_arguments, add_models_argument, add_set_argument, add_textbook_argument, add_tta_argument,
                     load_ensemble_and_set, plain_and_tta_probas)


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "evaluate", help="accuracy, per-class accuracy and confusion matrix of a model or an ensemble",
        description="Measure a saved model on one set of images. By default the dev split of the "
                    "data it was trained on, rebuilt from its saved config and seed. Several models "
                    "are measured as an ensemble (their probabilities averaged), each beside it.")
    add_models_argument(parser)
    add_set_argument(parser)
    add_tta_argument(parser)
    add_textbook_argument(parser)
    add_data_arguments(parser, "default: the data the model was trained on")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    ensemble, images, labels, classes, description = load_ensemble_and_set(args)
    labels = labels.astype(int)
    plain, averaged = plain_and_tta_probas(ensemble, images, args.tta,
                                           f"TTA x{args.tta}" if args.tta > 1 else "Predicting")
    columns = {"accuracy": plain}
    if args.tta > 1:
        columns[f"with TTA x{args.tta}"] = averaged
    for member in ensemble.members:
        print(f"Model: {member.name} ({member.model.widths()})")
    print(f"Data: {description} ({len(labels):,} images)")
    if args.tta > 1:  # each member's views follow the data it was trained on
        kinds = dict.fromkeys(VIEW_KINDS[member.views] for member in ensemble.members)
        print(f"TTA x{args.tta}: the original and {args.tta - 1} view{'s' * (args.tta > 2)} ({'; '.join(kinds)})")
    if len(ensemble) > 1 or args.tta > 1:
        print(accuracy_table(columns, [member.name for member in ensemble.members], labels) + "\n")
    predictions = average(list(columns.values())[-1]).argmax(axis=1)  # the ensemble, with TTA when asked
    matrix = confusion_matrix(labels, predictions, len(classes))
    which = (f"ensemble of {len(ensemble)}" if len(ensemble) > 1 else "") + (
        f"{', ' * (len(ensemble) > 1)}TTA x{args.tta}" if args.tta > 1 else "")
    print(f"Accuracy{f' ({which})' if which else ''}: {accuracy(predictions, labels):.4f} "
          f"({int(matrix.trace()):,}/{len(labels):,})\n")
    print(format_report(matrix, classes))
    return 0


def accuracy_table(columns: dict[str, list], names: list[str], labels) -> str:
    """Rows: each member (when there are several), then the ensemble; columns: each way of predicting."""
    rows = [(name, [accuracy(probas[k].argmax(axis=1), labels) for probas in columns.values()])
            for k, name in enumerate(names)] if len(names) > 1 else []
    rows.append((f"ensemble of {len(names)}" if len(names) > 1 else names[0],
                 [accuracy(average(probas).argmax(axis=1), labels) for probas in columns.values()]))
    width = max(len(name) for name, _ in rows)
    lines = [" " * (width + 2) + "".join(f"{title:>16}" for title in columns)]
    lines += [f"  {name:<{width}}" + "".join(f"{value:>16.4f}" for value in values) for name, values in rows]
    return "\n".join(lines)
