"""The Runs tab: the run folders beside the served one, read safely and briefly.

A run is named by its folder's name (``20261203-101500-seed``, ``my run``, ``étude 2``), or, for a
member of an ensemble ``train --seeds`` made or a trial of a sweep, by its path from the runs
folder (``digits-ensemble/seed-1``, ``my-sweep/trials/0042``). Each part is checked by
``is_run_name`` (a letter, digit or _ first, then no path separator: no ``..``, no hidden folder;
printable UTF-8) and the run is looked up among the real (not symlinked) folders where runs are
(``run_parts``), so no request reaches a path outside it. A run whose files include a link
(or a device, a pipe...) is not read at all: a link inside a real folder may still point anywhere.
At most ``MAX_RUNS`` folders are listed (the newest); each file is read through the bounded,
validating readers (``TrainConfig.load`` after a size check, ``doctor.signals``, ``io.read_metadata``),
and what cannot be read is said in the run's ``problem`` (without what the file held) instead of
failing the list. Findings are computed once per health.csv version.
"""
from __future__ import annotations

import logging
import os
import re
import stat
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..doctor import diagnose_run
from ..doctor.signals import HEALTH_FILE, METRICS_FILE, read_metrics_csv
from ..ensemble import SWEEP_FILE, TRIALS_DIR
from ..errors import DataError, ScratchnnError
from ..files import modified_at
from ..io import ENSEMBLE_FILE, MODEL_FILE, json_ready, read_metadata
from ..training.config import CONFIG_FILE, TrainConfig
from ..training.run_health import run_settings
from .train_worker import page_finding, without_folders

log = logging.getLogger("scratchnn.web")

RUN_NAME = re.compile(r"\w[^/\\\x00-\x1f\x7f:]{0,254}" if os.name == "nt" else r"\w[^/\\\x00-\x1f\x7f]{0,254}")
MAX_NAME = 255  # a folder name's bytes on most file systems


def is_run_name(name) -> bool:
    """A name a run folder may have here: ``RUN_NAME`` (no separator, no ``..``, no hidden
    folder; on Windows no drive either), printable (no control or bidi format characters), and
    valid UTF-8 (a folder named in another encoding reaches Python as unencodable surrogates)."""
    if not isinstance(name, str) or not RUN_NAME.fullmatch(name) or not name.isprintable():
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
NESTED = {ENSEMBLE_FILE: (), SWEEP_FILE: (TRIALS_DIR,)}  # a folder holding runs: the parts between it and them
MAX_PARTS = 3  # a sweep's trial: the sweep, trials, the trial
MAX_RUN_PATH = MAX_PARTS * (MAX_NAME + 1)


def run_parts(name) -> list[str] | None:
    """The folder names of run ``name`` from the runs folder (one; or an ensemble's and its member's;
    or a sweep's, ``trials`` and the trial's), each ``is_run_name``; None for any other name."""
    parts = name.split("/") if isinstance(name, str) else []
    if not parts or not all(map(is_run_name, parts)):
        return None
    if len(parts) == 1 or len(parts) == 2 or (len(parts) == MAX_PARTS and parts[1] == TRIALS_DIR):
        return parts
    return None


MAX_RUNS = 100
MAX_POINTS = 2000  # rows of a run's curves sent to the page
RUN_CONFIG = CONFIG_FILE
# The settings a list of runs shows; the full config is in each run's "config".
KEY_SETTINGS = ("conv", "hidden", "activation", "init", "batchnorm", "dropout", "augment", "optimizer", "lr",
                "schedule", "batch_size", "epochs", "fault")
HIDDEN = ("csv_sha256", "images_sha256", "labels_sha256", "data_dir")
RUN_FILES = (RUN_CONFIG, MODEL_FILE, METRICS_FILE, HEALTH_FILE)  # every file the page reads in a run folder


class RunNotFound(ScratchnnError):
    """No run of that name (HTTP 404)."""


