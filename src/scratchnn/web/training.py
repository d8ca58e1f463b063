"""One training at a time for the page: start, pause, stop, and the run's story so far.

``TrainingManager`` owns the worker process (``train_worker.run_worker``, spawned), a thread that
drains its event queue, and the run's event log: every event the page needs to redraw the run,
numbered, so a browser that reconnects (or reloads) asks for everything after the last number it
saw, or for everything. Superseded pictures (weights, confusion) are dropped from the log as new
ones arrive, so a replay stays small. When the run ends, finished or stopped, ``on_model(path)``
makes its model the page's model before the page hears that the run is done, unless the doctor
found an error in it (a run that cannot learn, such as one with ``--fault shuffled-labels``):
the page is every visitor's, and one learner breaking a network on purpose should not break
drawing for the class. The Runs tab still loads it when asked.
"""
from __future__ import annotations

import difflib
import multiprocessing
import os
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..data.load import FIELDS
from ..errors import ConfigError, ScratchnnError
from ..training.config import TrainConfig
from ..training.options import TRAIN_GROUPS, fits_kind, kind_words, options_of
from ..training.presets import PRESETS, resolve_config
from .disk_budget import PAGE_MARK, DiskBudget
from .operator_log import OPERATOR
from .runs import public_config
from .train_worker import BLAS_THREADS, note_event, run_worker
from .worker_start import not_started, spawn_with_threads

ACTIVE = ("starting", "running", "paused", "stopping")
FOLLOWS = re.compile(r"this follows from \[([\w-]+)\]")  # a symptom's fix names its cause
REPORT_WAIT = 2.0  # s a shutdown waits for a finished run's report (a container manager kills at 10 s)


class TrainingBusy(ScratchnnError):
    """Another run is training (HTTP 409)."""


class TrainingUnavailable(ScratchnnError):
    """This server does not train: --no-train, or no data it may read (HTTP 409)."""


@dataclass(frozen=True)
class TrainLimits:
    """What one run may ask of a shared server (``scratchnn serve --max-train-*``)."""

    epochs: int = 500  # the seed preset's
    seconds: float = 600.0
    width: int = 1024  # units per hidden layer
    channels: int = 128  # per convolution block
    layers: int = 6  # hidden layers, and convolution blocks
    memory: float = 4.0  # GB a training step may need at least (training/memory.py's bound)
    disk: float = 5.0  # GB the page's run folders may hold together (disk_budget.py)

    def check(self, config: TrainConfig) -> None:
        """ConfigError naming the flag of the first setting over a limit."""
        if config.epochs > self.epochs:
            raise ConfigError(f"--epochs: this server trains at most {self.epochs} epochs a run, got "
                              f"{config.epochs} (scratchnn serve --max-train-epochs)")
        for name, most, what, flag in (("hidden", self.width, "units a layer", "width"),
                                       ("conv", self.channels, "channels a block", "channels")):
            values = getattr(config, name)
            if len(values) > self.layers:
                raise ConfigError(f"--{name}: this server trains at most {self.layers} layers, got {len(values)} "
                                  "(scratchnn serve --max-train-layers)")
            if values and max(values) > most:
                raise ConfigError(f"--{name}: this server trains at most {most} {what}, got {max(values)} "
                                  f"(scratchnn serve --max-train-{flag})")


def train_settings() -> dict[str, object]:
    """The options a page may set: the network, optimisation, training loop and doctor groups, but
    threads, which the server sets (BLAS_THREADS): offered, a page's 1,000,000 was thrown away."""
    return {name: spec for name, spec in options_of(TrainConfig).items()
            if spec.group in TRAIN_GROUPS and name != "threads"}


