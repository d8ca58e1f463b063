"""The training process behind the page's Train tab: ``train_run`` with its live hooks, in words
the page can draw (events on a multiprocessing queue).

The server starts ``run_worker`` in a *spawned* process (never in a request's thread): the
training has its own interpreter, its own BLAS threads (limited to ``BLAS_THREADS``, so the
server's predictions keep a core) and its own memory; a crash there is an ``error`` event, not
a dead server. A finished (or stopped) run's folder gets its figures and report.html, as
``scratchnn train`` leaves it, before the ``done`` event. Events are plain dicts, JSON-ready
(NaN becomes None):

    {"type": "log", "line": "Data: csv ... (1,000 train / 1,000 dev)"}
    {"type": "note", "text": "--momentum 0.9 does nothing here; it applies only to ..."} (a "Note: " line)
    {"type": "setup", "model": "784 -> 10 -> 10", "parameters": 7960, "dev_samples": 1000,
     "classes": 10, "class_names": ["0", ..., "9"]}
    {"type": "batch", "epoch": 3, "batch": 1, "batches": 1, "loss": 2.1, "accuracy": 0.2, "seconds": 0.4}
    {"type": "evaluation", "epoch": 10, "train_loss": ..., "dev_accuracy": ..., "lr": 0.1,
     "confusion": [[...], ...] (C, C) or None, "weights": {...} or None}
    {"type": "finding", "id": "dead-relu", "severity": "warning", "message": ..., "explanation": ..., "fix": ...}
    {"type": "done", "model_path": ".../model.safetensors", "metrics": {...}, "stopped": "asked" | "time" | "",
     "verdict": "no findings; the run looks healthy" (the doctor's word on a run without findings, else "")}
    {"type": "error", "detail": "one line"}

Batch events are throttled to one per ``BATCH_EVERY`` seconds (the first always goes: it is the
curve's first point); confusion matrix and weights images to one per ``PICTURE_EVERY`` seconds
(the last evaluation always has them).
"""
from __future__ import annotations

import base64
import dataclasses
import math
import os
import re
import signal
import time
from pathlib import Path

import numpy as np

from ..errors import shell_word
from ..io import json_ready

BLAS_THREADS = 1
BATCH_EVERY = 0.05  # s between batch points: at most 20 a second
PICTURE_EVERY = 0.5  # s between confusion matrices / weight images
MAX_TILES = 64  # first-layer units (MLP) or kernels (CNN) drawn
MAX_MAPS = 8  # feature maps of one dev digit (CNN)
NOTE = "Note: "  # how a line the user should read starts (a warm-up shrunk, a busy machine...)
FAULTS_LINE = "Faults on purpose"  # how a run broken on purpose says so (training/session.py)


def run_worker(config: dict, run_dir: str, events, stop, pause, max_seconds: float, max_memory: float = 4.0,
               shutdown=None, server: int | None = None) -> None:
    """Train ``config`` (TrainConfig fields) into ``run_dir``, putting events on ``events``.

    ``stop`` and ``pause`` are multiprocessing Events: stop ends training after the current batch
    (the model is saved as for a finished run); while pause is set the worker waits between two
    batches. ``shutdown`` (an Event too) is set when the server itself is stopping: the run's
    report is then left for ``scratchnn report`` (drawing it took the shutdown to 12 s, past the
    10 s a container manager waits before SIGKILL; the soak audit). Training also stops after
    ``max_seconds`` of wall time (pauses included: a paused run still holds the server's one
    training slot), and a run that needs more than ``max_memory`` GB (at least:
    training/memory.py) does not start. ``server``: the server's process id (Watcher.server_gone).
    """
    # Ctrl+C in the server's terminal reaches this process too: the server stops the run through
    # ``stop`` (its model is saved), so here it would only print a traceback and lose the model
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _limit_blas_threads()
    watcher = Watcher(events, stop, pause, max_seconds, server, run_dir=run_dir)
    try:
        _train_and_report(watcher, config, run_dir, max_memory, shutdown)
    finally:
        if watcher.server_gone():  # nobody reads the queue: its feeder thread must not hold the exit
            events.cancel_join_thread()


