"""Photos of handwritten digits -> 28x28 inputs made the way MNIST itself was made.

MNIST (LeCun, Cortes, Burges): each digit's ink was scaled to fit a 20x20 box keeping its aspect
ratio (anti-aliasing leaves grey edges), then pasted into a 28x28 field with its centre of mass at
the centre. A photo needs more work before that:

    read_image   (decode.py) EXIF orientation, first frame, alpha over white, grey 0..1
    polarity     the ink is the minority side of an Otsu split of (photo - its blur)
    flatten      paper level = grey opening (strokes go, a shadow's edge stays); ink = above it
    threshold    Otsu, above a noise floor -> ink mask; specks (< 5% of the largest blob) dropped
    segment      8-connected components, merged into one digit where their x-ranges overlap
    normalise    crop with grey edges, scale to fit 20x20, paste centred by centre of mass

Grey images are float (H, W) in 0..1 with 0 = black. Outputs look like MNIST: bright ink (1) on
black (0). The only library module that imports Pillow.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..errors import ConfigError, ImageError, ShapeError
from .decode import FORMATS, MAX_PIXELS, photo_suffixes, read_image
from .image_ops import box_mean, box_sum, components, dilate, opening, otsu_threshold

# read_image is the pipeline's first step: a notebook imports it from here with the rest
__all__ = ["FORMATS", "INKS", "MAX_PIXELS", "WORK_SIDE", "NoInk", "centre_in_field", "detect_ink", "fit_box",
           "photo_suffixes", "preprocess_steps", "read_image", "split_digits", "steps_before_failure", "to_mnist",
           "to_mnist_and_digits"]
INKS = ("auto", "dark", "light")
WORK_SIDE = 800  # photos are analysed with the longest side reduced to this (area average)
BOX, FIELD, CENTRE = 20, 28, 14.0  # MNIST: fit 20x20, 28x28 field, mean centre of mass (14.0, 14.0)
PAPER_SQUARE = 1 / 10  # the paper level's square, of the photo's longest side: wider than a marker's stroke
CLEAR = 0.2  # the ink is clearly the smaller side of the photo when it covers less than this of it
EDGE_LONG, EDGE_THIN = 0.6, 0.15  # a band along the photo's edge: this long, this thin (of the sides)
SPECK = 0.05  # components under this fraction of the largest one's area are noise
SHORT = 0.3  # digit groups shorter than this fraction of the tallest are dots and dashes
MIN_HEIGHT = 6  # pixels (after reduction): anything shorter cannot be read as a digit
OVERLAP = 0.5  # pieces whose x-ranges overlap by half the narrower one belong to one digit
FAINT = 0.1  # grey edges fainter than this fraction of the ink (or 3 noise sigmas) are paper
MIN_CONTRAST = 0.08  # ink must stand this far from the paper (of its brightness), and 6 noise sigmas
DOT = 3.5  # ink whose box is under this many stroke widths long is a dot or a blob, not a digit (MNIST's
           # 10,000 digits: 5.2 and up, a 3:1 dash 4; a click of the page's pen 2.7-3.0)
PEN = 1.2  # thinner strokes are thickened to this: 2·area/perimeter in the 20x20 box, the 5th
#           percentile of MNIST's ink > 0.5 (median 1.8); thicker targets turn a flagged 1 into a 7
KEPT = "ink kept (page edges, specks dropped)"  # the step's name in preprocess_steps
PALETTE = np.array([[0.12, 0.47, 0.71], [1.0, 0.5, 0.05], [0.17, 0.63, 0.17], [0.84, 0.15, 0.16],
                    [0.58, 0.4, 0.74], [0.55, 0.34, 0.29], [0.89, 0.47, 0.76], [0.74, 0.74, 0.13]])


class NoInk(ImageError):
    """Nothing stands out from the paper (the page words it for its canvas)."""


def to_mnist(gray: np.ndarray, *, ink: str = "auto") -> np.ndarray:
    """One digit: grey photo (H, W) in 0..1 (or uint8) -> float32 (28, 28), bright ink on black.

    ``ink``: "dark" (ink on light paper), "light" (chalk on a board, MNIST itself) or "auto".
    All ink that is not noise counts. Raises ImageError when no ink stands out from the paper.
    """
    return _digit(_find_ink(gray, ink), None)[-1]


def split_digits(gray: np.ndarray, *, ink: str = "auto") -> list[np.ndarray]:
    """A written number: grey photo (H, W) -> one float32 (28, 28) per digit, left to right.

    Ink components whose x-ranges overlap are one digit (the two strokes of a broken 5).
    """
    found = _find_ink(gray, ink)
    return [_digit(found, group)[-1] for group in found.groups]


def to_mnist_and_digits(gray: np.ndarray, *, ink: str = "auto") -> tuple[np.ndarray, list[np.ndarray]]:
    """``to_mnist``'s (28, 28) image of all the ink, and ``split_digits``' one per digit, left to
    right, from one search for the ink (a single (28, 28) when the ink is one digit)."""
    found = _find_ink(gray, ink)
    whole = _digit(found, None)[-1]
    return whole, [_digit(found, group)[-1] for group in found.groups] if len(found.groups) > 1 else [whole]


def preprocess_steps(gray: np.ndarray, *, ink: str = "auto",
                     multi: bool = False) -> list[tuple[str, np.ndarray]]:
    """(name, image) for every step, to show how a photo became the model's input.

    Images are grey (h, w) in 0..1, or RGB (h, w, 3) for the segmentation. One digit: photo,
    flattened, threshold, ink kept, crop, 20x20, 28x28. ``multi``: the segmentation and each digit.
    Raises ImageError as the pipeline does; ``steps_before_failure`` draws how far a refused photo got.
    """
    steps: list[tuple[str, np.ndarray]] = []
    found = _find_ink(gray, ink, steps)
    if multi:
        colours = np.zeros((*found.labels.shape, 3), np.float32)
        for k, group in enumerate(found.groups):
            colours[np.isin(found.labels, group)] = PALETTE[k % len(PALETTE)]
        steps.append((f"{len(found.groups)} digit(s)", colours))
        return steps + [(f"digit {k + 1}: 28x28", _digit(found, group)[-1]) for k, group in enumerate(found.groups)]
    crop, small, field = _digit(found, None)
    height, width = small.shape
    return steps + [("crop (grey edges kept)", crop), (f"fit 20x20 ({width} wide, {height} high)", small),
                    ("28x28 (centre of mass at 14, 14)", field)]


def steps_before_failure(gray: np.ndarray, *, ink: str = "auto") -> tuple[list[tuple[str, np.ndarray]], str]:
    """The steps of a photo the pipeline refuses, as far as they went, and why it stopped ("" when
    it did not): the threshold shows what stood out from the paper, or that nothing did."""
    steps: list[tuple[str, np.ndarray]] = []
    try:
        _find_ink(_checked(gray), ink, steps)
    except ImageError as error:
        return steps, str(error)
    return steps, ""


# ------------------------------------------------------------------ finding the ink

@dataclass
class _Ink:
    work: np.ndarray  # (H, W) the photo as analysed, reduced to WORK_SIDE
    ink: str  # "dark" or "light"
    flat: np.ndarray  # (H, W) how far each pixel stands out from the paper, towards the ink (>= 0)
    otsu: float  # Otsu's threshold of flat
    high: np.ndarray  # (H, W) ink is flat > high: Otsu's threshold, or 4 noise sigmas where higher ...
    low: np.ndarray  # (H, W) ... and its grey edges, near it, down to low
    level: float  # typical strength of the ink (90th percentile of flat over it)
    labels: np.ndarray  # (H, W) int: components of the ink kept, 0 = paper or noise
    groups: list[np.ndarray]  # the component labels of each digit, left to right


def _find_ink(gray: np.ndarray, ink: str, steps: list | None = None) -> _Ink:
    """The ink of a grey photo; ``steps`` (a list) gets the (name, image) of each stage as it is reached."""
    steps = [] if steps is None else steps
    if ink not in INKS:
        raise ConfigError(f"ink must be one of {', '.join(INKS)}, got {ink!r}")
    work = _reduce(_checked(gray))
    detail = work - box_mean(work, _radius(work.shape))  # the paper's slow changes removed
    ink = _polarity(work, detail) if ink == "auto" else ink
    strokes = -detail if ink == "dark" else detail
    pen = _pen_width(strokes > otsu_threshold(strokes))  # roughly: the square must be wider than the strokes
    flat, noise = _flatten(1 - work if ink == "dark" else work, relative=ink == "dark", pen=pen)
    otsu = otsu_threshold(flat)
    high = np.maximum(otsu, 4 * noise)  # NOTE: Otsu alone splits the noise of an empty page
    shown = max(float(np.percentile(flat, 99.5)), MIN_CONTRAST)  # the picture's white: the ink, or a faint page
    steps += [("photo (as analysed)", work), (f"flattened ({ink} ink)", np.clip(flat / shown, 0, 1)),
              (f"threshold (Otsu {otsu:.2f})", (flat > high).astype(np.float32))]
    labels, stats = components(flat > high)
    stats[_around_the_page(stats, flat.shape), 0] = 0  # not ink: dropped with the specks below
    empty = NoInk("no ink found: nothing stands out from the paper; photograph the digit larger, "
                  "sharper or with more contrast")
    if not stats[:, 0].any():  # nothing, or only the page's surroundings
        steps.append((KEPT, np.zeros(flat.shape, np.float32)))
        raise empty
    keep = (stats[:, 0] > 0) & (stats[:, 0] >= SPECK * stats[:, 0].max())
    groups = _group(stats, keep)
    if not groups:  # ink, but all of it flatter than a digit: a dash, a line, the bar of a 7 so far
        raise ImageError("the ink is a line or a dash, too flat for a digit: draw or photograph a whole digit")
    kept = np.concatenate(groups)
    lookup = np.zeros(len(stats) + 1, labels.dtype)
    lookup[kept] = kept
    labels = lookup[labels]  # noise and dropped groups -> 0
    steps.append((KEPT, (labels > 0).astype(np.float32)))
    level = float(np.percentile(flat[labels > 0], 90))
    significance = np.percentile(flat[labels > 0] / np.maximum(noise[labels > 0], 1e-6), 90)
    if level < MIN_CONTRAST or significance < 6:
        raise empty
    _refuse_a_dot(labels > 0)
    return _Ink(work, ink, flat, otsu, high, np.maximum(FAINT * level, 3 * noise), level, labels, groups)


def _around_the_page(stats: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Which components (K,) are the page's surroundings, not ink: a band along the photo's edge
    (the desk beside the page, a ruled line), long (over EDGE_LONG of a side) and thin (under
    EDGE_THIN of the other), or a frame, touching all four edges around other ink (the desk all
    round). A digit cropped tightly touches the edges too, but is neither."""
    height, width = shape
    _, top, bottom, left, right = stats.T
    tall, wide = bottom - top, right - left
    edge = (top == 0) | (left == 0) | (bottom == height) | (right == width)
    band = ((tall >= EDGE_LONG * height) & (wide <= EDGE_THIN * width)) | \
           ((wide >= EDGE_LONG * width) & (tall <= EDGE_THIN * height))
    frame = (top == 0) & (left == 0) & (bottom == height) & (right == width)
    if frame.any():  # around other ink: something of note lies wholly inside it, away from the edges
        inside = (top > 0) & (left > 0) & (bottom < height) & (right < width)
        frame &= bool(np.any(inside & (stats[:, 0] >= SPECK * stats[frame, 0].max())))
    return edge & (band | frame)