class RunFolders:
    """The run folders in ``runs_dir`` (created if missing, on first training)."""

    def __init__(self, runs_dir: Path):
        self.runs_dir = Path(runs_dir)
        self._cache: dict[tuple[str, str], tuple[tuple, object]] = {}  # (what, run) -> (files' version, value)
        self._working: dict[tuple[str, str], threading.Lock] = {}  # (what, run) -> held while it is computed
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        """Every run's name, newest first: the run folders, and the members of ensembles and the
        trials of sweeps in the runs folder (they went unlisted), by when each last wrote its
        metrics.csv (else its config.toml), not the folder's time, which deleting a finished run's
        checkpoint made the newest. A folder that cannot be read, or is deleted meanwhile, is left
        out, not the list (the many-runs audit: one folder of mode 000 emptied it)."""
        entries = []
        for name, path in self._folders(self.runs_dir, ""):
            try:
                if (path / RUN_CONFIG).is_file():
                    entries.append((_last_written(path), name))
                    continue
                for marker, between in NESTED.items():
                    if (path / marker).is_file():
                        inside = path.joinpath(*between)
                        entries += [(_last_written(run), member)
                                    for member, run in self._folders(inside, "/".join([name, *between]) + "/")
                                    if (run / RUN_CONFIG).is_file()]
            except OSError:
                continue
        return [name for _, name in sorted(entries, reverse=True)]

    @staticmethod
    def _folders(folder: Path, prefix: str) -> list[tuple[str, Path]]:
        """(prefix + name, path) of the real folders in ``folder`` with a run's kind of name."""
        try:
            children = list(folder.iterdir())
        except OSError:
            return []
        found = []
        for path in children:
            try:
                if is_run_name(path.name) and not path.is_symlink() and path.is_dir():
                    found.append((prefix + path.name, path))
            except OSError:
                continue
        return found

    def described(self, current: str = "") -> tuple[list[dict], int, int]:
        """(``describe`` of the newest ``MAX_RUNS`` runs, then of the served one, ``current``, if older;
        how many runs there are; how many of the newest are described), less the runs deleted while it
        was worked out (the many-runs audit: one deleted mid-list made the whole list a 404 naming it;
        past 100 the rest went without a word, the served run among them)."""
        names = self.names()
        with self._lock:  # a run deleted since: its cached findings go too (they were kept for good)
            listed = set(names)
            for held in (self._cache, self._working):  # (a lock still held stays with its holder)
                for key in [key for key in held if key[1] not in listed]:
                    del held[key]
        found = []
        for name in names[:MAX_RUNS] + ([current] if current in names[MAX_RUNS:] else []):
            try:
                found.append(self.describe(name))
            except (RunNotFound, FileNotFoundError):
                continue
        newest = len(found) - (current in names[MAX_RUNS:] and bool(found) and found[-1]["name"] == current)
        return found, len(names), newest

    def warm(self) -> None:
        """Work the list out once, ahead of the first page that asks (started in the background when
        the server starts: the many-runs audit, a class's 400 runs took 58 s to list after a restart,
        every run's tables read by the doctor)."""
        try:
            self.described()
        except Exception:  # noqa: BLE001 - whatever fails here is said when a page asks
            log.debug("the runs list could not be worked out ahead", exc_info=True)

    def folder(self, name: str) -> Path:
        """The folder of run ``name``; RunNotFound unless it is one of ``names()``'s kind."""
        parts = run_parts(name)
        if parts is None:
            raise RunNotFound(f"no run named {str(name)[:40]!r}: a run is named by its folder, e.g. "
                              "20261203-101500-seed (an ensemble's member or a sweep's trial by its path: "
                              "ensemble/seed-1, sweep/trials/0042)")
        path, held_by = self.runs_dir.joinpath(*parts), [self.runs_dir]
        for i in range(1, len(parts)):
            held_by.append(self.runs_dir.joinpath(*parts[:i]))
        nested = {1: None, 2: ENSEMBLE_FILE, MAX_PARTS: SWEEP_FILE}[len(parts)]
        if (any(p.is_symlink() for p in held_by[1:]) or not path.is_dir() or path.is_symlink()
                or not (path / RUN_CONFIG).is_file() or (nested and not (held_by[1] / nested).is_file())):
            raise RunNotFound(f"no run named {name!r} in the runs folder; GET /api/runs lists them")
        return path

    def readable(self, name: str) -> Path:
        """``folder(name)``, if the page may read its files; a one-line DataError naming the one it may not."""
        path = self.folder(name)
        refused = refused_file(path)
        if refused:
            raise DataError(refused)
        return path

    def describe(self, name: str) -> dict:
        """One run: preset, key settings, config, dev accuracy, time, whether it has a model, findings."""
        path = self.folder(name)
        entry = {"name": name, "preset": "", "settings": {}, "config": {}, "dev_accuracy": None,
                 "train_seconds": None, "epochs": None, "has_model": (path / MODEL_FILE).is_file(),
                 "findings": [], "problem": refused_file(path)}
        if entry["problem"]:
            return json_ready({**entry, "has_model": False})
        try:
            preset, applicable = self._once("config", path, (path / RUN_CONFIG,), lambda: _settings(path))
            entry.update(preset=preset, config=applicable,
                         settings={k: applicable[k] for k in KEY_SETTINGS if k in applicable})
            if entry["has_model"]:
                model = path / MODEL_FILE  # verified whole (20 ms for cnn-best): once per version of the file
                metrics = self._once("metrics", path, (model,), lambda: read_metadata(model).get("metrics") or {})
                entry.update(dev_accuracy=metrics.get("dev_accuracy"), train_seconds=metrics.get("train_seconds"),
                             epochs=metrics.get("epochs"))
        except (ScratchnnError, OSError, ValueError) as error:
            entry["problem"] = _short(error, path)
        findings = self._diagnosed(path)
        if isinstance(findings, str):
            entry["problem"] = entry["problem"] or findings
        else:
            entry["findings"] = findings
        if not entry["has_model"] and not entry["problem"]:  # else a failed run looks like a healthy one
            diverged = any(f["id"] == "exploding" for f in entry["findings"])
            entry["problem"] = ("no model: training diverged (the loss or the weights became infinite)" if diverged
                                else "no model: still training, or it failed or was stopped before saving one")
        return json_ready(entry)

    def curves(self, name: str) -> list[dict]:
        """metrics.csv of run ``name``: one row per evaluation (epoch, train/dev loss and accuracy),
        at most MAX_POINTS of them, evenly spaced and the last always (the many-runs audit: a run of
        200,000 evaluations sent 28.8 MB for a chart a few hundred pixels wide)."""
        path = self.readable(name) / METRICS_FILE
        if not path.is_file():
            return []
        with reading(path.parent):
            rows = read_metrics_csv(path)
        if len(rows) > MAX_POINTS:  # evenly spaced, the first and the last kept, each once (the review)
            rows = [rows[i] for i in sorted(set(np.linspace(0, len(rows) - 1, MAX_POINTS).round().astype(int)))]
        return json_ready(rows)

    def _diagnosed(self, path: Path) -> list[dict] | str:
        """The doctor's findings on a run (once per version of its tables); a problem as text."""
        health, metrics = path / HEALTH_FILE, path / METRICS_FILE
        if not health.is_file() or not metrics.is_file():
            return []

        def diagnosed() -> list[dict] | str:
            try:  # fitted to the run's settings, as the Train tab and `scratchnn doctor` show them
                return [page_finding(f, self.name_of(path), path) for f in diagnose_run(path, run_settings(path))]
            except (ScratchnnError, OSError, ValueError) as error:
                return f"the doctor cannot read this run: {_short(error, path)}"
        config = path / RUN_CONFIG  # the fixes quote its values
        files = (health, metrics, config) if config.is_file() else (health, metrics)
        return self._once("findings", path, files, diagnosed)

    def name_of(self, path: Path) -> str:
        """Run ``path``'s name: its path from the runs folder (``ensemble/seed-1``), else its folder's name."""
        for inside, runs_dir in ((path, self.runs_dir), (path.resolve(), self.runs_dir.resolve())):
            try:
                return inside.relative_to(runs_dir).as_posix()
            except ValueError:
                continue
        return path.name

    def _once(self, what: str, path: Path, files: tuple[Path, ...], compute):
        """``compute()`` for run ``path``, again only once one of ``files`` changed (time or size):
        the list is asked for by every page that shows it, and most runs are finished."""
        version = tuple((f.stat().st_mtime_ns, f.stat().st_size) for f in files)
        with self._lock:
            working = self._working.setdefault((what, self.name_of(path)), threading.Lock())
        with working:  # one computation for pages asking at once (the many-runs audit: four did it four times)
            with self._lock:
                cached = self._cache.get((what, self.name_of(path)))
            if cached and cached[0] == version:
                return cached[1]
            value = compute()
            with self._lock:
                self._cache[(what, self.name_of(path))] = (version, value)
            return value