def _train_and_report(watcher: Watcher, config: dict, run_dir: str, max_memory: float, shutdown=None) -> None:
    from ..errors import ScratchnnError
    from ..training.config import TrainConfig
    from ..training.run import train_run
    from .gallery import IMAGE_SIDE

    events = watcher.events
    try:
        settings = TrainConfig.from_dict(config)
        result = train_run(settings, Path(run_dir), log=watcher.log, progress=False,
                           on_evaluation=watcher.evaluation, on_batch_end=watcher.batch,
                           on_finding=watcher.finding, stop_requested=watcher.stop_requested,
                           on_setup=watcher.setup,
                           memory_cap=(int(max_memory * 1e9), "scratchnn serve --max-train-memory"),
                           image_shape=((IMAGE_SIDE, IMAGE_SIDE), "the page draws and serves 28x28 images only"))
    except KeyboardInterrupt:  # only ServerGone: the worker ignores SIGINT
        if not watcher.server_gone():
            raise
        return  # like Ctrl+C in a terminal: the last checkpoint is kept, for `scratchnn train --resume`
    except ScratchnnError as error:
        events.put({"type": "error", "detail": _one_line(str(error))})
    except Exception as error:  # noqa: BLE001 - anything else still ends as one line for the page
        events.put({"type": "error", "detail": _one_line(f"training failed: {type(error).__name__}: {error}")})
    else:
        watcher.pictures()
        # the run is over and its model served before its figures are drawn (a few seconds)
        events.put({"type": "done", "model_path": str(result.model_path), "metrics": json_ready(result.metrics),
                    "seconds": result.train_seconds, "stopped": watcher.stopped,
                    "verdict": doctor_verdict(result, settings.epochs, stopped=bool(watcher.stopped))})
        if shutdown is not None and shutdown.is_set():
            watcher.log(f"The server is stopping: no report.html now (draw it with: scratchnn report {run_dir})")
        elif not watcher.server_gone():  # killed (kill -9, out of memory): its run is saved; the report can wait
            _write_report(result.run_dir, watcher.log)


def doctor_verdict(result, epochs: int, stopped: bool = False) -> str:
    """What the page shows where a run's findings would be when it has none: the doctor's own
    words (doctor/show.no_findings: a run of too few evaluations is not called healthy), or that
    it was off; '' beside findings. The page once repeated the rule and its wording, and read
    --doctor off from its form, which a visitor may have changed since the run began. A run
    ``stopped`` (Stop, the server's time limit), even in its last epoch, is not told more epochs."""
    if result.findings:
        return ""
    if not result.examined:
        return "the doctor was off for this run (--doctor off)"
    from ..doctor.show import no_findings
    from ..training.run_health import ended_early
    return no_findings(len(result.history), cut_short=stopped or ended_early(result.history, epochs))


def _write_report(run_dir: Path, log) -> None:
    """The run folder's figures and report.html, as ``scratchnn train`` leaves them (a few
    seconds); a report that cannot be drawn is a log line, not a failed run: the model is saved."""
    from ..errors import ScratchnnError
    from ..insight.report import write_report  # matplotlib: imported only when drawing

    log("Drawing the run's figures (report.html)")
    try:
        write_report(run_dir, log=log)
    except (ScratchnnError, OSError) as error:
        log(_one_line(f"no report.html: {error} (draw it later with: scratchnn report RUN)"))


class ServerGone(KeyboardInterrupt):
    """The server that started the worker ended without stopping it (kill -9, the out-of-memory
    killer): training stops as Ctrl+C stops `scratchnn train`."""


