"""What the page shows, in NumPy: one 28x28 image through the network, layer by layer.

``ModelService`` loads a model once and answers the three questions the page asks: what does
the network make of this image (probabilities and every hidden layer's activations), what is
this model (summary, metrics, training config), and which dev/test digits does it get wrong.
No web framework here, so the numbers can be tested on their own.

Given several models (or a folder of member runs) it serves their ensemble: probabilities and
the gallery's mistakes are the members' average, while the layer-by-layer activations, the
summary and the gallery's data are the first member's (one network's layers can be drawn; an
average of different networks' hidden units means nothing). Both answers say so.
"""
from __future__ import annotations

import threading
from os import PathLike
from pathlib import Path

import numpy as np

from ..data import DataSource
from ..data.augment import Augmentation
from ..data.load import FIELDS
from ..data.tta import check_tta
from ..errors import ConfigError, ModelFileError, ScratchnnError, ShapeError
from ..ensemble import load_ensemble
from ..files import modified_at
from ..io import MODEL_FILE, read_metadata
from ..nn.activations import Activation, softmax
from ..training.run_data import not_28x28
from .gallery import IMAGE_SIDE, GalleryData

# Hidden activations are the outputs of these layers (what a unit "fires"); pre-activations,
# dropout (the identity at inference) and the logits are left out.
ACTIVATION_LAYERS = Activation
MAX_MAPS = 16  # feature maps sent per convolutional layer, so a response stays small
MAX_MAP_SIDE = 14  # larger maps are average-pooled down to at most this many pixels a side


class ModelService:
    """A loaded model and what the page asks of it. Thread-safe: layers cache their inputs
    on forward (the fast path's layers are the model's, wrapped), so one lock serialises passes
    through the shared layer objects."""

    def __init__(self, model_path, data: DataSource | None = None, tta: int = 1, fast: bool = True):
        self.tta = check_tta(tta)  # before the models load: a typo costs nothing
        paths = [model_path] if isinstance(model_path, (str, PathLike)) else list(model_path)
        self.ensemble = load_ensemble(paths, fast=fast)
        first = self.ensemble.members[0]
        self.path, self.model, self.metadata = first.path, first.model, first.metadata
        self.gallery = GalleryData(self.path, self.metadata, data)
        self.gallery.check_members(self.ensemble.members)
        self.classes = self.ensemble.classes
        self.members = [_public_name(member.path) for member in self.ensemble.members]
        if reads := not_28x28(self.ensemble.image_shape, self.model.input_shape):  # 16x49 is no drawing
            raise ShapeError(f"{self.path}: the page feeds 28x28 images, but the model reads {reads}; serve a "
                             "model trained on 28x28 digits")
        self._model_lock = threading.Lock()
        self._data_lock = threading.Lock()
        self._sets: dict[str, tuple] = {}

    @property
    def fast(self) -> bool:
        """Probabilities on the fast path's layers (the ensemble's); the activations are always the textbook's."""
        return self.ensemble.fast

    # --- one image ------------------------------------------------------------------------------
    def predict(self, image: np.ndarray) -> dict:
        """Probabilities (C,) and hidden activations for one image (28, 28), 0..1, light ink.

        Walks ``model.forward_steps`` (evaluation mode) to keep each activation layer's
        output: 1-D outputs as ``values``, (C, H, W) outputs as per-channel ``maps``. For an
        ensemble the probabilities are the members' mean, the activations the first member's;
        with TTA the probabilities average the views too. The walk is the textbook model's (the
        layers a learner reads); the other members and the views run on ``self.ensemble``'s nets.
        """
        image = np.asarray(image, np.float32)
        if image.shape != (IMAGE_SIDE, IMAGE_SIDE):
            raise ShapeError(f"expected a 28x28 image, got shape {image.shape}")
        x = x_in = image.reshape(1, *self.model.input_shape).astype(self.model.dtype)
        activations = []
        with self._model_lock:
            last = len(self.model.layers) - 1
            for i, layer, x in self.model.forward_steps(x):
                if isinstance(layer, ACTIVATION_LAYERS) and i < last:
                    activations.append(_describe_activation(i, layer, x[0]))
            probs = softmax(x.astype(np.float64))[0]
            if self.tta > 1 or len(self.ensemble) > 1:  # every member (each in its own input shape), every view
                probs = self.ensemble.predict_proba(x_in, tta=self.tta)[0].astype(np.float64)
        best = int(np.argmax(probs))
        return {"prediction": best, "label": self.classes[best], "probabilities": probs.tolist(),
                "input": _rounded(image, 3), "activations": activations,
                "members": len(self.ensemble), "activations_from": self.members[0], "tta": self.tta,
                "model": self.name}

    def read_number(self, digits: list[np.ndarray]) -> tuple[str, list[float]]:
        """Each (28, 28) digit's label, joined left to right, and its probability: a number."""
        x = np.stack(digits).reshape(len(digits), *self.model.input_shape).astype(self.model.dtype)
        with self._model_lock:
            probs = self.ensemble.predict_proba(x, tta=self.tta)
        best = probs.argmax(axis=1)
        labels = [self.classes[i] for i in best]
        return ("" if all(len(label) == 1 for label in labels) else " ").join(labels), \
            [float(probs[k, i]) for k, i in enumerate(best)]

    # --- the model ------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The served model's name: its run folder's, or the model file's without .safetensors."""
        return self.path.parent.name if self.path.name == MODEL_FILE else self.path.stem

    def summary(self) -> dict:
        """Layers, parameter counts, metrics and training config, as JSON-ready data.

        Files are named relative to the run folder (or by their base name): where the server
        keeps its files is none of a visitor's business.
        """
        model = self.model
        layers = [{"index": i, "type": type(layer).__name__, "description": repr(layer),
                   "output_shape": list(shape), "parameters": int(sum(p.size for p in layer.params.values()))}
                  for i, (layer, shape) in enumerate(zip(model.layers, model.output_shapes()))]
        run = self.name
        config = dict(self.metadata.get("config") or {})
        for name in FIELDS:  # data paths as base names ("dataset" is a name already)
            if isinstance(config.get(name), str) and config[name]:
                config[name] = Path(config[name]).name
        if isinstance(config.get("augmentation"), dict):  # an empty table too: it reads 'nothing'
            config["augmentation"] = Augmentation.text_of(config["augmentation"])
        return {"name": run, "path": self.path.name, "input_shape": list(model.input_shape),
                "num_parameters": int(model.num_parameters), "classes": self.classes,
                "architecture": model.widths(), "summary": model.summary(), "layers": layers,
                "metrics": self.metadata.get("metrics") or {}, "config": config,
                "created": str(self.metadata.get("created", "")), "gallery_sets": list(self.gallery.sets),
                "members": self.members, "tta": self.tta}

    # --- the gallery ----------------------------------------------------------------------------
    def mistakes(self, which: str, n: int, seed: int) -> dict:
        """``n`` random images of the run's ``which`` set that the model gets wrong.

        The set is loaded and predicted once, then cached; ``seed`` picks the sample, so the
        same seed shows the same digits.
        """
        images, labels, predicted, confidence, description = self._evaluated(which)
        wrong = np.flatnonzero(predicted != labels)
        rng = np.random.default_rng(seed)
        picked = rng.choice(wrong, size=min(n, len(wrong)), replace=False) if len(wrong) else wrong
        items = [{"index": int(i), "label": int(labels[i]), "prediction": int(predicted[i]),
                  "confidence": float(confidence[i]), "pixels": images[i].tolist()} for i in picked]
        return {"set": which, "description": description, "size": int(len(labels)),
                "mistakes": int(len(wrong)), "seed": int(seed), "items": items}

    def _evaluated(self, which: str) -> tuple:
        if which not in ("dev", "test"):
            raise ConfigError(f"unknown set {which!r}; choose dev or test")
        with self._data_lock:  # one load per set, however many requests arrive at once
            if which not in self._sets:
                self._sets[which] = self._load_and_predict(which)
        return self._sets[which]

    def _load_and_predict(self, which: str) -> tuple:
        from ..data import scale_pixels

        # NOTE: never a download inside a request: the page must work offline, and fast
        images, labels, description = self.gallery.load(which)
        x = scale_pixels(images, self.model.input_shape)
        parts = []
        for start in range(0, len(x), 256):  # lock per chunk: drawings keep their answers flowing meanwhile
            with self._model_lock:
                parts.append(self.ensemble.predict_proba(x[start:start + 256], tta=self.tta))
        probs = np.concatenate(parts) if parts else np.zeros((0, self.model.num_classes))
        predicted = probs.argmax(axis=1)
        return images, labels.astype(np.intp), predicted, probs.max(axis=1), description


