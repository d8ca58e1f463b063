"""A run's health, kept and told: the rows a resumed run had recorded, what the model file keeps
of them, and the doctor's one-line verdict at the end of ``scratchnn train``."""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path

from ..doctor.advice import Settings
from ..doctor.diagnosis import diagnose
from ..doctor.findings import Finding
from ..doctor.show import no_findings
from ..doctor.signals import HEALTH_FILE, METRICS_FILE, Row, read_health_csv, read_metrics_csv
from ..errors import DataError, ScratchnnError, shell_word
from .checkpoint import Checkpoint
from .config import CONFIG_FILE, TrainConfig
from .fit import EpochResult


def earlier_health(run_dir: Path, checkpoint: Checkpoint | None, log: Callable[[str], None]) -> list[Row]:
    """The health rows a resumed run had recorded up to its checkpoint (none on a fresh start)."""
    if checkpoint is None or not (run_dir / HEALTH_FILE).exists():
        return []
    try:
        rows = read_health_csv(run_dir / HEALTH_FILE)
    except DataError as error:
        log(f"Health signals before epoch {checkpoint.epoch} are lost ({error}); the doctor watches from here on")
        return []
    return [row for row in rows if row.epoch <= checkpoint.epoch]


def doctor_settings(config: TrainConfig, run_dir: Path) -> Settings | None:
    """What the doctor's fixes may read of a run: its config, and the config file lr-find takes.
    None for a run with faults on purpose: the doctor is not told what was broken."""
    return None if config.fault else Settings(config.to_dict(), str(run_dir / CONFIG_FILE))


def run_settings(run_dir: Path, notes: list[str] | None = None) -> Settings | None:
    """``doctor_settings`` of a run folder, from its config.toml; None if there is none, or if it
    cannot be read, which is added to ``notes`` (the fixes are then general ones)."""
    path = run_dir / CONFIG_FILE
    if not path.exists():
        return None
    try:
        return doctor_settings(TrainConfig.load(path), run_dir)
    except (OSError, ScratchnnError) as error:
        if notes is not None:
            notes.append(f"the run's settings cannot be read ({error}): the fixes use none of its values")
        return None


def diagnose_history(history: list[EpochResult], rows: list[Row], settings: Settings | None = None) -> list[Finding]:
    """Every finding the doctor's rules make of a run's epochs and health rows."""
    return diagnose([dataclasses.asdict(r) for r in history], rows, settings)


def health_summary(rows: list[Row], findings: list[Finding]) -> dict:
    """What the model file keeps of the run's health: the last value of each signal, and the findings."""
    last: dict[str, dict[str, float]] = {}
    for row in rows:
        last.setdefault(row.layer, {})[row.signal] = row.value
    return {"last": last, "findings": [f.to_dict() for f in findings]}


def doctor_summary(findings: list[Finding], run_dir: Path, evaluations: int, cut_short: bool = False) -> str:
    """The run's last line from the doctor: the findings counted by severity, and where to read them."""
    if not findings:
        return f"Doctor: {no_findings(evaluations, cut_short)}"
    counted = {s: sum(f.severity == s for f in findings) for s in ("error", "warning", "advice")}
    counts = ", ".join(f"{n} {s}{'s' if n > 1 and s != 'advice' else ''}" for s, n in counted.items() if n)
    ids = " ".join(f"[{f.id}]" for f in findings)
    return f"Doctor: {counts}: {ids}; details: scratchnn doctor {shell_word(run_dir)}"


STILL_FALLING = 0.02  # the train loss fell by more than this share over the last fifth of the run ...
STILL_RISING = 0.01  # ... and the dev accuracy rose by more than this: the run ended mid-descent


# findings after which more epochs is no advice: a rate too high, memorising, a gap more epochs widens
NOT_MORE_EPOCHS = ("lr-too-high", "exploding", "dead-relu", "memorising", "overfitting", "train-dev-gap")


def more_epochs_may_help(findings: list[Finding]) -> bool:
    """Whether the still-learning note fits beside ``findings``: not beside an error, nor beside a
    finding whose fix is not more training (an mlp at lr 1 got [lr-too-high] and "--epochs 10"
    beside it; [train-dev-gap] says more epochs will not close its gap)."""
    return not any(f.severity == "error" or f.id in NOT_MORE_EPOCHS for f in findings)


def ended_early(history: list[EpochResult], epochs: int) -> bool:
    """Whether a run stopped before its ``epochs`` (early stopping, a Stop, a time limit): more
    --epochs is then no advice (doctor.show.no_findings's ``cut_short``)."""
    return bool(history) and history[-1].epoch < epochs


def still_learning(history: list[EpochResult], epochs: int, step: str = "epoch") -> str:
    """A note when the run ended while it was still learning fast (the doctor's rules see what
    went wrong, not a run cut short: "no findings" then reads as "nothing to gain"), else ''."""
    if len(history) < 2 or ended_early(history, epochs):  # stopped early, or by a patience rule
        return ""
    start = history[-1].epoch - max(1, epochs // 5)
    earlier = [r for r in history if r.epoch <= start] or history[:1]
    before, last = earlier[-1], history[-1]
    fell = 1 - last.train_loss / before.train_loss if before.train_loss > 0 else 0.0
    rose = last.dev_accuracy - before.dev_accuracy  # NaN without a dev set: no note
    if not (fell > STILL_FALLING and rose > STILL_RISING):
        return ""
    return (f"Note: still learning when it ended: from {step} {before.epoch} to {last.epoch} the train loss fell "
            f"{fell:.0%} and the dev accuracy rose {100 * rose:.1f} points; more {step}s would likely help "
            f"(--epochs {2 * epochs})")


def still_learning_in(run_dir: Path, settings: Settings | None) -> str:
    """``still_learning``'s note for a run folder, from its metrics.csv and its settings' epochs
    (as ``train`` printed it at the end), else ''."""
    epochs = settings.get("epochs") if settings is not None else None
    try:
        rows = read_metrics_csv(Path(run_dir) / METRICS_FILE)
    except (ScratchnnError, OSError):
        return ""
    if not isinstance(epochs, int) or not rows:
        return ""
    history = [EpochResult(row["epoch"], row["train_loss"], row["train_accuracy"], row.get("dev_loss", math.nan),
                           row.get("dev_accuracy", math.nan), row.get("lr", math.nan), 0.0) for row in rows]
    return still_learning(history, epochs, "iteration" if settings.get("batch_size") == 0 else "epoch")