class Watcher:
    """train_run's hooks, turned into throttled events."""

    def __init__(self, events, stop, pause, max_seconds: float, server: int | None = None, run_dir: str = ""):
        self.events, self.stop, self.pause, self.max_seconds = events, stop, pause, max_seconds
        self.run_name = Path(run_dir).name if run_dir else ""  # the run's folder name, as the Runs tab lists it
        self.run_dir = run_dir or None  # the folder itself, as the doctor names it
        self.start, self.paused = time.monotonic(), 0.0  # paused: seconds spent paused so far
        self.last_batch = self.last_picture = -math.inf
        self.model = self.x_dev = self.y_dev = None
        self.stopped = ""
        # the server's id, as the server gave it: the parent this process finds once started is
        # already init's when the server was killed while it started (the crash audit: a worker
        # trained 15 epochs for nobody, then hung, holding 200 MB)
        self.server = os.getppid() if server is None else server

    def log(self, line: str) -> None:  # the faults' line too: beside one, the fixes a finding names do nothing
        self.events.put(note_event(line) if line.startswith((NOTE, FAULTS_LINE))
                        else {"type": "log", "line": without_folders(line)})

    def setup(self, model, x_dev: np.ndarray, y_dev: np.ndarray, classes: tuple[str, ...]) -> None:
        self.model, self.x_dev, self.y_dev = model, x_dev, y_dev
        self.events.put({"type": "setup", "model": model.widths(), "parameters": int(model.num_parameters),
                         "dev_samples": int(len(x_dev)), "classes": int(model.num_classes),
                         "class_names": [str(name)[:40] for name in classes]})

    def batch(self, epoch: int, batch: int, batches: int, loss: float, accuracy: float) -> None:
        now = time.monotonic()
        if now - self.last_batch < BATCH_EVERY and batch < batches:
            return
        self.last_batch = now
        self.events.put(json_ready({"type": "batch", "epoch": epoch, "batch": batch, "batches": batches, "loss": loss,
                               "accuracy": accuracy, "seconds": now - self.start - self.paused}))

    def evaluation(self, result) -> None:
        event = {"type": "evaluation", **dataclasses.asdict(result), "confusion": None, "weights": None}
        now = time.monotonic()
        if now - self.last_picture >= PICTURE_EVERY:
            self.last_picture = now
            event.update(self._pictures())
        self.events.put(json_ready(event))

    def pictures(self) -> None:
        """Send the final weights and confusion matrix (after training ends or stops)."""
        if self.model is not None:
            self.events.put(json_ready({"type": "pictures", **self._pictures()}))

    def _pictures(self) -> dict:
        return {"confusion": dev_confusion(self.model, self.x_dev, self.y_dev),
                "weights": first_layer_images(self.model, self.x_dev[:1] if len(self.x_dev) else None)}

    def finding(self, finding) -> None:
        self.events.put({"type": "finding", **page_finding(finding, self.run_name, self.run_dir)})

    def server_gone(self) -> bool:
        """The server that started this process ended without stopping it (kill -9, the out-of-memory
        killer): this process now belongs to another parent, and would train on for nobody."""
        return os.getppid() != self.server

    def stop_requested(self) -> bool:
        """Whether training should stop after this batch (asked, or out of time); ServerGone
        when the server is gone: the run then ends as Ctrl+C ends it in a terminal, its last
        checkpoint kept and not marked finished, so `scratchnn train --resume` completes it (a
        run stopped as asked was finished at epoch 22 of 30, and could not be)."""
        paused_at = time.monotonic()
        while self.pause.is_set() and not self.stop.is_set() and not self._out_of_time() and not self.server_gone():
            time.sleep(0.05)
        self.paused += time.monotonic() - paused_at  # the page's "s left" counts training time only
        if self.server_gone():
            raise ServerGone
        if self.stop.is_set():
            self.stopped = self.stopped or "asked"
        elif self._out_of_time():
            if not self.stopped:
                self.log(f"Stopped: this server gives a run at most {self.max_seconds:g} s "
                         "(scratchnn serve --max-train-seconds)")
            self.stopped = "time"
        return bool(self.stopped)

    def _out_of_time(self) -> bool:
        return time.monotonic() - self.start > self.max_seconds


def dev_confusion(model, x_dev: np.ndarray, y_dev: np.ndarray) -> list[list[int]] | None:
    """The confusion matrix (C, C) of ``model`` on the dev set (rows: true class), None without one."""
    from ..metrics import confusion_matrix

    if model is None or not len(x_dev):
        return None
    return confusion_matrix(y_dev.astype(np.intp), model.predict(x_dev), model.num_classes).tolist()


def first_layer_images(model, digit: np.ndarray | None) -> dict | None:
    """What the first layer with weights has learnt, as grey tiles (uint8, base64).

    MLP: W (D, M) with D = H·W: the first ``MAX_TILES`` units' incoming weights as (H, W) tiles.
    CNN: W (F, C, KH, KW): the first channel of the first ``MAX_TILES`` kernels as (KH, KW) tiles,
    and ``maps``: the first ``MAX_MAPS`` feature maps of ``digit`` (1, C, H, W) after the first
    activation. Tiles are scaled by their own largest |w|: 128 is zero, white positive, black
    negative; maps by their own maximum (0 black).
    """
    layer = next((layer for layer in model.layers if "W" in layer.params), None)
    if layer is None:
        return None
    weights = layer.params["W"]
    if weights.ndim == 4:
        tiles = weights[:MAX_TILES, 0]
        picture = {"kind": "conv", "total": int(weights.shape[0]), **_tiles(tiles, signed=True)}
        maps = _first_maps(model, digit)
        picture["maps"] = None if maps is None else _tiles(maps, signed=False)
        return picture
    side = math.isqrt(weights.shape[0])
    if side * side != weights.shape[0]:
        return None
    tiles = weights[:, :MAX_TILES].T.reshape(-1, side, side)
    return {"kind": "dense", "total": int(weights.shape[1]), "maps": None, **_tiles(tiles, signed=True)}


