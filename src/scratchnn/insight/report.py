"""One self-contained HTML report per run: the figures as PNG files and a page that embeds them.

``write_report(run_dir)`` reads a run folder (``model.safetensors``, ``metrics.csv``), predicts the
chosen set (the run's dev split by default), draws every figure of ``scratchnn.plots``, writes
each as ``<name>.png`` and ``report.html`` beside them. The page has no external reference at
all (images are ``data:`` URIs, CSS is inline) so it opens offline and can be mailed as one
file; every string that comes from the run is HTML-escaped.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..data import scale_pixels
from ..data.augment import Augmentation, unrecorded
from ..ensemble import check_finished
from ..errors import ConfigError, DataError, ScratchnnError, ShapeError, names_in_message, readable, shell_word
from ..fast import inference_net
from ..doctor.signals import read_metrics_csv
from ..files import atomic_write_bytes, read_at_most, why_unreadable
from ..io import MODEL_FILE, folder_to_resume, load, read_metadata, runs_inside
from ..metrics import confusion_matrix
from ..training.config import CONFIG_FILE, TrainConfig
from ..training.run import METRICS_FILE, REPORT_FIGURES, REPORT_FILE, STALE_TEMP, sweep_temp_files
from ..training.run_data import SETS, load_set, recorded_config, with_data
from ..training.run_health import run_settings
from .report_health import HEALTH_FIGURES, health_figures, health_html, read_health
from .report_page import ReportFigure, figure_html, render_page

MAX_PAGE_BYTES = 64 * 2**20  # report.html is read back only for its figure names (a page is ~1 MB)
DPI = 150  # PNG pixels per inch; the page shows figures at 96 CSS px per inch, crisp on HiDPI too

FIGURE_NAMES = REPORT_FIGURES
assert set(HEALTH_FIGURES) <= set(FIGURE_NAMES)


def write_report(run_dir, *, which: str = "dev", data: dict | None = None,
                 log: Callable[[str], None] = print) -> Path:
    """Write the figures (PNG) and ``report.html`` into ``run_dir``; return the page's path.

    ``which`` set picks the images the confusion matrix, per-class accuracy, mistakes and prediction
    sheet are measured on: "dev" (the run's own split), "test", "train" or "all", of the run's own
    data or of ``data`` ({option: value}, as ``--csv`` gives: where the data is now). What cannot be
    drawn (no metrics.csv, data no longer found) is said on the page instead; its PNG from an earlier
    report is kept, and a note says so. An existing report.html is never replaced by one with fewer
    figures: that is a ConfigError giving the reason, and nothing is written (delete report.html to
    accept the smaller one). A folder that cannot be written to is refused first."""
    from .. import plots  # matplotlib only when a report is drawn

    if which not in SETS:
        raise ConfigError(f"unknown set {which!r}; choose one of {', '.join(SETS)}")
    run_dir = Path(run_dir)
    if run_dir.is_dir() and not os.access(run_dir, os.W_OK):  # before minutes of drawing (the plots audit)
        copy, run = (shell_word(path) for path in (Path(tempfile.gettempdir()) / run_dir.resolve().name, run_dir))
        raise ConfigError(f"{run_dir}: the run folder cannot be written to (read-only, or not yours), and the report "
                          f"is drawn into it; report a copy: cp -r {run} {copy} && scratchnn report {copy}")
    if run_dir.is_dir() and not (run_dir / MODEL_FILE).exists() and (run_dir / METRICS_FILE).is_file():
        _refuse_unfinished(run_dir)
    sweep_temp_files(run_dir, older_than=STALE_TEMP)  # what a killed report (or run) left half-written
    model, metadata, config = _load_run(run_dir)
    config = with_data(config, data or {})  # no data flags: the run's own data
    notes: list[str] = []
    rows = read_metrics(run_dir / METRICS_FILE, notes)
    step = config.step_name
    figures: list[ReportFigure] = []
    health_section: list[ReportFigure] = []  # drawn in the page's Health section, not under Figures

    def add(name: str, title: str, caption: str, fig, into: list[ReportFigure] = figures) -> None:
        into.append(ReportFigure(name, title, caption, plots.figure_png(fig, DPI), tuple(fig.get_size_inches())))

    if rows:
        add("training_curves", "Training curves", f"Loss, accuracy and learning rate at each of the {len(rows)} "
            f"evaluation{'s' * (len(rows) != 1)}. {_train_figures(config)}", plots.training_curves(rows, step))
    augmentation, augmentation_text = trained_augmentation(metadata, config, notes)
    predicted = _predict(model, metadata, config, which, notes)
    if predicted is not None:
        images, labels, probs, classes, description = predicted
        matrix = confusion_matrix(labels, probs.argmax(axis=1), len(classes))
        on = f"on the {description} ({len(labels):,} images)"
        add("confusion_matrix", "Confusion matrix", f"Counts {on}: rows are the true class, columns the predicted "
            "one; the colour is the share of the true class, so the diagonal is each class's accuracy.",
            plots.confusion_figure(matrix, classes))
        add("per_class_accuracy", "Accuracy per class", f"Share of each class's images predicted correctly {on}.",
            plots.per_class_accuracy_figure(matrix, classes))
        add("mistakes", "Most confident mistakes", f"Wrong predictions {on} made with the highest probability: "
            "often ambiguous or mislabelled images, or two classes the model mixes up.",
            plots.mistakes_gallery(images, labels, probs, classes))
        add("predictions", "Prediction sheet", f"The first images {on} with the predicted class, its probability "
            "and the true label (the seed's test_prediction, many at once).",
            plots.prediction_sheet(images, probs, classes, labels))
        if augmentation is not None and not augmentation.is_identity:
            originals, copies, names = augmented(images, labels, classes, augmentation, config.seed)
            add("augmentation", "Augmented training images", f"One image of the {description} for "
                f"{rows_shown(len(names), len(classes), len(np.unique(labels)))} "
                f"(framed), then copies of it as training drew its images: {augmentation.describe()}. What the "
                "network learned from: copies that no longer look like their class teach it little (evaluation "
                "and prediction read images as they are).",
                plots.augmentation_gallery(originals, copies, names, "The training augmentation"))
    try:
        add("first_layer", "First-layer weights", "What the first layer looks for: each tile holds the weights into "
            "one unit (or one kernel), in order from the top left; red where a bright pixel excites it, blue where "
            "it inhibits it.",
            plots.first_layer_figure(model, image_shape=metadata.get("image_shape")))
    except ShapeError as error:
        notes.append(f"No first-layer figure: {error}.")
    health = read_health(run_dir, notes, run_settings(run_dir, notes))
    for figure in health_figures(health, step):
        add(*figure, into=health_section)
    drawn = figures + health_section
    _refuse_to_degrade(run_dir / REPORT_FILE, {figure.name for figure in drawn}, notes)
    for figure in drawn:
        atomic_write_bytes(run_dir / f"{figure.name}.png", figure.png)
    kept = [f"{name}.png" for name in sorted(set(FIGURE_NAMES) - {f.name for f in drawn})
            if (run_dir / f"{name}.png").is_file()]  # an earlier report's (the plots audit: they were deleted)
    notes += [f"{', '.join(kept)} in the folder {'are' if len(kept) > 1 else 'is'} from an earlier report and could "
              "not be drawn now; not on this page, and kept."] if kept else []
    page = render_page(run_dir, model, metadata, config, rows, figures, notes, predicted, which,
                       health_html(health, "".join(figure_html(f) for f in health_section), step),
                       augmentation_text)
    page = readable(page).encode("utf-8")  # a folder named in Latin-1: its byte as \xe9
    path = atomic_write_bytes(run_dir / REPORT_FILE, page)
    for note in notes:
        log(f"Note: {note}")
    log(f"Report: {path} ({len(drawn)} figures: {', '.join(f.name + '.png' for f in drawn)})")
    return path


COPIES = 7  # augmented copies of each image in the report's figure


def trained_augmentation(metadata: dict, config: TrainConfig, notes: list[str]) -> tuple[Augmentation | None, str]:
    """(the augmentation the run trained with, the summary's words for it; '' for none): as its
    model file records it, or for a run from before runs recorded it, what such a run drew
    (augment.unrecorded); None, with a note, for a record that cannot be read (the rest of the
    report is drawn). The summary once read the record itself, and had no row for an older run."""
    try:
        if "augmentation" in metadata:
            augmentation = Augmentation.from_record(metadata["augmentation"])
            return augmentation, augmentation.describe() if augmentation is not None else ""
        augmentation = unrecorded(config.build_augmentation())
    except ConfigError as error:
        notes.append(f"No augmentation figure: the model file's augmentation cannot be read ({error}).")
        return None, f"not readable ({error})"
    if augmentation is None:
        return None, ""
    return augmentation, (f"{augmentation.describe()} (not recorded in the model file: what scratchnn "
                          f"{metadata.get('scratchnn_version', '?')}, which trained it, drew)")


def rows_shown(rows: int, classes: int, held: int) -> str:
    """Which classes the augmentation figure's ``rows`` show, of the model's ``classes`` and those
    the set ``held`` (a class it lacks has no row; the review: "the first 9" of a set without a 5).

    >>> rows_shown(10, 10, 10), rows_shown(9, 10, 9), rows_shown(10, 47, 47)
    ('each class', 'each of the 9 classes it holds', 'each of the first 10 of the 47 classes it holds')
    """
    return ("each class" if rows == classes else f"each of the {held} classes it holds" if rows == held
            else f"each of the first {rows} of the {held} classes it holds")


def augmented(images: np.ndarray, labels: np.ndarray, classes, augmentation: Augmentation, seed: int,
              most: int = 10) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(originals (K, H, W), copies (K, COPIES, H, W), their class names): the first image of each
    of the first ``most`` classes the images hold, scaled to 0..1, and copies drawn by
    ``augmentation`` as training draws a batch (from ``seed``: the same figure every time)."""
    first = [int(np.flatnonzero(labels == k)[0]) for k in range(len(classes)) if np.any(labels == k)][:most]
    originals = np.asarray(images)[first].astype(np.float32) / np.float32(255)
    rng = np.random.default_rng(seed)
    copies = np.stack([augmentation(originals, rng) for _ in range(COPIES)], axis=1)
    return originals, copies, [str(classes[labels[i]]) for i in first]


def _refuse_unfinished(run_dir: Path) -> None:
    """A run without a model (it diverged, --doctor strict stopped it, or it was interrupted) has
    no page, but its tables still draw what a learner needs most then: the training curves and
    the health figures. Drawn, then a ConfigError naming them, the doctor's first finding and
    what to do next."""
    from .. import plots

    notes: list[str] = []
    settings = run_settings(run_dir)
    try:  # a run with --fault has no settings (the doctor is not told), yet counts its steps the same
        config = TrainConfig.load(run_dir / CONFIG_FILE)
        step, strict = config.step_name, config.doctor == "strict"
    except (OSError, ScratchnnError):
        step, strict = "epoch", False
    rows = read_metrics(run_dir / METRICS_FILE, notes)
    drawn = [("training_curves", plots.training_curves(rows, step))] if rows else []
    health = read_health(run_dir, notes, settings)
    drawn += [(name, figure) for name, _, _, figure in health_figures(health, step)]
    for name, figure in drawn:
        atomic_write_bytes(run_dir / f"{name}.png", plots.figure_png(figure, DPI))
    first = next((f for f in health.findings or [] if f.severity != "advice"), None)
    diverged = first is not None and any(f.id == "exploding" for f in health.findings)
    stopped = first is not None and first.severity == "error" and strict  # a --fault run's too (it has no settings)
    names = ", ".join(name + ".png" for name, _ in drawn)
    drew = f"drew {names} from its tables instead" if drawn else "nothing to draw"
    found = f"; the doctor's first finding: [{first.id}] (scratchnn doctor {shell_word(run_dir)})" if first else ""
    resume = f"scratchnn train --resume {shell_word(folder_to_resume(run_dir))}"  # a member's: its ensemble's
    then = ("resuming would diverge again: change what the doctor names and train anew" if diverged else
            "--doctor strict stopped it, and would again: change what the doctor names and train anew" if stopped else
            f"if it was interrupted, complete it with '{resume}'")
    raise ConfigError(f"{run_dir}: the run has no {MODEL_FILE}, so no report page; {drew}{found}; {then}")


def figures_in_report(path: Path) -> set[str]:
    """The figure names a report page written by ``write_report`` embeds (none if there is no page)."""
    try:
        text = read_at_most(path, MAX_PAGE_BYTES).decode("utf-8", errors="replace")
    except FileNotFoundError:
        return set()
    except OSError as error:  # a folder, a pipe: not a page this command wrote
        raise ConfigError(f"{path}: {why_unreadable(error)}; remove it, and the report is drawn anew") from None
    return {name for name in FIGURE_NAMES if f"<figure id='{name}'>" in text}


def _refuse_to_degrade(path: Path, drawn: set[str], notes: list[str]) -> None:
    """A ConfigError, before anything is written, if the page at ``path`` has figures not in ``drawn``."""
    lost = sorted(figures_in_report(path) - drawn)
    if lost:
        why = " ".join(notes) or "no reason was given"
        raise ConfigError(f"{path} was left as it was: it has {', '.join(lost)}, which cannot be drawn now "
                          f"({why.rstrip('.')}); fix that, or delete {path.name} to write a report without them")


def _train_figures(config: TrainConfig) -> str:
    """What the train curve measures, which differs between full-batch and mini-batch runs."""
    if not config.batch_size:
        return ("Train figures are measured on the whole training set by the forward pass of that iteration, "
                "just before its update; dev figures after the update.")
    dropout = ", with dropout" if config.dropout or config.input_dropout else ""
    return (f"Train figures average the epoch's mini-batches as they were seen (each before its update{dropout}); "
            "dev figures are measured after the epoch.")


def _load_run(run_dir: Path):
    """(model, metadata, config) of a finished run, or a ConfigError saying what is missing."""
    if run_dir.is_file():  # the advice audit: run/model.safetensors was "no such folder"
        raise ConfigError(f"{run_dir} is a file; give the run folder that holds it ({run_dir.parent})")
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: no such folder; give a run folder made by 'scratchnn train' (runs/<name>/)")
    check_finished(run_dir)  # a run without its model yet: how to finish it
    if not (run_dir / MODEL_FILE).is_file():
        members = runs_inside(run_dir)
        if members:  # train --seeds: each member has its own report
            raise ConfigError(f"{run_dir} holds the runs {names_in_message(members, most=4)} "
                              f"(train --seeds); report each: scratchnn report {shell_word(run_dir / members[0])}")
        raise ConfigError(f"{run_dir}: not a run folder (no {MODEL_FILE}); give a folder made by 'scratchnn train'")
    model, metadata = load(run_dir), read_metadata(run_dir)
    if "config" not in metadata:
        raise ConfigError(f"{run_dir / MODEL_FILE}: no training config in its metadata; a report needs a run "
                          "folder made by 'scratchnn train'")
    return model, metadata, recorded_config(metadata["config"], run_dir / MODEL_FILE, print)


def read_metrics(path: Path, notes: list[str]) -> list[dict[str, float]]:
    """The rows of metrics.csv, as the doctor reads them (bounded, checked); a note (and no rows)
    when it is missing or unreadable."""
    if not path.exists() and not path.is_symlink():
        notes.append(f"No {path.name} in this run, so there are no training curves.")
        return []
    try:
        rows = read_metrics_csv(path)
    except DataError as error:
        notes.append(f"No training curves: {str(error).replace(str(path), path.name)}.")
        return []
    if not rows:
        notes.append(f"{path.name} has no rows (no evaluation finished), so there are no training curves.")
    elif len(rows) == 1:
        notes.append(f"{path.name} has a single evaluation: the training curves are one point each.")
    return rows


def _predict(model, metadata: dict, config: TrainConfig, which: str, notes: list[str]):
    """(images (N, H, W), labels (N,), probs (N, C), classes, description) or None with a note."""
    if which == "dev" and not config.dev_size:  # load_set's words name evaluate's choices, not this page's
        notes.append("The run held out no dev images (--dev-size 0), so figures that need predictions are left "
                     "out; 'scratchnn report RUN --set train' draws them on the images it trained on.")
        return None
    try:
        images, labels, classes, description = load_set(config, which, progress=False, model=model,
                                                        metadata=metadata)
    except (DataError, ConfigError) as error:
        notes.append(f"The {which} images could not be loaded ({error}); figures that need them are left out.")
        return None
    if len(classes) != model.num_classes:
        notes.append(f"The data has {len(classes)} classes but the model predicts {model.num_classes}; "
                     "figures that need predictions are left out.")
        return None
    if len(labels) == 0:
        notes.append(f"The {description} is empty; figures that need predictions are left out.")
        return None
    probs = inference_net(model).predict_proba(scale_pixels(images, model.input_shape))  # the fast path's layers
    return images, labels.astype(np.intp), probs, list(classes), description
