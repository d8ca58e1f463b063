"""``scratchnn explain``: walk one image through the network and print every step."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..data import scale_pixels
from ..errors import ConfigError
from ..insight.explain import format_trace, trace
from ..io import class_names
from ..training.run_data import model_image_shape, not_28x28
from .common import (add_data_arguments, add_model_argument, add_set_argument, load_model_and_config, load_model_set,
                     refuse_data_flags_for_photos, require_plots)
from .terminal_image import render_image


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "explain", help="walk one image through the network, showing every step",
        description="Run one image through the model and show what each layer does: shapes, values, "
                    "the softmax step by step and, with a label, the loss and the gradient norms. "
                    "Give exactly one of --index and --image.")
    add_model_argument(parser)
    parser.add_argument("--index", type=int, metavar="N", help="which image of the --set (from 0)")
    add_set_argument(parser)
    parser.add_argument("--image", metavar="FILE", type=Path,
                        help="a photo or scan of a digit instead (turned into a 28x28 MNIST-style image)")
    parser.add_argument("--ink", choices=("auto", "dark", "light"), default="auto",
                        help="with --image: dark ink on light paper, light on dark, or auto-detect (default)")
    parser.add_argument("--label", metavar="L",
                        help="the true class (index or name) for the loss and gradients; "
                             "with --index the image's own label unless given")
    parser.add_argument("--save", metavar="FILE.png", type=Path, help="also draw the walk as a figure")
    add_data_arguments(parser, "default: the data the model was trained on")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if (args.index is None) == (args.image is None):
        raise ConfigError("give exactly one of --index N (an image of the --set) or --image FILE")
    if args.image is not None:
        refuse_data_flags_for_photos(args, "--image")
    if args.save:
        require_plots(args.save)  # before the walk is printed
    model, metadata, config = load_model_and_config(args)
    if args.index is not None:
        images, labels, classes, description = load_model_set(args, model, metadata, config)
        if not 0 <= args.index < len(images):
            raise ConfigError(f"--index {args.index} is out of range: the {args.set} set has "
                              f"{len(images):,} images (0..{len(images) - 1})")
        picture, true_label = images[args.index], int(labels[args.index])
        x = scale_pixels(picture[None], model.input_shape)[0]
        title = f"Image {args.index} of the {description}"
    else:
        classes = class_names(model, metadata)
        x, picture = _read_photo(args.image, model.input_shape, model_image_shape(model, metadata), args.ink)
        true_label, title = None, f"Image {args.image} as the model sees it"
    label = true_label if args.label is None else _class_index(args.label, classes)
    result = trace(model, x, label)
    print(f"{title}:")
    print(render_image(picture).strip("\n"))  # the blank rows above and below the digit say nothing
    print(format_trace(result, classes))
    if args.save:
        from ..plots import save_figure
        from ..insight.explain_figure import explain_figure

        save_figure(explain_figure(result, classes, image_shape=metadata.get("image_shape")), args.save)
        print(f"Saved {args.save}")
    return 0


def _read_photo(path: Path, input_shape: tuple[int, ...], image_shape, ink: str) -> tuple[np.ndarray, np.ndarray]:
    """(x (*input_shape) in 0..1, the same as a uint8 picture (28, 28)) for an image file, for a
    model of ``image_shape`` (H, W) images: 28x28 (not any 784 pixels: 16x49 would squeeze it)."""
    if reads := not_28x28(image_shape, input_shape):
        raise ConfigError(f"the model reads {reads}, but --image becomes a 28x28 digit; use a model trained on "
                          "28x28 images")
    from ..photos.preprocess import WORK_SIDE, read_image, to_mnist  # Pillow, only when a photo is given

    small = to_mnist(read_image(path, reduce_to=WORK_SIDE), ink=ink)
    picture = np.round(small * 255).astype(np.uint8)
    return small.reshape(input_shape).astype(np.float32), picture


def _class_index(text: str, classes) -> int:
    """--label as a class name ("Sneaker", "7") or an index into the classes."""
    names = [str(c) for c in classes]
    if text in names:
        return names.index(text)
    if text.lstrip("-").isdigit() and 0 <= int(text) < len(names):
        return int(text)
    raise ConfigError(f"--label {text!r} is not a class: give an index 0..{len(names) - 1} "
                      f"or a name ({', '.join(names)})")