def _last_written(run: Path) -> float:
    """When run folder ``run`` last wrote its metrics.csv (its config.toml before its first evaluation)."""
    return modified_at(run / METRICS_FILE if (run / METRICS_FILE).is_file() else run / RUN_CONFIG)


def _settings(path: Path) -> tuple[str, dict]:
    """A run folder's preset and ``public_config`` (its config.toml read bounded: MAX_CONFIG_BYTES)."""
    config = TrainConfig.load(path / RUN_CONFIG)
    return config.preset, public_config(config)


def public_config(config: TrainConfig) -> dict:
    """The settings that apply to ``config``, data files by base name, no digests or folders."""
    applicable = {k: v for k, v in config.shown().items() if k not in HIDDEN}
    for name in ("csv", "images", "labels"):
        if applicable.get(name):
            applicable[name] = Path(applicable[name]).name
    return applicable


def refused_file(folder: Path) -> str:
    """The first of ``RUN_FILES`` in ``folder`` that is there but is a link or not a regular file, as
    the run's one-line problem; '' if none is. Checked before anything is opened."""
    for name in RUN_FILES:
        try:
            mode = (folder / name).lstat().st_mode
        except OSError:  # not there (or not even listable): the reader says so in its own words
            continue
        if not stat.S_ISREG(mode):
            return f"{name} is a link (or not a regular file); the page reads only regular files inside a run folder"
    return ""


@contextmanager
def reading(folder: Path):
    """Turn an error of reading ``folder``'s files into a DataError (422) worded by ``_short``."""
    try:
        yield
    except (ScratchnnError, OSError, ValueError) as error:
        raise DataError(_short(error, folder)) from None


def _short(error: Exception, folder: Path | None = None) -> str:
    """An error as one line, without server folders (files by their name in the run folder) and
    without what a file held: a value, a header or a name read from a file is not repeated, as a
    file of a run folder may hold anything ('header must be ..., got SECRET' -> 'header must be ...')."""
    text = " ".join(str(error).split())
    if folder is not None:
        text = text.replace(f"{folder}{os.sep}", "")
    text = re.sub(r",? got .*", "", text)  # the doctor's and the config's readers end with what they read
    # repr() and JSON quotes; not an apostrophe inside a word ("the model's file doesn't load")
    text = re.sub(r"(?<!\w)'[^']*'(?!\w)|\"(?:[^\"\\]|\\.)*\"", "…", text)
    text = re.sub(r"unknown option\(s\) [^;]*", "unknown option(s)", text)  # names read from the file
    return without_folders(text)[:300]
