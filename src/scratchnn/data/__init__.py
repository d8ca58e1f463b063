"""Arrays in, arrays out: IDX and Kaggle CSV files, named datasets, splits and batches.

``load("mnist")``, ``load_csv(path)`` and ``load_idx(images, labels)`` go in one call from a
name or a file to scaled train/dev arrays, split as ``scratchnn train`` splits them.

Images are uint8 (N, H, W) and labels uint8 (N,) until ``scale_pixels`` turns images into
float32 (N, *input_shape) in [0, 1] for a model. NumPy and the standard library only.
"""
from .augment import CLOTHES, DIGITS, Augmentation, augmentation_for
from .idx import read_idx, read_idx_pair, write_idx
from .kaggle_csv import read_kaggle_csv, read_kaggle_test_csv
from .kaggle_write import write_kaggle_csv, write_submission
from .load import DataSource, LabeledImages
from .sources import DATASETS, DatasetSpec, RemoteFile, cache_dir, get_dataset, load_dataset, locate
from .split import batch_indices, scale_pixels, seeded_generators, train_dev_split
from .warp import affine, elastic_field, warp
# NOTE: after ``from .load import ...``: the function ``load`` takes the name of the module data/load.py
# as an attribute of this package (``from scratchnn.data.load import DataSource`` still works).
from .arrays import TrainDev, load, load_csv, load_idx  # noqa: E402

__all__ = [
    "Augmentation", "DIGITS", "CLOTHES", "augmentation_for", "affine", "warp", "elastic_field",
    "read_idx", "write_idx", "read_idx_pair", "read_kaggle_csv", "read_kaggle_test_csv", "write_kaggle_csv",
    "write_submission",
    "DataSource", "LabeledImages", "DATASETS", "DatasetSpec", "RemoteFile", "cache_dir",
    "get_dataset", "load_dataset", "locate", "batch_indices", "scale_pixels", "train_dev_split",
    "seeded_generators", "TrainDev", "load", "load_csv", "load_idx",
]
