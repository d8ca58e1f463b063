"""Where the gallery's digits come from: data the operator named, never data a model file names.

A model file's metadata is text anyone can edit: a crafted model saying ``csv = /etc/passwd``
must not make the server read that file, let alone show a line of it. So the gallery reads
only data named on ``scratchnn serve``'s command line, or in the ``config.toml`` that
``scratchnn train`` wrote beside ``model.safetensors`` in the run folder being served. From the
metadata it takes at most the split (seed, dev size): numbers, not paths. Its errors are in its
own words and name files by their base name only; the reader's own message (which may quote a
line of the file) goes to the server's log, for the operator.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..data import DataSource, locate
from ..data.load import FIELDS
from ..ensemble import turned_differently
from ..errors import DataError, ScratchnnError
from ..io import MODEL_FILE
from ..training.config import CONFIG_FILE, TrainConfig
from ..training.run_data import set_key

RUN_CONFIG = CONFIG_FILE
IMAGE_SIDE = 28
log = logging.getLogger("scratchnn.web")


class GalleryUnavailable(ScratchnnError):
    """The gallery cannot show this set with the data the server may read (HTTP 409)."""


class GalleryData:
    """The config whose data the gallery shows (``config``) and the sets it can show (``sets``).

    Built once when the server starts and never raises: what is missing is said on each request.
    """

    def __init__(self, model_path: Path, metadata: dict, data: DataSource | None = None):
        config, self.problem = _trusted_config(Path(model_path), metadata, data)
        self.source = _source(config) if config else None
        if config is not None and self.source is None:
            self.problem = ("the run's data source is not valid; start 'scratchnn serve' with --dataset NAME, "
                            "--csv FILE or --images/--labels")
        self.config = config if self.source is not None else None
        named = self.source is not None and self.source.dataset is not None
        self.sets = ("dev", "test") if named else ("dev",)  # only a named dataset has a test split
        if self.config is not None and not self.config.dev_size:  # --dev-size 0 (the combinations audit:
            self.sets = self.sets[1:]  # /api/model offered dev, and the gallery said there was none)
        self.dev_problem = ""  # why the dev set cannot be shown for every member (check_members)

    def check_members(self, members) -> None:
        """Members must read the gallery's images alike, and hold out the same dev images: the
        gallery feeds each the first member's set (the combinations audit: serve A T, T trained
        with --transpose, counted 156 mistakes where each read its own way makes 131, and members of
        other dev sets were scored on one another's training images), as evaluate refuses."""
        if len(members) > 1 and turned_differently(members):  # its words name paths: the page gets none
            self.config = None
            self.problem = ("the ensemble's members were trained with and without --transpose, so they read the "
                            "same files differently; the gallery shows members trained alike")
        elif len(members) > 1 and len({_dev_split(member.metadata) for member in members}) > 1:
            self.dev_problem = ("the ensemble's members hold out other dev images (other data, seed or dev size), "
                                "so the gallery would score one member's training images; its test set, or "
                                "'scratchnn evaluate' of the members on data none trained on, compares them")

    def describe(self) -> str:
        """The data in one line, files by base name only: 'csv t10k.csv.gz'."""
        source = self.source
        if source is None:
            return "no data"
        if source.dataset is not None:
            return f"dataset {source.dataset}"
        if source.csv is not None:
            return f"csv {Path(source.csv).name}"
        return f"idx {Path(source.images).name} + {Path(source.labels).name}"

    def nothing_to_show(self) -> str:
        """Why no set can be shown ('' when one can): a ``--dev-size 0`` run of a file, which has no
        test split either (the advice audit: set=test was told 'choose dev', set=dev 'no dev set')."""
        if self.config is None or self.config.dev_size or self.sets:
            return ""
        return (f"the run held out no dev images (--dev-size 0) and {self.describe()} has no test split: the "
                "gallery has no set to show (drawing and photos work as ever)")

    def load(self, which: str) -> tuple[np.ndarray, np.ndarray, str]:
        """(images uint8 (N, 28, 28), labels (N,), description) of the ``which`` set; never downloads."""
        from ..training.run_data import load_set

        if self.config is None:
            raise GalleryUnavailable(self.problem)
        if which == "dev" and self.dev_problem:
            raise GalleryUnavailable(self.dev_problem)
        if which == "dev" and not self.config.dev_size:
            raise GalleryUnavailable(self.nothing_to_show() or "the run held out no dev images (--dev-size 0): "
                                     "there is no dev set to show; choose test")
        if which not in self.sets:
            raise GalleryUnavailable(f"{self.describe()} has no separate {which} split; choose one of "
                                     f"{', '.join(self.sets)}")
        self._check_present(which)
        try:
            images, labels, _, _ = load_set(self.config, which, self.source, progress=False, download=False)
        except (ScratchnnError, OSError) as error:
            log.warning("gallery: cannot read the %s set: %s", which, error)
            raise GalleryUnavailable(f"the {which} set of {self.describe()} cannot be read as labelled images; "
                                     f"the server's log says why, or run 'scratchnn evaluate MODEL --set {which}'"
                                     ) from None
        if images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
            raise GalleryUnavailable(f"the {which} set of {self.describe()} holds images of shape "
                                     f"{images.shape[1:]}, not 28x28")
        return images, labels, f"{which} set of {self.describe()}"

    def _check_present(self, which: str) -> None:
        """Name a missing file in our words: the reader's message lists the server's folders."""
        source = self.source
        if source.dataset is not None:
            try:
                locate(source.dataset, "test" if which == "test" else "train", source.data_dir,
                       download=False, progress=False)
            except DataError:
                raise GalleryUnavailable(
                    f"dataset {source.dataset}: the {which} files are not on this machine, and the server "
                    f"never downloads; fetch them once with 'scratchnn evaluate MODEL --set {which}', or start "
                    "'scratchnn serve' with --data-dir DIR") from None
            return
        for path in (source.csv, source.images, source.labels):
            if path is not None and not Path(path).is_file():
                raise GalleryUnavailable(f"data file {Path(path).name} not found; start 'scratchnn serve' with "
                                         "--csv FILE (or --images/--labels, --dataset) to say where it is now")