def resolve_request(body: dict, data: TrainConfig, limits: TrainLimits, log=print) -> TrainConfig:
    """The config a POSTed ``{"preset": ..., <field>: <value>}`` asks for, resolved and validated as
    ``scratchnn train --preset P --<flag> <value>`` would be (the same code), on the server's data;
    its notes (a warm-up shrunk, a setting that does nothing here) go to ``log``.

    Data fields are refused: a page never names files on the server.
    """
    if not isinstance(body, dict):
        raise ConfigError("send a JSON object like {\"preset\": \"seed\", \"epochs\": 30}")
    settings = train_settings()
    unknown = sorted(set(body) - set(settings) - {"preset"})
    if unknown:
        named = ", ".join(repr(name)[:40] for name in unknown[:3])
        near = difflib.get_close_matches(str(unknown[0]), [*settings, "preset"], n=1, cutoff=0.75)
        if near:  # the advice audit: {"epoch": 1} got the list of 40 names, where a config file says epochs
            raise ConfigError(f"unknown setting {named}; did you mean {near[0]!r}?")
        raise ConfigError(f"unknown setting(s) {named}; a run may set preset, {', '.join(settings)}")
    preset = body.get("preset", "seed")
    if not isinstance(preset, str) or preset not in PRESETS:  # a list or an object cannot be looked up
        raise ConfigError(f"--preset: unknown preset {str(preset)[:40]!r}; choose one of {', '.join(PRESETS)}")
    defaults = TrainConfig()
    chosen = {name: _typed(name, value, getattr(defaults, name), settings[name])
              for name, value in body.items() if name != "preset"}
    config = resolve_config(preset, chosen, {name: getattr(data, name) for name in FIELDS if getattr(data, name)},
                            log=log)
    limits.check(config)
    from ..training.architecture import layer_specs

    layer_specs(config)  # a network that cannot be built (--kernel-size 1000000) is a 422, not a run folder that failed
    config.threads = BLAS_THREADS  # what the worker runs on, so its config.toml repeats it (0 would mean every core)
    return config


def _typed(name: str, value, default, spec):
    """``value`` if it has the type of the field's ``default``; else a ConfigError naming the flag.
    What else the config refuses (a NUL, a 400-digit number) it words itself, naming the flag."""
    if not fits_kind(default, value, spec):
        raise ConfigError(f"{spec.flag} must be {kind_words(default, spec)}, got {str(value)[:40]!r}")
    return getattr(TrainConfig.from_dict({name: value}, source=spec.flag), name)


