"""One call from a dataset name or a file to the arrays a model trains on, split as a run splits.

    x_train, y_train, x_dev, y_dev = scratchnn.data.load("mnist")
    digits = scratchnn.data.load_csv("t10k-kaggle.csv.gz", seed=1)    # digits.x_train (N, 784)

The split is the one ``scratchnn train`` makes with the same ``seed`` and ``dev_size``: the same
generator (``seeded_generators(seed)["split"]``) shuffles the rows, the first ``dev_size`` are
the dev set. So a notebook's dev set is exactly the dev set of a run folder.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .load import DataSource
from .split import scale_pixels, seeded_generators, train_dev_split

DEV_SIZE = 1000  # TrainConfig.dev_size's default: the tutorial holds out 1,000 images


@dataclass(frozen=True, eq=False)
class TrainDev:
    """Scaled pixels and labels of a train/dev split; unpacks as (x_train, y_train, x_dev, y_dev).

    x_train float32 (N, *input_shape) in [0, 1], y_train int (N,); x_dev (M, ...), y_dev (M,);
    ``classes`` names the C classes, ``source`` says where the images came from.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_dev: np.ndarray
    y_dev: np.ndarray
    classes: tuple[str, ...]
    source: str

    def __iter__(self):
        return iter((self.x_train, self.y_train, self.x_dev, self.y_dev))

    def __repr__(self) -> str:
        return (f"TrainDev({self.source}: x_train {self.x_train.shape}, y_train {self.y_train.shape}, "
                f"x_dev {self.x_dev.shape}, y_dev {self.y_dev.shape}, {len(self.classes)} classes)")


def load(name: str = "mnist", *, data_dir=None, dev_size: int = DEV_SIZE, seed: int = 0,
         input_shape=None, download: bool = True, progress: bool = True) -> TrainDev:
    """A named dataset's training images ("mnist", "fashion-mnist", "kmnist", "emnist-letters"...), found as
    ``scratchnn train --dataset NAME`` finds them (``data_dir``, $SCRATCHNN_DATA, the system and
    user caches) or downloaded once, split into train and dev. ``input_shape`` (1, 28, 28)
    feeds a CNN; by default each image is a row of its pixels, (784,) for 28x28."""
    return _split(DataSource(dataset=name, data_dir=_path(data_dir)), dev_size, seed, input_shape,
                  download=download, progress=progress)


def load_csv(path, *, dev_size: int = DEV_SIZE, seed: int = 0, input_shape=None,
             transpose: bool = False) -> TrainDev:
    """A Kaggle-style CSV (``label,pixel0,...,pixel783``, or square images of another side, optionally
    .gz) split into train and dev; ``transpose`` turns each image over its diagonal (``train
    --transpose``: EMNIST's files)."""
    return _split(DataSource(csv=str(path)), dev_size, seed, input_shape, transpose)


def load_idx(images, labels, *, dev_size: int = DEV_SIZE, seed: int = 0, input_shape=None,
             transpose: bool = False) -> TrainDev:
    """An IDX pair (``t10k-images-idx3-ubyte.gz`` + labels) split into train and dev; ``transpose``
    as ``load_csv``'s."""
    return _split(DataSource(images=str(images), labels=str(labels)), dev_size, seed, input_shape, transpose)


def _split(source: DataSource, dev_size: int, seed: int, input_shape, transpose: bool = False, **how) -> TrainDev:
    data = source.load("train", transpose=transpose, **how)
    input_shape = input_shape or (math.prod(data.images.shape[1:]),)  # a row of pixels, of whatever side
    train_images, y_train, dev_images, y_dev = train_dev_split(data.images, data.labels, dev_size,
                                                               seeded_generators(seed)["split"])
    return TrainDev(scale_pixels(train_images, input_shape), y_train.astype(np.intp),
                    scale_pixels(dev_images, input_shape), y_dev.astype(np.intp), data.classes, source.describe())


def _path(value) -> str | None:
    return None if value is None else str(value)