def _dev_split(metadata: dict) -> tuple:
    """run_data.set_key of a run's dev set, from its metadata's config (one it cannot read: a key of
    its own, so the member is not taken to share the others' images)."""
    try:
        return set_key(TrainConfig.from_dict(metadata.get("config") or {}, source="the model's metadata"), "dev")
    except (ScratchnnError, TypeError, AttributeError):
        return ("unreadable", id(metadata))


def _trusted_config(model_path: Path, metadata: dict, data: DataSource | None) -> tuple[TrainConfig | None, str]:
    """(config, "") from the command line's ``data`` or the run folder's config.toml; (None, why) otherwise."""
    run_config = model_path.parent / RUN_CONFIG
    in_run_folder = model_path.name == MODEL_FILE and run_config.is_file()
    try:
        if in_run_folder:
            config = TrainConfig.load(run_config)
        elif data is not None and metadata.get("config"):  # the split only: its paths are cleared below
            config = TrainConfig.from_dict(metadata["config"], source="the model's metadata")
        else:
            config = TrainConfig()
    except ScratchnnError as error:
        if in_run_folder:  # the reason may quote the file: the operator's log has it, the page a pointer
            log.warning("the gallery cannot read %s: %s", run_config, error)
            return None, (f"the run's {RUN_CONFIG} cannot be read, so the gallery cannot rebuild its dev split; "
                          "the server's log says why")
        return None, "the model's training config is not valid, so the gallery cannot rebuild its dev split"
    if data is not None:  # the server's data in place of the run's (a named dataset drops --transpose)
        from ..training.run_data import with_data

        config = with_data(config, {name: getattr(data, name) or "" for name in FIELDS})
    elif not in_run_folder:
        return None, ("this model file is not in a run folder, and the server reads no data a model file names: "
                      "start 'scratchnn serve' with --dataset NAME, --csv FILE or --images/--labels, or serve "
                      "the run folder 'scratchnn train' wrote")
    return config, ""


def _source(config: TrainConfig) -> DataSource | None:
    from ..training.run_data import data_source

    try:
        return data_source(config)
    except ScratchnnError:
        return None
