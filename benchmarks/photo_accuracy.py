"""How well does a model read photos of handwritten digits, next to the 28x28 digits it knows?

Two sets of "photos", rendered with Pillow from a seeded generator, go through exactly what
``scratchnn predict MODEL photo.jpg`` does (JPEG bytes -> read_image -> to_mnist -> model):

- mnist:   real MNIST digits of the run's dev split (never trained on), inked dark on grey paper:
           scaled up to 20-80% of the photo's short side (bilinear, so the edges are soft), rotated
           up to ±12°, placed off-centre, paper grey 0.40-0.85 and ink 0.02-0.30 (ink at least 0.25
           darker), a lighting gradient of up to ±35% in a random direction plus a vignette, Gaussian
           noise sigma up to 0.05, JPEG quality 40-90, photos 160-1600 px wide. The model's accuracy
           on the same digits as 28x28 images is printed beside it: the gap is what the photo and the
           preprocessing cost.
- strokes: digits drawn as pen strokes (a polyline template per digit, every point jittered,
           a random slant and pen width 2-12% of the digit height), under the same paper, light,
           noise and JPEG. Shapes the model has never seen: closer to someone's own handwriting.

    python benchmarks/photo_accuracy.py --model runs/X [--set dev] [--count 1000] [--kind mnist]
                                        [--seed 0] [--save-photos DIR]

``--save-photos DIR`` also writes every photo as DIR/<kind>-<n>-label<L>.jpg, to look at or to pass
to ``scratchnn predict``. The script prints figures; it asserts nothing.
"""
from __future__ import annotations

import argparse
import io
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from scratchnn.cli.common import apply_data_options
from scratchnn.data import scale_pixels
from scratchnn.errors import ImageError
from scratchnn.io import load, read_metadata, resolve_model_path
from scratchnn.photos.preprocess import read_image, to_mnist
from scratchnn.training.config import TrainConfig
from scratchnn.training.run_data import SETS, load_set

# Each digit as strokes of (x, y) points in a 0..1 box (y down), as one might write it.
STROKES = {
    0: [[(0.5, 0.0), (0.2, 0.15), (0.05, 0.5), (0.2, 0.88), (0.5, 1.0), (0.8, 0.88), (0.95, 0.5),
         (0.8, 0.12), (0.5, 0.0)]],
    1: [[(0.4, 0.15), (0.6, 0.0), (0.6, 1.0)]],
    2: [[(0.1, 0.25), (0.3, 0.03), (0.65, 0.0), (0.88, 0.2), (0.8, 0.45), (0.4, 0.75), (0.05, 1.0),
         (0.95, 1.0)]],
    3: [[(0.1, 0.1), (0.5, 0.0), (0.85, 0.15), (0.8, 0.38), (0.4, 0.48), (0.85, 0.6), (0.9, 0.85),
         (0.5, 1.0), (0.1, 0.9)]],
    4: [[(0.65, 1.0), (0.65, 0.0), (0.05, 0.68), (0.95, 0.68)]],
    5: [[(0.85, 0.0), (0.2, 0.0), (0.15, 0.45), (0.55, 0.38), (0.88, 0.6), (0.8, 0.9), (0.45, 1.0),
         (0.1, 0.9)]],
    6: [[(0.8, 0.05), (0.45, 0.05), (0.15, 0.4), (0.1, 0.75), (0.35, 1.0), (0.75, 0.95), (0.9, 0.7),
         (0.7, 0.5), (0.35, 0.5), (0.12, 0.7)]],
    7: [[(0.05, 0.0), (0.95, 0.0), (0.6, 0.45), (0.35, 1.0)]],
    8: [[(0.5, 0.48), (0.15, 0.3), (0.2, 0.05), (0.5, 0.0), (0.8, 0.05), (0.85, 0.3), (0.5, 0.48),
         (0.1, 0.72), (0.2, 0.95), (0.5, 1.0), (0.8, 0.95), (0.9, 0.72), (0.5, 0.48)]],
    9: [[(0.88, 0.3), (0.6, 0.5), (0.2, 0.45), (0.1, 0.2), (0.35, 0.0), (0.75, 0.02), (0.88, 0.3),
         (0.8, 0.65), (0.65, 1.0)]],
}


def mnist_ink(digit: np.ndarray, height: float, rng: np.random.Generator) -> np.ndarray:
    """Ink coverage (h, w) in 0..1 of an MNIST digit (28, 28) uint8 scaled so its 20-px box is
    ``height`` px, rotated a little."""
    side = max(8, round(28 * height / 20))
    image = Image.fromarray(digit).resize((side, side), Image.Resampling.BILINEAR)
    image = image.rotate(rng.uniform(-12, 12), Image.Resampling.BILINEAR, expand=True)
    return np.asarray(image, np.float32) / 255


