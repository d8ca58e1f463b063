"""``scratchnn evaluate``: accuracy, per-class accuracy and a confusion matrix on one set.

Several models (or a folder of member runs) are evaluated as an ensemble, each member's own
accuracy beside the ensemble's; ``--tta N`` adds a column with test-time augmentation.
"""
from __future__ import annotations

import argparse
import json
import math

from ..data.tta import VIEW_KINDS
from ..ensemble import average
from ..errors import ConfigError
from ..metrics import accuracy, confident_mistakes, confusion_matrix, format_report, per_class_accuracy
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
    parser.add_argument("--mistakes", type=int, default=0, metavar="N",
                        help="also list the N misread images the model was surest of: index in the set (for "
                             "predict --index), true and predicted class, and the probabilities")
    add_textbook_argument(parser)
    parser.add_argument("--json", action="store_true",
                        help="print the results as one JSON object instead (for scripts): accuracy, each member's, "
                             "per class, the confusion matrix (rows: true class) and the --mistakes")
    add_data_arguments(parser, "default: the data the model was trained on")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.mistakes < 0:
        raise ConfigError(f"--mistakes takes how many misread images to list (0 or more), got {args.mistakes}")
    ensemble, images, labels, classes, description = load_ensemble_and_set(args)
    labels = labels.astype(int)
    plain, averaged = plain_and_tta_probas(ensemble, images, args.tta,
                                           f"TTA x{args.tta}" if args.tta > 1 else "Predicting")
    columns = {"accuracy": plain}
    if args.tta > 1:
        columns[f"with TTA x{args.tta}"] = averaged
    probas = average(list(columns.values())[-1])  # the ensemble, with TTA when asked
    predictions = probas.argmax(axis=1)
    matrix = confusion_matrix(labels, predictions, len(classes))
    if args.json:
        print(json.dumps(results(ensemble, columns, probas, matrix, labels, classes, description, args), indent=2))
        return 0
    for member in ensemble.members:
        print(f"Model: {member.name} ({member.model.widths()})")
    print(f"Data: {description} ({len(labels):,} images)")
    if args.tta > 1:  # each member's views follow the data it was trained on
        kinds = dict.fromkeys(VIEW_KINDS[member.views] for member in ensemble.members)
        print(f"TTA x{args.tta}: the original and {args.tta - 1} view{'s' * (args.tta > 2)} ({'; '.join(kinds)})")
    if len(ensemble) > 1 or args.tta > 1:
        print(accuracy_table(columns, [member.name for member in ensemble.members], labels) + "\n")
    which = (f"ensemble of {len(ensemble)}" if len(ensemble) > 1 else "") + (
        f"{', ' * (len(ensemble) > 1)}TTA x{args.tta}" if args.tta > 1 else "")
    print(f"Accuracy{f' ({which})' if which else ''}: {accuracy(predictions, labels):.4f} "
          f"({int(matrix.trace()):,}/{len(labels):,})\n")
    print(format_report(matrix, classes))
    if args.mistakes:
        print("\n" + mistakes_table(probas, labels, classes, args.mistakes, args.set))
    return 0


def results(ensemble, columns: dict[str, list], probas, matrix, labels, classes: list[str], description: str,
            args: argparse.Namespace) -> dict:
    """What evaluate prints, as one JSON-ready object: ``probas`` and ``matrix`` are the ensemble's
    (with TTA when asked), and so is "accuracy"."""
    members = [{"name": member.name, "accuracy": accuracy(columns["accuracy"][k].argmax(axis=1), labels),
                **({"accuracy_tta": accuracy(columns[f"with TTA x{args.tta}"][k].argmax(axis=1), labels)}
                   if args.tta > 1 else {})} for k, member in enumerate(ensemble.members)]
    return {"data": description, "set": args.set, "images": len(labels), "tta": args.tta,
            "accuracy": accuracy(probas.argmax(axis=1), labels), "correct": int(matrix.trace()),
            **({"accuracy_without_tta": accuracy(average(columns["accuracy"]).argmax(axis=1), labels)}
               if args.tta > 1 else {}),
            "members": members,
            "per_class": [{"class": name, "images": int(matrix[c].sum()), "accuracy": None if math.isnan(a) else a}
                          for c, (name, a) in enumerate(zip(classes, per_class_accuracy(matrix).tolist()))],
            "confusion_matrix": matrix.tolist(),
            "mistakes": [{"index": int(i), "true": classes[labels[i]], "predicted": classes[int(probas[i].argmax())],
                          "p_predicted": float(probas[i].max()), "p_true": float(probas[i, labels[i]])}
                         for i in confident_mistakes(probas, labels, args.mistakes)] if args.mistakes else []}


def mistakes_table(probas, labels, classes: list[str], limit: int, set_name: str) -> str:
    """The most confident mistakes, one line each, and how to look at one."""
    rows = confident_mistakes(probas, labels, limit)
    wrong = int((probas.argmax(axis=1) != labels).sum())
    if not wrong:
        return f"No mistakes on the {set_name} set."
    which = (f"All {wrong:,} misread images, the surest first" if len(rows) == wrong else
             f"The {len(rows)} misread image{'s' * (len(rows) > 1)} it was surest of, of {wrong:,}")
    lines = [f"{which} (index: image N of the {set_name} set, as predict --index N shows it):",
             f"  {'index':>7}  {'true':>6}  {'predicted':>9}  {'p(predicted)':>12}  {'p(true)':>7}"]
    for i in rows:
        predicted = int(probas[i].argmax())
        lines.append(f"  {i:>7}  {classes[labels[i]]:>6}  {classes[predicted]:>9}  {probas[i, predicted]:>12.3f}  "
                     f"{probas[i, labels[i]]:>7.3f}")
    return "\n".join(lines)


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