def _public_name(path: Path) -> str:
    """A member as a visitor may see it: its run folder's name (or the file's), no server path."""
    return path.parent.name if path.name == MODEL_FILE else path.name


def _describe_activation(index: int, layer, out: np.ndarray) -> dict:
    """One sample's activation (D,) or (C, H, W) as JSON-ready data; maps limited in number and size."""
    entry = {"index": index, "name": type(layer).__name__, "shape": list(out.shape), "values": None, "maps": None}
    if out.ndim == 3:
        entry["maps"] = [_rounded(_pool_to(channel, MAX_MAP_SIDE), 4) for channel in out[:MAX_MAPS]]
    else:
        entry["values"] = _rounded(out.reshape(-1), 4)
    return entry


def _rounded(values: np.ndarray, decimals: int) -> list:
    """JSON-ready values to ``decimals`` places. Rounded in float64: a float32 0.1671 turns into
    the Python float 0.1670999974012375, and a CNN's answer was twice the size for such digits."""
    return np.round(np.asarray(values, np.float64), decimals).tolist()


def _pool_to(image: np.ndarray, side: int) -> np.ndarray:
    """Average-pool an (H, W) map by a whole factor k = ceil(max(H, W) / side) (edges padded)."""
    k = -(-max(image.shape) // side)
    if k <= 1:
        return image
    h, w = -(-image.shape[0] // k) * k, -(-image.shape[1] // k) * k
    padded = np.pad(image, ((0, h - image.shape[0]), (0, w - image.shape[1])), mode="edge")
    return padded.reshape(h // k, k, w // k, k).mean(axis=(1, 3))


def newest_model(runs_dir: Path, log=None) -> Path:
    """The most recently written ``runs_dir/*/model.safetensors`` (by modification time) that reads
    whole; ``log`` hears of a newer one that does not (the many-runs audit: one empty file, or a
    folder of that name, kept the server from starting beside good runs)."""
    candidates = []
    for path in Path(runs_dir).glob(f"*/{MODEL_FILE}"):
        try:
            candidates.append((modified_at(path), path))
        except OSError:  # gone meanwhile
            continue
    for _, path in sorted(candidates, reverse=True):
        try:
            read_metadata(path)
            return path
        except (ScratchnnError, OSError) as error:
            if log is not None:
                log(f"Note: skipping {path}: {error}")
    raise ModelFileError(f"no trained model under {runs_dir}/{' that can be read' if candidates else ''}; train one "
                         "with 'scratchnn train' or pass MODEL (a model file or a run folder)")
