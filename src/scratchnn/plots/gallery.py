"""Images with their predictions: one image (the seed's test_prediction), a sheet, the mistakes;
and the augmented copies a network trained on."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..errors import ShapeError
from ..metrics import confident_mistakes
from .common import as_images, check_labels, check_probs, grid_shape, percent, pixel_range, text_width, verbatim_all

RIGHT, WRONG = "forestgreen", "firebrick"
ORIGINAL = "tab:orange"  # the frame of an image as the data holds it, beside changed copies
TITLE_SIZE = 8.5  # points, the title of each image in a grid


def prediction_figure(image: np.ndarray, probs: np.ndarray, classes: Sequence[str],
                      true_label: int | None = None) -> Figure:
    """The seed's test_prediction: the image (H, W) with predicted and true label, plus bars of
    the class probabilities (C,)."""
    classes = verbatim_all(classes)
    image = as_images(np.asarray(image)[None], "image")[0]
    probs = check_probs(np.asarray(probs)[None], 1, classes)[0]
    best = int(np.argmax(probs))
    fig = Figure(figsize=(6.4, 3.2), layout="constrained")
    ax_image, ax_probs = fig.subplots(1, 2, width_ratios=[1, 1.3])
    vmin, vmax = pixel_range(image)  # a faint digit stays faint, as in the prediction sheet
    ax_image.imshow(image, cmap="gray", vmin=vmin, vmax=vmax, interpolation="nearest")
    ax_image.set_axis_off()
    title = f"Prediction: {classes[best]} ({percent(probs[best])})"
    if true_label is not None:
        title += f"\nTrue label: {classes[true_label]}"
    ax_image.set_title(title, color="black" if true_label in (None, best) else WRONG)
    colors = ["tab:blue" if i == best else "silver" for i in range(len(probs))]
    ax_probs.barh(range(len(probs)), probs, color=colors)
    ax_probs.set_yticks(range(len(probs)), classes)
    ax_probs.invert_yaxis()
    ax_probs.set_xlim(0, 1)
    ax_probs.set_xlabel("probability")
    return fig


def image_grid(images: np.ndarray, titles: Sequence[str], colors: Sequence[str], suptitle: str,
               max_columns: int = 8, columns: int | None = None) -> Figure:
    """Images (K, H, W) in a grid, each with a title above and a frame in its colour; ``columns``
    fixes how many a row holds (else as many as fit, up to ``max_columns``).

    One Axes spans the figure with inches as data units and every image, title and frame is
    placed at computed positions: as fast for 64 images as for 4 (an Axes per image under
    constrained layout costs seconds), and the sizes come from the measured title widths, so
    nothing is clipped by construction.
    """
    tile = 1.2  # inches per image
    title_height = (TITLE_SIZE * 1.25 * max(t.count("\n") + 1 for t in titles) + 6) / 72
    cell_width = max([tile + 0.2] + [text_width(t, TITLE_SIZE) + 0.15 for t in titles])
    # long class names widen the cells: fewer columns keep the figure within a page's width (~12 in)
    if columns is None:
        rows, columns = grid_shape(len(images), max(4, min(max_columns, int(12 // cell_width))))
    else:
        rows = -(-len(images) // columns)
    cell_height = tile + title_height + 0.1
    heading = text_width(suptitle) + 0.4
    width = max(cell_width * columns + 0.2, heading)
    top = 0.45  # the figure title
    height = top + cell_height * rows + 0.05
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)  # y grows downwards, like reading order
    ax.set_axis_off()
    vmin, vmax = pixel_range(images)
    left = (width - cell_width * columns) / 2
    for k, (image, title, color) in enumerate(zip(images, titles, colors)):
        r, c = divmod(k, columns)
        x = left + c * cell_width + (cell_width - tile) / 2
        y = top + r * cell_height + title_height
        longest = max(image.shape)
        (x0, x1), (y0, y1) = _fitted(x, tile, image.shape[1], longest), _fitted(y, tile, image.shape[0], longest)
        ax.imshow(image, cmap="gray", vmin=vmin, vmax=vmax, interpolation="nearest", aspect="auto",
                  extent=(x0, x1, y1, y0))
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=color, linewidth=2.5))
        ax.text(x + tile / 2, y - 0.06, title, ha="center", va="bottom", fontsize=TITLE_SIZE, color=color,
                linespacing=1.25)
    fig.suptitle(suptitle, y=1 - top / 2 / height, va="center")
    return fig


def _fitted(start: float, tile: float, pixels: int, longest: int) -> tuple[float, float]:
    """(from, to) of an image side of ``pixels`` in a square ``tile`` that begins at ``start``:
    the image's ``longest`` side fills the tile, the other is centred (the shapes audit: 16x49
    images were drawn stretched into squares, as upright digits).

    >>> _fitted(0.0, 1.0, 28, 28), _fitted(0.0, 1.0, 16, 32)
    ((0.0, 1.0), (0.25, 0.75))
    """
    size = tile * pixels / longest
    return start + (tile - size) / 2, start + (tile + size) / 2


def prediction_sheet(images: np.ndarray, probs: np.ndarray, classes: Sequence[str],
                     labels: np.ndarray | None = None, n: int = 24) -> Figure:
    """The seed's test_prediction for the first ``n`` images (N, H, W): each with the predicted
    class and its probability, the true label under it; green frame right, red frame wrong."""
    images, classes = as_images(images), verbatim_all(classes)
    probs = check_probs(probs, len(images), classes)
    shown = min(n, len(images))
    if shown == 0:
        return _message_figure("Predictions", "no images to show")
    predicted = probs.argmax(axis=1)
    titles, colors = [], []
    if labels is None:
        for i in range(shown):
            titles.append(f"{classes[predicted[i]]} ({percent(probs[i, predicted[i]])})")
            colors.append("black")
        suptitle = f"Predictions for the first {shown} images"
    else:
        labels = check_labels(labels, len(images), classes)
        for i in range(shown):
            titles.append(f"pred: {classes[predicted[i]]} ({percent(probs[i, predicted[i]])})\n"
                          f"true: {classes[labels[i]]}")
            colors.append(RIGHT if predicted[i] == labels[i] else WRONG)
        correct = int(np.count_nonzero(predicted[:shown] == labels[:shown]))
        suptitle = f"Predictions for the first {shown} images: {correct} of {shown} correct"
    return image_grid(images[:shown], titles, colors, suptitle)


def mistakes_gallery(images: np.ndarray, labels: np.ndarray, probs: np.ndarray, classes: Sequence[str],
                     n: int = 24) -> Figure:
    """The ``n`` wrong predictions made with the highest probability, most confident first:
    each image (N, H, W) titled with the predicted class, its probability and the true class."""
    images, classes = as_images(images), verbatim_all(classes)
    probs = check_probs(probs, len(images), classes)
    labels = check_labels(labels, len(images), classes)
    predicted = probs.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    if len(wrong) == 0:
        return _message_figure("Most confident mistakes", f"No mistakes: all {len(images):,} images are "
                                                          "classified correctly")
    chosen = confident_mistakes(probs, labels, n)
    titles = [f"pred: {classes[predicted[i]]} ({percent(probs[i, predicted[i]])})\ntrue: {classes[labels[i]]}"
              for i in chosen]
    suptitle = (f"The {len(chosen)} most confident mistakes ({len(wrong):,} wrong of {len(images):,} "
                f"images, {len(wrong) / len(images):.1%})")
    return image_grid(images[chosen], titles, [WRONG] * len(chosen), suptitle)


def augmentation_gallery(originals: np.ndarray, copies: np.ndarray, names: Sequence[str], suptitle: str) -> Figure:
    """What the network trained on: each row an original image (K, H, W), framed and titled with
    its class name, then its augmented copies (K, M, H, W), at most 7 a row."""
    originals, names = as_images(originals, "originals"), verbatim_all(names)
    copies = np.asarray(copies)
    if copies.ndim != 4 or copies.shape[0] != len(originals) or copies.shape[2:] != originals.shape[1:]:
        raise ShapeError(f"copies must be (K, M, H, W) for {len(originals)} originals of "
                         f"{originals.shape[1:]}, got shape {copies.shape}")
    if len(names) != len(originals):
        raise ShapeError(f"one name per original: got {len(names)} names for {len(originals)} images")
    copies = copies[:, :7]  # eight columns: image_grid's widest rows
    names = [name if len(name) <= 16 else name[:15] + "…" for name in names]  # every cell is as wide as the widest
    images = np.concatenate([originals[:, None], copies], axis=1).reshape(-1, *originals.shape[1:])
    columns = 1 + copies.shape[1]
    titles = [name if c == 0 else "" for name in names for c in range(columns)]
    colors = [ORIGINAL if c == 0 else "none" for _ in names for c in range(columns)]
    return image_grid(images, titles, colors, suptitle, columns=columns)


def _message_figure(title: str, message: str) -> Figure:
    """A small figure that says why there is nothing to draw (rather than an empty canvas)."""
    fig = Figure(figsize=(max(6.0, text_width(message) + 0.6), 1.6), layout="constrained")
    ax = fig.subplots()
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=12, transform=ax.transAxes)
    fig.suptitle(title)
    return fig