class TrainingManager:
    """The server's one training slot: its worker process, its state and its event log."""

    def __init__(self, runs_dir: Path, data: TrainConfig | None, limits: TrainLimits = TrainLimits(),
                 on_model: Callable[[Path], None] = lambda path: None, unavailable: str = ""):
        self.runs_dir, self.data, self.limits, self.on_model = Path(runs_dir), data, limits, on_model
        self.disk = DiskBudget(self.runs_dir, limits.disk)
        self.unavailable = unavailable or ("" if data is not None else "this server has no training data")
        self._lock = threading.Lock()
        self._process = self._stop = self._pause = self._shutdown = self._drainer = None
        self._closing = False
        self._draining = False  # the worker may still be drawing the report of a run that is over
        # a restarted server's runs never reuse an earlier one's ids: a page reconnecting with the
        # Last-Event-ID "1:50" of the old run 1 skipped the first 50 events of the new run 1 (the web audit)
        self.run_id = time.time_ns() // 1_000_000
        self.state: dict = {"status": "idle"}
        self._events: list[dict | None] = []  # None: a superseded picture

    # --- commands ------------------------------------------------------------------------------
    def start(self, body: dict, who: str = "someone") -> dict:
        """Validate ``body``, create the run folder and spawn the worker; the new state."""
        if self.unavailable:
            raise TrainingUnavailable(self.unavailable)
        notes: list[str] = []
        config = resolve_request(body, self.data, self.limits, log=notes.append)
        with self._lock:
            if self.state["status"] in ACTIVE:
                raise TrainingBusy(f"{self.state['run']} is training (started by {self.state['who']} at "
                                   f"{self.state['started']}); wait for it to finish")
            from ..training.run import new_run_dir

            self.disk.check()
            self._end_report_drawing()
            run_dir = new_run_dir(config.preset, self.runs_dir)
            self.disk.add(run_dir)
            context = multiprocessing.get_context("spawn")
            try:  # short of a process, a semaphore or a descriptor: a 503 naming it, and no folder left
                events, self._stop, self._pause, self._shutdown = (context.Queue(), context.Event(), context.Event(),
                                                                   context.Event())
                self._process = context.Process(
                    target=run_worker, name=f"scratchnn-train-{run_dir.name}", daemon=True,
                    args=(config.to_dict(), str(run_dir), events, self._stop, self._pause, self.limits.seconds,
                          self.limits.memory, self._shutdown, os.getpid()))
                spawn_with_threads(self._process, BLAS_THREADS)
            except (OSError, RuntimeError) as error:
                _remove_if_empty(run_dir)
                OPERATOR.warning("a run could not be started: %s", error)
                raise not_started(error) from None
            self.run_id += 1
            self._events = []
            self.state = {"status": "starting", "run": run_dir.name, "who": who[:60],
                          "started": datetime.now().strftime("%H:%M:%S"), "config": public_config(config),
                          "epochs": config.epochs, "epoch": 0, "run_id": self.run_id}
            self._append({"type": "status", **self.state})
            for note in notes:  # what `scratchnn train` would print before it starts
                self._append(note_event(note))
            self._draining = True
            self._drainer = threading.Thread(target=self._drain, args=(self._process, events, run_dir, self.run_id),
                                             name="scratchnn-train-events", daemon=True)
            self._drainer.start()
            OPERATOR.info("run %s started by %s (%s, %d epochs)", run_dir.name, who[:60], config.preset, config.epochs)
            return dict(self.state)

    def _end_report_drawing(self) -> None:
        """The last run's worker, if it is still drawing that run's report, ends now: one worker
        process at a time (the web audit: a Start right after each run kept 7 alive, 759 MB)."""
        process = self._process
        if process is not None and process.is_alive():  # the run is over (not ACTIVE): only its report is left
            process.terminate()
            run = self.runs_dir / self.state["run"]
            OPERATOR.warning("run %s: its report was not finished, a new run started (draw it with: scratchnn "
                             "report %s)", run.name, run)

    def stop(self) -> dict:
        """Ask the run to stop after its current batch (its model is saved); the state."""
        with self._lock:
            if self.state["status"] in ("starting", "running", "paused"):
                OPERATOR.info("run %s: Stop pressed", self.state["run"])
                self._stop.set()
                self._pause.clear()
                self._set_status("stopping")
            return dict(self.state)

    def pause(self, paused: bool) -> dict:
        with self._lock:
            if self.state["status"] in ("running", "paused"):
                (self._pause.set if paused else self._pause.clear)()
                self._set_status("paused" if paused else "running")
            return dict(self.state)

    def closing(self) -> None:
        """The server was asked to stop (Ctrl+C, SIGTERM): the run stops after its batch and the
        pages' event streams end now, instead of holding the shutdown open while it trains on."""
        self._closing = True
        if self._stop is not None:
            self._shutdown.set()  # before stop: the worker reads it once the run has stopped
            self._stop.set()
            self._pause.clear()

    def close(self, seconds: float = 10.0) -> None:
        """Stop a run when the server shuts down: its model is saved if it ends in ``seconds``,
        else its folder keeps its last checkpoint; the console says which."""
        process = self._process
        if process is not None and process.is_alive() and self.state["status"] not in ACTIVE:
            self._closing = True  # the run is over, its model saved: only its report is being drawn,
            process.join(min(seconds, REPORT_WAIT))  # and `scratchnn report` draws it as well later
            if process.is_alive():
                process.terminate()
                run = self.runs_dir / self.state["run"]
                OPERATOR.warning("run %s: its report was not finished (draw it with: scratchnn report %s)",
                                 run.name, run)
        elif process is not None and process.is_alive():
            self._closing = True
            self._shutdown.set()
            self._stop.set()
            self._pause.clear()
            process.join(seconds)
            if process.is_alive():
                process.terminate()
                run = self.runs_dir / self.state["run"]
                OPERATOR.warning("run %s did not stop within %g s and was ended; its folder keeps its last "
                                 "checkpoint: scratchnn train --resume %s", run.name, seconds, run)
            if self._drainer is not None:
                self._drainer.join(3)  # the run's last line in the console, before the server's own
        self._let_go()

    def _let_go(self) -> None:
        """Drop the last run's process, queue and events once it has ended: their semaphores are
        released now, not reported at exit as "13 leaked semaphore objects" by multiprocessing."""
        process = self._process
        if process is not None and process.is_alive():
            process.join(1)  # terminated a moment ago
        if process is None or process.is_alive():
            return
        if self._drainer is not None:
            self._drainer.join(3)  # it reads the queue until the process has ended
            if self._drainer.is_alive():
                return  # still recording: it holds the process, which must stay open for it
        process.close()
        self._process = self._stop = self._pause = self._shutdown = self._drainer = None

    # --- what the page reads ---------------------------------------------------------------------
    def events_after(self, run_id: int, seq: int) -> tuple[int, list[tuple[int, dict]], bool]:
        """(current run id, [(seq, event)] after ``seq`` of run ``run_id`` (all of them for another
        run, or past the last one sent: no browser saw that one, and it would wait silently for
        the events up to it), whether the run is over)."""
        with self._lock:
            start = seq if run_id == self.run_id and seq <= len(self._events) else 0
            found = [(i + 1, event) for i, event in enumerate(self._events[start:], start) if event is not None]
            over = self.state["status"] not in ACTIVE and not self._draining  # the report's lines come last
            return self.run_id, found, over or self._closing

    # --- the worker's events ------------------------------------------------------------------------
    def _drain(self, process, events, run_dir: Path, run_id: int) -> None:
        """Record the worker's events until its process ends. The run is over at "done" (its model
        then served) or "error"; after "done" the process draws the run's report, and its lines
        are kept too (a newer run's start drops them, still reading them so the process can end)."""
        done, errors, whole_epoch = False, [], False
        while True:
            try:
                event = events.get(timeout=0.5)
            except queue.Empty:
                if process.is_alive():
                    continue
                try:  # its last events may still be in the pipe
                    event = events.get(timeout=1.0)
                except queue.Empty:
                    if done:
                        break
                    event = {"type": "error", "detail": f"the training process ended unexpectedly "
                                                        f"(exit code {process.exitcode}); see the server's log"}
            kind = event.get("type")
            if kind == "finding" and event.get("severity") == "error":  # named with its cause, if it has one
                cause = FOLLOWS.match(event.get("fix") or "")
                errors.append(f"[{event.get('id')}] error" + (f" (from [{cause.group(1)}])" if cause else ""))
            # an epoch's last batch always has its event: one learner's Stop a few batches in is not
            # the model every page should answer with (the web audit)
            whole_epoch = whole_epoch or (kind == "batch" and event.get("batch") == event.get("batches"))
            if kind == "done" and (errors or (event.get("stopped") and not whole_epoch)):
                event["loaded"] = False
                event["load_error"] = (f"not served, because the doctor found {errors[0]}" if errors else
                                       "not served: stopped before its first epoch ended, it has barely trained"
                                       ) + "; the Runs tab can load it anyway"
            elif kind == "done":
                try:
                    self.on_model(Path(event["model_path"]))
                    event["loaded"] = True
                except (ScratchnnError, OSError) as error:
                    event["loaded"], event["load_error"] = False, str(error)
            if kind == "done":  # every page reads it: the file's name, never the server's folders
                event["model_path"] = Path(event["model_path"]).name
            with self._lock:
                if run_id == self.run_id:
                    self._record(event)
            if kind == "error":
                break
            done = done or kind == "done"
        process.join(5)
        with self._lock:
            if run_id == self.run_id:
                self._draining = False
        _remove_if_empty(run_dir)

    def _record(self, event: dict) -> None:
        kind = event.get("type")
        if kind in ("batch", "evaluation"):
            self.state["epoch"] = event["epoch"]
            if self.state["status"] == "starting":
                self._set_status("running")
        if kind in ("evaluation", "pictures") and event.get("weights") is not None:
            self._drop_earlier_pictures()
        if kind == "done":
            self.state["model"], self.state["served"] = event["model_path"], event["loaded"]
            details = [event["load_error"]] if not event["loaded"] else []
            if event.get("stopped") == "time":  # else it reads as if someone had pressed Stop
                details.insert(0, f"the server's limit of {self.limits.seconds:g} s a run (serve "
                                  "--max-train-seconds) stopped it")
            if details:
                self.state["detail"] = "; ".join(details)
            self._append(event)
            self._set_status("stopped" if event.get("stopped") else "finished")
            if self._closing and event.get("stopped"):
                OPERATOR.info("run %s stopped with the server; its model is saved in %s", self.state["run"],
                              self.runs_dir / self.state["run"])
            else:
                why = event.get("load_error", "")
                OPERATOR.info("run %s %s; %s", self.state["run"], self.state["status"], "now served to every page"
                              if event["loaded"] else why if why.startswith("not served") else f"not served: {why}")
            return
        if kind == "error":
            self.state["detail"] = event["detail"]
            self._append(event)
            self._set_status("failed")
            if not self._closing:  # else close() ended it, and said so
                OPERATOR.warning("run %s failed: %s", self.state["run"], event["detail"])
            return
        self._append(event)

    def _drop_earlier_pictures(self) -> None:
        for i, earlier in enumerate(self._events):
            if earlier is not None and earlier.get("type") == "pictures":
                self._events[i] = None
            elif earlier is not None and earlier.get("weights") is not None:
                self._events[i] = {**earlier, "weights": None, "confusion": None}

    def _set_status(self, status: str) -> None:
        self.state["status"] = status
        self._append({"type": "status", **self.state})

    def _append(self, event: dict) -> None:
        self._events.append(event)


def _remove_if_empty(run_dir: Path) -> None:
    """A run that failed before its data loaded leaves no empty folder behind (empty but for the
    page's mark, disk_budget.PAGE_MARK)."""
    try:
        if {path.name for path in run_dir.iterdir()} <= {PAGE_MARK}:
            (run_dir / PAGE_MARK).unlink(missing_ok=True)
        run_dir.rmdir()
    except OSError:  # not empty, or gone already
        pass

