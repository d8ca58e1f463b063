"""``scratchnn predict``: the seed's test_prediction, one image drawn with its prediction."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..data import scale_pixels
from ..errors import ConfigError
from ..run import load_set
from .common import add_data_arguments, add_model_argument, add_set_argument, load_model_and_config
from .terminal_image import render_image


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "predict", help="show an image with the model's prediction and the true label",
        description="Draw one image in the terminal with the predicted label, its probability "
                    "and the true label (the seed's test_prediction).")
    add_model_argument(parser)
    parser.add_argument("--index", type=int, required=True, metavar="N", help="which image of the set (from 0)")
    add_set_argument(parser)
    parser.add_argument("--save", metavar="FILE.png", type=Path, help="also save the same as an image")
    add_data_arguments(parser, "default: the data the model was trained on")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    model, _, config = load_model_and_config(args)
    images, labels, classes, description = load_set(config, args.set)
    if not 0 <= args.index < len(images):
        raise ConfigError(f"--index {args.index} is out of range: the {args.set} set has "
                          f"{len(images):,} images (0..{len(images) - 1})")
    image, label = images[args.index], int(labels[args.index])
    probs = model.predict_proba(scale_pixels(image[None], model.input_shape))[0]
    best = int(np.argmax(probs))
    print(f"Image {args.index} of the {description}:")
    print(render_image(image))
    verdict = "correct" if best == label else "wrong"
    print(f"Prediction: {classes[best]} (probability {probs[best]:.1%})   True label: {classes[label]}   ({verdict})")
    top = np.argsort(probs)[::-1][:3]
    print("Top 3: " + ", ".join(f"{classes[i]} {probs[i]:.1%}" for i in top))
    if args.save:
        from ..plots import prediction_figure, save_figure

        save_figure(prediction_figure(image, probs, classes, label), args.save)
        print(f"Saved {args.save}")
    return 0