def _refuse_a_dot(mask: np.ndarray) -> None:
    """A click or a speck is no digit: the network would still give it a confident class."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    box = mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    pen = _pen_width(box)
    if max(box.shape) < DOT * pen:
        raise ImageError(f"the ink is a dot, not a digit ({box.shape[1]}x{box.shape[0]} pixels, strokes {pen:.0f} "
                         "wide): draw or photograph a whole digit")


def _checked(gray: np.ndarray) -> np.ndarray:
    gray = np.asarray(gray)
    if gray.ndim != 2 or min(gray.shape) == 0:
        raise ShapeError(f"expected a grey image (H, W), got shape {gray.shape}; read photos with read_image")
    if gray.dtype == np.uint8:
        return gray.astype(np.float32) / np.float32(255)
    if gray.dtype.kind not in "fiu":
        raise ShapeError(f"expected grey values 0..1, got dtype {gray.dtype}")
    gray = gray.astype(np.float32)
    if not np.isfinite(gray).all() or gray.min() < 0 or gray.max() > 1:
        raise ShapeError(f"grey values must be finite and in 0..1 (0 = black), got {gray.min()}..{gray.max()}; "
                         "divide 8-bit pixels by 255")
    return gray


def _reduce(gray: np.ndarray) -> np.ndarray:
    """gray with its longest side at most WORK_SIDE (area average: thin strokes fade, never vanish)."""
    height, width = gray.shape
    scale = WORK_SIDE / max(height, width)
    if scale >= 1:
        return gray
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(gray).resize(size, Image.Resampling.BOX))


def detect_ink(gray: np.ndarray) -> str:
    """"dark" or "light": the ink of a grey image (H, W) in 0..1, 0 = black."""
    gray = _checked(gray)
    return _polarity(gray, gray - box_mean(gray, _radius(gray.shape)))


def _polarity(gray: np.ndarray, detail: np.ndarray) -> str:
    """Whichever side of an Otsu split of the detail (image - its blur) is smaller is the ink:
    ink covers less of a page than paper does. The detail, so a lighting gradient is no ink.
    Where neither side is clearly smaller (over CLEAR of the photo: a digit cropped tightly), a
    light edge all round is paper, so the ink is dark (a dark edge may be the desk, not the paper)."""
    dark = np.count_nonzero(detail <= otsu_threshold(detail)) / detail.size
    if min(dark, 1 - dark) >= CLEAR:
        k = max(1, round(0.02 * min(gray.shape)))
        ring = np.concatenate([gray[:k].ravel(), gray[-k:].ravel(), gray[:, :k].ravel(), gray[:, -k:].ravel()])
        if np.mean(ring > otsu_threshold(gray)) >= 0.75:
            return "dark"
    return "dark" if dark < 0.5 else "light"


def _flatten(v: np.ndarray, relative: bool, pen: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(flat, noise sigma of flat), both (H, W): flat = max(v - paper level, 0), v (H, W) ink bright.

    The paper level is a grey opening of v (``image_ops.opening``: a min, then a max filter over a
    square wider than the strokes: PAPER_SQUARE of the photo, or twice the ``pen`` width),
    smoothed: the strokes go, while the light's slow changes and its sharp steps (a shadow's
    edge, the desk beside the page) stay paper. A box mean over the
    photo would straddle such a step and call one side of it ink. Set to the paper's median (the
    low side of an Otsu split of v minus the opening). ``relative`` (dark ink, v = 1 - photo):
    divided by the paper's brightness 1 - level, since light multiplies: ink in a shadow is as
    dark, relative to its paper.
    """
    radius = max(4, round(max(v.shape) * PAPER_SQUARE / 2), math.ceil(2 * pen))
    background = box_mean(opening(box_mean(v, 1), radius), max(2, radius // 2))
    diff = v - background
    paper = diff <= otsu_threshold(diff)
    level = background + float(np.median(diff[paper]))
    diff = v - level
    sample = diff[paper][::7]  # a sample is plenty for robust statistics
    sigma = 1.4826 * float(np.median(np.abs(sample - np.median(sample))))  # MAD: robust to stray ink
    brightness = np.maximum(1 - level, 0.05) if relative else np.ones_like(level)
    # the camera's noise is the same everywhere; dividing by a dim paper's brightness scales it up
    return np.clip(diff / brightness, 0, None).astype(np.float32), (sigma / brightness).astype(np.float32)


def _radius(shape: tuple[int, int]) -> int:
    """Box radius for the paper level: an eighth of the longest side, wider than any pen stroke."""
    return max(2, round(max(shape) / 8))


# ------------------------------------------------------------------ digits

def _group(stats: np.ndarray, keep: np.ndarray) -> list[np.ndarray]:
    """Labels (1-based) of each digit, left to right: kept components merged by x-overlap, then
    dots and dashes (groups much shorter than the tallest) dropped."""
    groups, spans = [], []  # spans: [top, bottom, left, right] of each group
    for index in np.flatnonzero(keep)[np.argsort(stats[keep, 3], kind="stable")]:
        _, top, bottom, left, right = stats[index]
        if spans:
            g = spans[-1]
            if min(g[3], right) - left >= OVERLAP * min(g[3] - g[2], right - left):
                groups[-1].append(index + 1)
                spans[-1] = [min(g[0], top), max(g[1], bottom), g[2], max(g[3], right)]
                continue
        groups.append([index + 1])
        spans.append([top, bottom, left, right])
    heights = np.array([bottom - top for top, bottom, _, _ in spans])
    tall = (heights >= SHORT * heights.max()) & (heights >= MIN_HEIGHT) if len(heights) else heights
    return [np.array(group) for group, ok in zip(groups, tall) if ok]


def _digit(found: _Ink, group: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(crop, fitted (<=20, <=20), field (28, 28)) of one group of components (None: all the ink)."""
    mine = found.labels > 0 if group is None else np.isin(found.labels, group)
    rows, cols = np.flatnonzero(mine.any(1)), np.flatnonzero(mine.any(0))
    window = np.s_[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]  # the ink's box: its edges at the threshold
    mine, flat, low = mine[window], found.flat[window], found.low[window]
    reach = max(1, round(0.03 * mine.shape[0]))  # how far grey edges may spread around the strokes
    near = (box_sum(mine.astype(np.float32), reach) > 0.5) & ((found.labels[window] == 0) | mine)
    crop = (np.clip(flat / found.level, 0, 1) * (near & (flat > low))).astype(np.float32)  # greys as they are
    small = fit_box(crop, _pen_width(mine))
    return crop, small, centre_in_field(small)


def _pen_width(mask: np.ndarray) -> float:
    """Stroke width in pixels, 2·area/perimeter (a long stroke of width w: 2wL/2L = w)."""
    perimeter = (np.count_nonzero(np.diff(mask, axis=0, prepend=False, append=False))
                 + np.count_nonzero(np.diff(mask, axis=1, prepend=False, append=False)))
    return 2 * np.count_nonzero(mask) / max(perimeter, 1)


def fit_box(crop: np.ndarray, pen: float | None = None) -> np.ndarray:
    """crop (h, w) of ink in 0..1 -> float32 scaled to fit BOX x BOX (20x20), aspect ratio kept.

    A thin pen is thickened first (grey dilation) so strokes come out about as wide as MNIST's
    (PEN px in the box); ``pen`` is the crop's stroke width in its own pixels.
    """
    height, width = crop.shape
    scale = BOX / max(height, width)
    if pen is not None and pen * scale < PEN:
        crop = dilate(crop, round((PEN / scale - pen) / 2))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    small = np.asarray(Image.fromarray(crop.astype(np.float32)).resize(size, resample))
    return np.clip(small / max(float(small.max()), 1e-6), 0, 1).astype(np.float32)


def centre_in_field(small: np.ndarray) -> np.ndarray:
    """small (h, w), h, w <= 28 -> (28, 28) with its centre of mass moved to (14, 14) (whole pixels)."""
    height, width = small.shape
    total = float(small.sum())
    cy = small.sum(1) @ np.arange(height) / total if total else (height - 1) / 2
    cx = small.sum(0) @ np.arange(width) / total if total else (width - 1) / 2
    top = int(np.clip(round(CENTRE - cy), 0, FIELD - height))
    left = int(np.clip(round(CENTRE - cx), 0, FIELD - width))
    field = np.zeros((FIELD, FIELD), np.float32)
    field[top:top + height, left:left + width] = small
    return field
