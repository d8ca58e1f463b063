"""Figures drawn with matplotlib's object API (no pyplot: no global state, works headless).

Every function takes plain arrays and values and returns a ``matplotlib.figure.Figure``;
``save_figure`` writes one to a file and ``figure_png`` renders one to PNG bytes. It sits low in
the package (it needs only errors, files, metrics and the doctor's limits), so training's
``History.plot()``, lr-find's ``plot()``, the report and the CLI all reach it by importing down.

    training_curves(rows)                               loss, accuracy and learning rate per epoch
    confusion_figure(matrix, classes)                   heatmap of the (C, C) counts
    per_class_accuracy_figure(matrix, classes)          recall of each class as bars
    mistakes_gallery(images, labels, probs, classes)    the most confident wrong predictions
    prediction_sheet(images, probs, classes, labels)    the seed's test_prediction for a grid
    prediction_figure(image, probs, classes, label)     the seed's test_prediction for one image
    augmentation_gallery(originals, copies, names, title)   images beside the augmented copies trained on
    first_layer_figure(model)                           first-layer weights drawn as images
    lr_find_figure(lrs, losses, smoothed, steepest, min_over_10)   the learning-rate range test
    gradient_figure(health_rows)                        gradient RMS and update ratio per layer over time
    units_figure(health_rows)                           dead and saturated units per activation layer

In a Jupyter kernel, importing this package makes a Figure that a cell returns display as the
picture, with no ``%matplotlib inline`` needed.
"""
import sys

try:  # the plots extra: a predicting-only install goes without matplotlib's ~80 MB
    import matplotlib.figure  # noqa: F401  (loads its compiled parts: a build for another NumPy fails here)
except ImportError as error:
    import importlib.util

    from ..errors import MissingExtra

    if importlib.util.find_spec("matplotlib") is None:
        raise MissingExtra("figures need matplotlib, which is not installed: pip install 'scratchnn[plots]' "
                           "(from a checkout: pip install '.[plots]')") from None
    raise MissingExtra(f"figures need matplotlib, which is installed but cannot be imported ({error}); "
                       "a build older than 3.8.4 with NumPy 2 does this: pip install 'matplotlib>=3.8.4'") from None

from .classes import confusion_figure, per_class_accuracy_figure
from .common import figure_png, save_figure
from .curves import training_curves
from .gallery import augmentation_gallery, mistakes_gallery, prediction_figure, prediction_sheet
from .health import gradient_figure, units_figure
from .lr_find import lr_find_figure
from .weights import first_layer_figure

__all__ = ["augmentation_gallery", "confusion_figure", "figure_png", "first_layer_figure", "gradient_figure",
           "lr_find_figure", "mistakes_gallery", "per_class_accuracy_figure", "prediction_figure", "prediction_sheet",
           "save_figure", "training_curves", "units_figure"]

if "ipykernel" in sys.modules:
    try:
        import matplotlib_inline.backend_inline  # noqa: F401  (importing it registers the inline display)
    except ImportError:  # a kernel without it shows '<Figure ...>', as matplotlib itself would
        pass