def _first_maps(model, digit: np.ndarray | None) -> np.ndarray | None:
    from ..nn.activations import Activation

    if digit is None:
        return None
    for _, layer, out in model.forward_steps(digit):
        if isinstance(layer, Activation) and out.ndim == 4:
            return out[0, :MAX_MAPS]
    return None


def _tiles(tiles: np.ndarray, signed: bool) -> dict:
    """(n, h, w) floats -> {"count", "height", "width", "data": base64 of n·h·w uint8}."""
    tiles = np.nan_to_num(np.asarray(tiles, np.float64))
    scale = np.abs(tiles).max(axis=(1, 2), keepdims=True)
    scale[scale == 0] = 1.0
    grey = 127.5 + 127.5 * tiles / scale if signed else 255.0 * np.clip(tiles / scale, 0, 1)
    data = np.clip(np.round(grey), 0, 255).astype(np.uint8)
    return {"count": int(data.shape[0]), "height": int(data.shape[1]), "width": int(data.shape[2]),
            "data": base64.b64encode(data.tobytes()).decode("ascii")}


def note_event(line: str) -> dict:
    """The event of a "Note: ..." line: the page lists notes beside the run, not in a log."""
    return {"type": "note", "text": _one_line(line.removeprefix(NOTE))}


_NAME = r"[^\s:/\\,()']"  # a character of a file or folder name (/ and Windows' \ separate them)
# a path with a drive letter ('C:\data.csv'), or of two or more separators (a Windows share's \\server\share too)
_PATH = re.compile(rf"(?:(?<!\w)[A-Za-z]:(?:[/\\]{_NAME}+)*|(?:\\\\|//)?{_NAME}*(?:[/\\]{_NAME}+)+)[/\\]({_NAME}+)")


def page_finding(finding, run_name: str, run_dir=None) -> dict:
    """A doctor's finding as the page shows it: no server folders in its text, and the lr-find
    command a fix names pointed at the run by the name the Runs tab lists it under (cut to
    'config.toml', it named a file the page user cannot find; the web-doctor audit). ``run_dir``:
    the folder the doctor named, taken out whole first, whatever its characters (the paths audit:
    a runs folder named "web dir; it's" was cut to "web dir; it'config.toml")."""
    named = shell_word(Path(run_dir) / "config.toml") if run_dir is not None and run_name else None
    fields = {name: without_folders(value.replace(named, "config.toml") if named else value)
              if isinstance(value, str) else value for name, value in finding.to_dict().items()}
    if run_name and isinstance(fields.get("fix"), str):  # quoted as the doctor quotes (the review: 'my run')
        fields["fix"] = _LR_FIND.sub(lambda found: f"scratchnn lr-find --config {shell_word(run_name + '/config.toml')}"
                                                   f"{found.group(1)} (in the server's runs folder)", fields["fix"])
    return json_ready(fields)


# 'config.toml' once without_folders cut its folders, or 'RUN/config.toml' from a server started
# inside its runs folder (one folder is no path to cut)
_LR_FIND = re.compile(r"scratchnn lr-find --config (?:[^\s/\\]+[/\\])?config\.toml((?: --[\w-]+ [^\s;,]+)*)")


def without_folders(text: str) -> str:
    """``text`` with every path of two or more folders (or with a drive letter) cut to its last
    part: where the server keeps its files is not the page's business ('/srv/runs/x/model.safetensors',
    'runs/x/model.safetensors' and 'C:\\Users\\me\\runs\\x\\model.safetensors' -> 'model.safetensors';
    'Epoch 3/10' is no path)."""
    return _PATH.sub(r"\1", text)


def _one_line(text: str, limit: int = 400) -> str:
    line = " ".join(without_folders(text).split())
    return line if len(line) <= limit else line[:limit - 1] + "…"


def _limit_blas_threads() -> None:
    """One BLAS thread for the training, so the server's predictions keep the other cores.

    ``threadpoolctl`` when installed; the server also sets OPENBLAS/OMP/MKL_NUM_THREADS and
    VECLIB_MAXIMUM_THREADS (Accelerate, which threadpoolctl cannot set) in the environment the
    process is spawned with (read before NumPy's import, whoever imports it first).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(BLAS_THREADS)
