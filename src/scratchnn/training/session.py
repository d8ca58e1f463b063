"""One training session in a run folder: the config's network, fit, and what watches each evaluation.

``train_run`` and ``resume_run`` (run.py) load the data and make the folder; a TrainingSession
then builds the network and its optimizer, schedule and early stopping from the config (a
checkpoint's state restored into them), trains with ``fit``, and at every evaluation logs a line,
lets the doctor examine the run and writes a checkpoint, metrics.csv and health.csv. At the end
it measures the finished model and saves it with everything needed to read it back.
"""
from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from .. import __version__
from ..data import DataSource, scale_pixels
from ..data.augment import Augmentation
from ..data.looks import copies_of_training
from ..doctor.diagnosis import Doctor
from ..doctor.faults import FAULTS, Setup, apply_faults
from ..doctor.findings import Finding
from ..doctor.show import finding_lines
from ..doctor.signals import HEALTH_FILE, METRICS_FILE, HealthText, write_health_csv
from ..errors import DataError, DoctorStopped, TrainingDiverged, shell_word
from ..files import FileInUse
from ..io import MODEL_FILE, json_ready, save
from ..metrics import one_answer_accuracy
from ..model import Sequential
from ..nn.losses import SoftmaxCrossEntropy
from .blas_threads import note_if_busy
from .checkpoint import (CHECKPOINT_FILE, Checkpoint, augmentation_to_continue, load_checkpoint, save_checkpoint,
                         training_done)
from .config import CONFIG_FILE, TrainConfig
from .batch_norm_batches import check_batches
from .fit import EpochResult, evaluate, evaluate_checked, fit
from .health import HealthRecorder
from .history import History, write_metrics_csv
from .progress import TrainingProgress
from .run_data import config_generators, run_split
from .run_display import RunDisplay
from .run_health import (diagnose_history, doctor_settings, doctor_summary, earlier_health, ended_early,
                         health_summary, more_epochs_may_help, still_learning)

ALWAYS_SAVED = 1_000  # evaluations checkpointed as often as asked; after them, ...
SAVE_SHARE = 10  # ... a checkpoint waits this many times its last one's writing time (under ~10% of a run)


@dataclass(repr=False)  # RunDisplay: a few lines in a terminal, tables in a notebook
class RunResult(RunDisplay):
    model: Sequential
    history: list[EpochResult]
    run_dir: Path
    model_path: Path
    train_seconds: float
    metrics: dict
    findings: list[Finding] = dataclasses.field(default_factory=list)
    classes: tuple[str, ...] = ()  # the class names, as the model file keeps them
    examined: bool = True  # False: no doctor looked (--doctor off, a finished run read back): no findings says nothing
    image_shape: tuple[int, int] | None = None  # (H, W) of the images it reads; None: not known (an old model)