def stroke_ink(label: int, height: float, rng: np.random.Generator) -> np.ndarray:
    """Ink coverage (h, w) of digit ``label`` drawn as jittered, slanted pen strokes."""
    size = math.ceil(height * 1.6)
    image = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(image)
    pen = max(2, round(height * rng.uniform(0.02, 0.12)))
    slant, width = rng.uniform(-0.25, 0.25), height * rng.uniform(0.55, 0.8)
    for stroke in STROKES[label]:
        points = np.array(stroke) + rng.normal(0, 0.035, (len(stroke), 2))
        x = size / 2 + (points[:, 0] - 0.5) * width + (0.5 - points[:, 1]) * slant * height
        y = size / 2 + (points[:, 1] - 0.5) * height
        draw.line(list(zip(x.tolist(), y.tolist())), fill=255, width=pen, joint="curve")
    image = image.rotate(rng.uniform(-8, 8), Image.Resampling.BILINEAR)
    return np.asarray(image, np.float32) / 255


def photograph(ink: np.ndarray, size: tuple[int, int], rng: np.random.Generator) -> bytes:
    """JPEG bytes of ink coverage (h, w) placed off-centre on grey paper (height, width) under
    uneven light; the page grows if the ink does not fit."""
    rows, cols = np.flatnonzero(ink.max(1) > 0.02), np.flatnonzero(ink.max(0) > 0.02)
    ink = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = ink.shape
    height, width = max(size[0], h + 2), max(size[1], w + 2)
    coverage = np.zeros((height, width), np.float32)
    top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
    coverage[top:top + h, left:left + w] = ink
    paper = rng.uniform(0.40, 0.85)
    dark = rng.uniform(0.02, min(0.30, paper - 0.25))
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    y, x = y / height - 0.5, x / width - 0.5
    angle = rng.uniform(0, 2 * np.pi)
    light = 1 + rng.uniform(-0.35, 0.35) * 2 * (x * np.cos(angle) + y * np.sin(angle))
    light *= 1 - rng.uniform(0, 0.3) * (x ** 2 + y ** 2) * 2  # vignette
    photo = light * (paper * (1 - coverage) + dark * coverage)
    photo += rng.normal(0, rng.uniform(0, 0.05), photo.shape)
    pixels = np.clip(photo * 255 + 0.5, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=int(rng.integers(40, 91)))
    return buffer.getvalue()


def make_photo(kind: str, digit: np.ndarray, label: int, rng: np.random.Generator) -> bytes:
    """A photo of one digit: ``kind`` "mnist" inks the 28x28 ``digit``, "strokes" draws ``label``."""
    width = int(rng.integers(160, 1601))
    height = round(width * rng.uniform(0.6, 1.4))
    digit_height = max(rng.uniform(0.2, 0.8) * min(height, width), 24.0)
    ink = mnist_ink(digit, digit_height, rng) if kind == "mnist" else stroke_ink(label, digit_height, rng)
    return photograph(ink, (height, width), rng)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a model file or run folder")
    parser.add_argument("--set", choices=SETS, default="dev", help="digits to photograph (default: dev, unseen)")
    parser.add_argument("--count", type=int, default=1000, help="how many photos (default 1000)")
    parser.add_argument("--kind", choices=("mnist", "strokes", "both"), default="both")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save-photos", type=Path, metavar="DIR")
    for name in ("dataset", "csv", "images", "labels", "data_dir"):
        parser.add_argument("--" + name.replace("_", "-"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    path = resolve_model_path(args.model)
    model, metadata = load(path), read_metadata(path)
    config = apply_data_options(TrainConfig.from_dict(metadata.get("config", {})), args)
    images, labels, _, description = load_set(config, args.set, progress=False)
    rng = np.random.default_rng(args.seed)
    pick = rng.permutation(len(images))[:args.count]
    images, labels = images[pick], labels[pick].astype(np.intp)
    original = model.predict(scale_pixels(images, model.input_shape))
    print(f"Model: {path} ({model.widths()})")
    print(f"Digits: {len(images):,} of the {description}")
    if args.save_photos:
        args.save_photos.mkdir(parents=True, exist_ok=True)
    kinds = ("mnist", "strokes") if args.kind == "both" else (args.kind,)
    print(f"\n{'photos':<10}{'accuracy':>10}{'28x28 originals':>17}{'agree':>8}{'unread':>8}{'ms/photo':>10}")
    for kind in kinds:
        predicted, seconds = np.full(len(images), -1), []
        for n, (digit, label) in enumerate(zip(images, labels)):
            photo = make_photo(kind, digit, int(label), rng)
            if args.save_photos:
                (args.save_photos / f"{kind}-{n:04d}-label{label}.jpg").write_bytes(photo)
            start = time.perf_counter()
            try:
                x = to_mnist(read_image(photo)).reshape(1, *model.input_shape)
            except ImageError:
                continue
            finally:
                seconds.append(time.perf_counter() - start)
            predicted[n] = int(model.predict(x)[0])
        base = f"{np.mean(original == labels):.4f}" if kind == "mnist" else "-"
        agree = f"{np.mean(original == predicted):.4f}" if kind == "mnist" else "-"
        print(f"{kind:<10}{np.mean(predicted == labels):>10.4f}{base:>17}{agree:>8}"
              f"{np.count_nonzero(predicted < 0):>8}{1000 * statistics.median(seconds):>10.1f}")
        wrong = np.bincount(labels[predicted != labels], minlength=10)
        print(f"{'':<10}errors by true digit: " + " ".join(f"{d}:{c}" for d, c in enumerate(wrong)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
