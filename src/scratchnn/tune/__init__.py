"""Finding good settings by itself: the learning-rate range test and hyperparameter sweeps.

``lr_find`` needs NumPy only; ``sweep`` runs an Optuna study whose trials are ordinary run
folders, in parallel through Dask (the ``tune`` extra: ``pip install 'scratchnn[tune]'``).
"""
from .lr_find import LRFindResult, lr_find

__all__ = ["LRFindResult", "lr_find"]