class TrainingSession:
    """Train ``config``'s network on ``data`` in ``run_dir``, from ``checkpoint`` when resuming.

    The network, its optimizer, schedule and early stopping are built (and restored) here, before
    anything is logged; ``run()`` trains and returns the RunResult. The hooks are train_run's
    ``watch`` (a page that shows training) and ``on_evaluation`` (a sweep's pruner).
    """

    def __init__(self, config: TrainConfig, run_dir: Path, checkpoint: Checkpoint | None,
                 log: Callable[[str], None], progress: bool, source: DataSource, data,
                 on_evaluation: Callable[[EpochResult], None] | None = None,
                 on_batch_end: Callable[[int, int, int, float, float], None] | None = None,
                 on_finding: Callable[[Finding], None] | None = None,
                 stop_requested: Callable[[], bool] | None = None,
                 on_setup: Callable[[Sequential, np.ndarray, np.ndarray, tuple[str, ...]], None] | None = None):
        self.config, self.run_dir, self.checkpoint, self.source = config, run_dir, checkpoint, source
        # what is kept of the data: the images stay only as the split's float32 copies (the caller
        # drops its own reference to the uint8 ones once the session is made)
        self.data_text, self.classes, self.image_shape = data.describe(), tuple(data.classes), data.images.shape[1:]
        self.on_evaluation, self.on_batch_end, self.on_finding = on_evaluation, on_batch_end, on_finding
        self.stop_requested = stop_requested
        self._asked_to_stop = False  # fit stopped because stop_requested() said so
        self.gens = config_generators(config)
        train_images, y_train, dev_images, y_dev = run_split(config, data.images, data.labels, self.gens["split"])
        self.copies_note = copies_of_training(train_images, dev_images)
        self.built = config.build_model(self.gens["init"], image_shape=data.images.shape[1:],
                                        num_classes=len(data.classes), layer_rng=self.gens["layers"])
        x_train, x_dev = (scale_pixels(images, self.built.input_shape) for images in (train_images, dev_images))
        del train_images, dev_images
        self.setup = apply_faults(config.fault, Setup(self.built, x_train, y_train, x_dev, y_dev,
                                                      SoftmaxCrossEntropy(config.label_smoothing), self.gens["init"]))
        self.model, self.x_train, self.y_train = self.setup.model, self.setup.x_train, self.setup.y_train
        self.x_dev, self.y_dev = self.setup.x_dev, self.setup.y_dev
        check_batches(self.model, len(self.x_train), config.batch_size)  # before a checkpoint says it has begun
        if on_setup is not None:
            on_setup(self.model, self.x_dev, self.y_dev, self.classes)
        self.optimizer = config.build_optimizer()
        steps_per_epoch = 1 if not config.batch_size else -(-len(self.x_train) // config.batch_size)
        self.schedule = config.build_schedule(steps_per_epoch)
        self.stopping = config.build_early_stopping()
        self.history: list[EpochResult] = []
        if checkpoint is not None:
            checkpoint.restore(model=self.model, optimizer=self.optimizer, schedule=self.schedule,
                               early_stopping=self.stopping, generators=self.gens)
            self.history = list(checkpoint.history)
        self.start_epoch = checkpoint.epoch if checkpoint else 0
        self.bar = TrainingProgress(config.epochs, self.start_epoch, enabled=progress)
        self.log = self.bar.write if log is print else log  # log lines above the progress bar in a terminal
        self.progress, self.color = progress, log is print and sys.stdout.isatty()  # the doctor's colours
        self.step_name = config.step_name.capitalize()
        self.augmentation: Augmentation | None = None
        self.health: HealthRecorder | None = None
        self.doctor: Doctor | None = None
        self.evaluations = 0
        self._save_seconds, self._saved_at = 0.0, 0.0  # the last checkpoint's time to write, and when
        self.metric_rows: list[dict] = []  # the history as the doctor reads it
        self.health_text = HealthText()  # health.csv's text so far

    def run(self) -> RunResult:
        self._announce()
        self._start_doctor()
        if self.config.checkpoint_every and self.checkpoint is None:
            self.save_state()  # epoch 0: even a run killed in its first epoch can be resumed
        done = self.checkpoint is not None and training_done(self.checkpoint, self.config)
        if done and self.stopping is not None:
            self.stopping.restore(self.model)  # what fit does once training ends: the best weights come back
        if not done and self.checkpoint is not None:
            self._examine_before_resuming()
        seconds = 0.0 if done else self._fit()
        if self.history and not done:  # a run that ended early (patience, Stop, a sweep's stop) is examined too
            self.examine(last=True)
        return self._finish(seconds)

    def _examine_before_resuming(self) -> None:
        """The doctor reads a resumed run's tables before it trains again and names what it found
        in one line (they were printed in full again, some in other words: the resume audit); a
        strict one stops again, before training, a run it stopped (every --resume trained one more
        evaluation first, as its last checkpoint is taken just before the stop)."""
        if self.health is None or not self.history:
            return
        error = next((f for f in self.examine(last=True, brief=True) if f.severity == "error"), None)
        if error is not None and self.config.doctor == "strict":
            raise DoctorStopped(f"the doctor found an error in this run by {self.step_name.lower()} "
                                f"{self.history[-1].epoch} ([{error.id}] {error.message}), so --doctor strict stops "
                                f"it before it trains again: fix that and train it anew, or set doctor = \"on\" in "
                                f"{shell_word(self.run_dir / CONFIG_FILE)} to train on regardless")

    def _announce(self) -> None:
        """Log the data, the network and how it trains; settle the augmentation a resumed run continues."""
        config, log = self.config, self.log
        log(f"Data: {self.source.describe()} ({len(self.x_train):,} train / {len(self.x_dev):,} dev): "
            f"{self.data_text}")
        if self.copies_note:
            log(self.copies_note)
        network = config.describe_network("; ") if self.model is self.built else "; the fault's own network"
        log(f"Model: {self.model.widths()} ({self.model.num_parameters:,} parameters{network}), {config.describe()}")
        self.augmentation, note = augmentation_to_continue(config.build_augmentation(), self.checkpoint,
                                                           from_table=bool(config.augmentation))
        self.config = config.trained_with(self.augmentation)  # a config edited before --resume does not say otherwise
        if note and self.config.to_dict() != config.with_augmentation_recorded().to_dict():
            self.config.save(self.run_dir / CONFIG_FILE)  # so its repeat (--config) trains what this run trained
            note += f"; {CONFIG_FILE} says so again"
        for line in (note, self.augmentation and f"Augmentation: {self.augmentation.describe()}"):
            if line:
                log(line)
        if config.fault:
            log("Faults on purpose (the doctor is not told): "  # a fix followed beside one changes nothing
                + "; ".join(FAULTS[name].told for name in config.fault))
        note_if_busy(config.threads, log)

    def _start_doctor(self) -> None:
        """The health recorder (a resumed run's rows so far) and the doctor that reads it."""
        if self.config.doctor != "off":
            self.health = HealthRecorder.for_data(self.x_train, earlier_health(self.run_dir, self.checkpoint, self.log),
                                                  planned=self.config.evaluations())
            if self.checkpoint is None:  # no dev labels: a class only in dev is rare, the split was shuffled
                self.health.record_labels(self.y_train, self.model.num_classes)
                if self.augmentation is not None:
                    self.health.record_readability(self.x_train, self.y_train, self.augmentation,
                                                   self.setup.input_scale)
        # a fault run's steps count as any run's
        self.doctor = Doctor(doctor_settings(self.config, self.run_dir), self.config.step_name)

    def _augment(self):
        """The augmentation fit applies to each batch; under a fault that scaled the inputs (the
        lab's unscaled-inputs), on the 0..1 images it takes, scaled back after."""
        augmentation, scale = self.augmentation, np.float32(self.setup.input_scale)
        if augmentation is None or scale == 1:
            return augmentation
        return lambda x, rng: augmentation(x / scale, rng) * scale

    def _save_due(self) -> bool:
        """Whether a checkpoint asked for now is written. The checkpoint and the tables are written
        whole and grow with the run: 20,000 evaluations of a small network, each checkpointed,
        spent two thirds of their time writing (the scale audit). Past ALWAYS_SAVED evaluations,
        a checkpoint waits SAVE_SHARE times as long as the last one took to write."""
        waited = time.perf_counter() - self._saved_at
        return self.evaluations <= ALWAYS_SAVED or waited >= SAVE_SHARE * self._save_seconds

    def save_state(self, finished: bool = False) -> None:
        """health.csv as far as it goes, then the checkpoint --resume continues from. In this
        order a kill between the two leaves rows past the last checkpoint, which --resume drops
        (earlier_health); in the other, it lost the rows between the last two checkpoints for
        good (the crash audit: iterations 11-20 of a resumed seed run)."""
        self._write_health()
        save_checkpoint(self.run_dir / CHECKPOINT_FILE, model=self.model, optimizer=self.optimizer,
                        schedule=self.schedule, early_stopping=self.stopping, generators=self.gens,
                        history=self.history, augmentation=self.augmentation, finished=finished,
                        config=self.config.to_dict())  # what --resume holds an edited config.toml to

    def _write_health(self) -> None:
        if self.health is not None:
            self._write_table(write_health_csv, HEALTH_FILE, self.health.rows, self.health_text)

    def _write_tables(self) -> None:
        self._write_health()
        self._write_table(write_metrics_csv, METRICS_FILE, self.history)

    def _write_table(self, write: Callable, name: str, *rows) -> None:
        """metrics.csv or health.csv. One another program holds open (Windows: a spreadsheet showing
        it) is a note, not the end of the run: the checkpoint and the model are what a run keeps,
        and the table is written whole again at the next evaluation."""
        try:
            write(self.run_dir / name, *rows)
        except FileInUse as error:
            self.log(f"Note: {name} was not updated ({error.strerror}); training goes on, the next evaluation "
                     "writes it whole again, and the checkpoint and the model are saved as usual")

    def examine(self, last: bool = False, brief: bool = False) -> list[Finding]:
        """Print the findings that are new since the last evaluation (once per rule); ``brief``:
        their names and severities on one line (findings said before, by a run now resumed)."""
        self.metric_rows.extend(dataclasses.asdict(r) for r in self.history[len(self.metric_rows):])
        new = self.doctor.update(self.metric_rows, self.health.rows, last) if self.health else []
        if brief and new:
            self.log(f"The doctor found before: {', '.join(f'[{f.id}] {f.severity}' for f in new)} "
                     f"('scratchnn doctor {shell_word(self.run_dir)}' says more)")
        for finding in new:
            for line in [] if brief else finding_lines(finding, color=self.color):
                self.log(line)
            if self.on_finding is not None:
                self.on_finding(finding)
        return new

    def _batch_done(self, *progress_of_batch) -> None:
        self.bar.on_batch_end(*progress_of_batch)
        if self.on_batch_end is not None:
            self.on_batch_end(*progress_of_batch)

    def _evaluated(self, result: EpochResult) -> None:
        """fit's on_epoch_end: log the evaluation, examine it, checkpoint, and stop if the doctor must."""
        config = self.config
        self.history.append(result)
        self.log(f"{self.step_name} {result.epoch:>{len(str(config.epochs))}}/{config.epochs}  "
                 f"loss {result.train_loss:.4f}  train accuracy {result.train_accuracy:.4f}  "
                 + (f"dev loss {result.dev_loss:.4f}  dev accuracy {result.dev_accuracy:.4f}  "
                    if len(self.x_dev) else "")
                 + f"lr {result.lr:.3g}  {result.seconds:.2f} s")
        self.evaluations += 1
        new = self.examine(last=result.epoch >= config.epochs)
        stop = config.doctor == "strict" and next((f for f in new if f.severity == "error"), None)
        if config.checkpoint_every and self.evaluations % config.checkpoint_every == 0 and self._save_due():
            started = time.perf_counter()
            self.save_state()
            self._write_table(write_metrics_csv, METRICS_FILE, self.history)
            self._saved_at = time.perf_counter()
            self._save_seconds = self._saved_at - started
        if stop:
            self._write_tables()
            cause = stop.fix.removesuffix(": fix that first") if stop.fix.startswith("this follows from") else ""
            raise DoctorStopped(f"--doctor strict stopped the run at {self.step_name.lower()} {result.epoch}: "
                                f"[{stop.id}] {stop.message}{f'; {cause}' if cause else ''}; its health and "
                                f"metrics are in {self.run_dir} (scratchnn doctor {shell_word(self.run_dir)})")
        if self.on_evaluation is not None:
            self.on_evaluation(result)

    def _fit(self) -> float:
        """Train from the start epoch to the end; seconds taken. A divergence says what was saved."""
        config, setup = self.config, self.setup
        start = time.perf_counter()
        try:
            fit(self.model, self.optimizer, self.x_train, self.y_train, epochs=config.epochs,
                batch_size=config.batch_size, x_dev=self.x_dev, y_dev=self.y_dev, rng=self.gens["order"],
                shuffle=setup.shuffle, schedule=self.schedule, early_stopping=self.stopping,
                eval_every=config.eval_every, start_epoch=self.start_epoch, on_epoch_end=self._evaluated,
                augment=self._augment(), augment_rng=self.gens["augment"], on_batch_end=self._batch_done,
                health=self.health, stop_requested=self._poll_stop, fast=setup.fast and not config.textbook,
                loss_fn=setup.loss_fn)
        except TrainingDiverged as error:
            self.bar.close()
            raise TrainingDiverged(f"{error}{self._cause_of(error)}; {self._saved()}") from None
        finally:
            self.bar.close()
        return time.perf_counter() - start

    def _cause_of(self, error: TrainingDiverged) -> str:
        """What the doctor found first, when the divergence's own message does not name it."""
        if self.health is None:
            return ""
        self._write_tables()
        self.examine(last=True)
        first = next((f for f in self.doctor.findings if f.severity != "advice"), None)
        named = (("lr-too-high", "exploding") + (("unscaled-inputs",) if "the inputs reach" in str(error) else ())
                 + (("large-init",) if "the untrained network's loss" in str(error) else ()))
        return f" (or fix what the doctor found first: [{first.id}])" if first and first.id not in named else ""

    def _saved(self) -> str:
        if not self.config.checkpoint_every:
            return "nothing was saved"
        epoch = load_checkpoint(self.run_dir / CHECKPOINT_FILE).epoch
        return (f"the last good checkpoint (epoch {epoch}{', the initial weights' if epoch == 0 else ''}) "
                f"is in {self.run_dir / CHECKPOINT_FILE}")

    def _poll_stop(self) -> bool:
        """fit's stop_requested: the caller's, remembered once it said stop."""
        self._asked_to_stop = self._asked_to_stop or (self.stop_requested is not None and self.stop_requested())
        return self._asked_to_stop

    def _stopped_as_asked(self) -> bool:
        """Whether training stopped early because it was asked to (what fit heard; not asked again
        after training: the page's worker raises there when its server is gone, and a run that had
        trained every epoch lost its model, the review)."""
        return self._asked_to_stop

    def _finish(self, seconds: float) -> RunResult:
        """Measure the finished model, save it and the tables, and log the summary and the doctor's word."""
        config, history, log = self.config, self.history, self.log
        if history and history[-1].epoch <= config.epochs and self._stopped_as_asked():
            log(f"Stopped during epoch {history[-1].epoch} (Stop, a time limit or a sweep's end asked it to); the "
                "model keeps the weights it had then")
        if self.stopping is not None and self.stopping.best_epoch and history[-1].epoch < config.epochs:
            log(f"Early stopping: no better {config.monitor} for {config.patience} evaluations; "
                f"keeping the weights of epoch {self.stopping.best_epoch}")
        metrics = self._final_metrics()
        earlier = sum(r.seconds for r in self.checkpoint.history) if self.checkpoint else 0.0  # before a resume
        metrics.update(train_seconds=earlier + seconds, epochs=history[-1].epoch if history else 0)
        self._write_tables()
        findings = self.doctor.findings
        if self.health is not None:
            findings = diagnose_history(history, self.health.rows, self.doctor.settings)
        model_path = save(self.model, self.run_dir / MODEL_FILE, metadata={
            "config": config.to_dict(), "metrics": json_ready(metrics), "classes": list(self.classes),  # JSON: no NaN
            "augmentation": Augmentation.record(self.augmentation),
            "health": json_ready(health_summary(self.health.rows if self.health else [], findings)),
            "image_shape": [int(n) for n in self.image_shape],
            "created": datetime.now().astimezone().isoformat(timespec="seconds"), "scratchnn_version": __version__})
        if config.checkpoint_every:  # the finished state, so --resume knows there is nothing left to do
            self.save_state(finished=True)
        summary = f"train accuracy {metrics['train_accuracy']:.4f} (the finished model)" + (
            f", dev accuracy {metrics['dev_accuracy']:.4f}{self._one_answer()}" if len(self.x_dev) else "")
        if "test_accuracy" in metrics:
            summary += f", test accuracy {metrics['test_accuracy']:.4f}"
        log(f"Done in {seconds:.2f} s: {summary}")
        log(f"Model saved to {model_path}")
        if self.health is not None:
            log(doctor_summary(findings, self.run_dir, len(history), ended_early(history, config.epochs)))
        if config.fault and self.health is not None:
            log(f"Note: this run broke the network on purpose (--fault {','.join(config.fault)}); the fixes are "
                "what to do where the same mistake was made by accident. To train normally, run it again without "
                f"--fault, or with --config {shell_word(self.run_dir / CONFIG_FILE)} --fault none")
        if more_epochs_may_help(findings) and not self._stopped_as_asked():
            for line in filter(None, [still_learning(history, config.epochs, self.step_name.lower())]):
                log(line)
        return RunResult(self.model, History(history, config.step_name), self.run_dir, model_path, seconds, metrics,
                         findings, self.classes, examined=self.health is not None,
                         image_shape=tuple(int(n) for n in self.image_shape))

    def _one_answer(self) -> str:
        """Beside the dev accuracy on lopsided labels, what answering the commonest class alone
        scores (a learner-mistakes audit: 0.94 on digits 95% ones was what always "1" scores, the
        rarer classes all misread); '' unless one class holds half the dev set and 1.5 times its even
        share among the classes it holds (0s and 1s, 54/46, on ten outputs are even)."""
        top, share = one_answer_accuracy(self.y_dev, len(self.classes))
        if share < max(0.5, 1.5 / len(np.unique(self.y_dev))):
            return ""
        return f" (always answering {self.classes[top]} would score {share:.4f})"

    def _final_metrics(self) -> dict:
        """Loss and accuracy of the final weights on train, dev and (named datasets) test."""
        model = self.model
        train_loss, train_accuracy = evaluate_checked(model, self.x_train, self.y_train)  # (the lab's 0..255 too)
        dev_loss, dev_accuracy = evaluate_checked(model, self.x_dev, self.y_dev)
        metrics = {"train_loss": train_loss, "train_accuracy": train_accuracy, "dev_loss": dev_loss,
                   "dev_accuracy": dev_accuracy, "train_samples": len(self.x_train), "dev_samples": len(self.x_dev)}
        if self.source.dataset is not None:
            try:
                test = self.source.load("test", progress=self.progress)
            except DataError as error:
                self.log(f"No test accuracy: {error}")
            else:
                x_test = scale_pixels(test.images, model.input_shape)
                metrics["test_loss"], metrics["test_accuracy"] = evaluate(model, x_test, test.labels.astype(np.intp))
                metrics["test_samples"] = len(x_test)
        return metrics
