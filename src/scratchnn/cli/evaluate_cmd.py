"""``scratchnn evaluate``: accuracy, per-class accuracy and a confusion matrix on one set."""
from __future__ import annotations

import argparse

from ..data import scale_pixels
from ..metrics import accuracy, confusion_matrix, format_report
from .common import add_data_arguments, add_model_argument, add_set_argument, load_model_and_config, load_model_set


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "evaluate", help="accuracy, per-class accuracy and confusion matrix of a model",
        description="Measure a saved model on one set of images. By default the dev split of the "
                    "data it was trained on, rebuilt from its saved config and seed.")
    add_model_argument(parser)
    add_set_argument(parser)
    add_data_arguments(parser, "default: the data the model was trained on")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    model, metadata, config = load_model_and_config(args)
    images, labels, classes, description = load_model_set(args, model, metadata, config)
    predictions = model.predict(scale_pixels(images, model.input_shape))
    matrix = confusion_matrix(labels.astype(int), predictions, len(classes))
    print(f"Model: {args.model} ({model.widths()})")
    print(f"Data: {description} ({len(labels):,} images)")
    print(f"Accuracy: {accuracy(predictions, labels):.4f} ({int(matrix.trace()):,}/{len(labels):,})\n")
    print(format_report(matrix, classes))
    return 0
