"""Checkpoints: everything a run needs to continue exactly where it stopped.

One safetensors file (written atomically, like model files) holds the tensors: the model's
parameters and buffers ("model.0.W"), the optimizer's state ("optim.0.W.m"), early stopping's
best weights ("best.0.W"). Its JSON metadata holds the rest: the epoch, the metrics so far, the
optimizer's step count and learning rate, the schedule's and early stopping's counters, and the
state of every random generator, so a resumed run draws the same batches and dropout masks
as an uninterrupted one and ends with bit-identical weights.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .early_stopping import EarlyStopping
from .errors import ModelFileError
from .io import read_tensors, write_tensors
from .model import Sequential
from .train import EpochResult

CHECKPOINT_FILE = "checkpoint.safetensors"


def save_checkpoint(path, *, model: Sequential, optimizer, schedule=None,
                    early_stopping: EarlyStopping | None = None, generators: dict[str, np.random.Generator],
                    history: list[EpochResult], config: dict | None = None, finished: bool = False) -> Path:
    """Write the state after the last epoch in ``history``; ``finished`` marks a completed run."""
    tensors = {f"model.{name}": array for name, array in model.state_dict().items()}
    optim_state = optimizer.state_dict()
    tensors.update((f"optim.{name}.{key}", array) for name, state in optim_state["state"].items()
                   for key, array in state.items())
    stopping = None
    if early_stopping is not None:
        stopping = early_stopping.state_dict()
        tensors.update((f"best.{name}", array) for name, array in stopping.pop("best_weights").items())
    metadata = {
        "kind": "checkpoint", "epoch": history[-1].epoch if history else 0, "finished": finished,
        "history": [dataclasses.asdict(r) for r in history],
        "optimizer": {"lr": optim_state["lr"], "steps": optim_state["steps"]},
        "schedule": schedule.state_dict() if schedule is not None else None,
        "early_stopping": stopping,
        "generators": {name: gen.bit_generator.state for name, gen in generators.items()},
        "architecture": model.config(), "config": config,
    }
    return write_tensors(path, tensors, metadata)


@dataclass
class Checkpoint:
    """A checkpoint as read back; ``restore`` puts it into freshly built training objects."""

    path: Path
    epoch: int
    history: list[EpochResult]
    tensors: dict[str, np.ndarray]
    metadata: dict

    def restore(self, *, model: Sequential, optimizer, schedule=None,
                early_stopping: EarlyStopping | None = None,
                generators: dict[str, np.random.Generator]) -> None:
        meta = self.metadata
        try:
            model.load_state_dict(self._group("model"))
            state: dict[str, dict[str, np.ndarray]] = {}
            for key, array in self._group("optim").items():
                name, slot = key.rsplit(".", 1)
                state.setdefault(name, {})[slot] = array
            optimizer.load_state_dict({**meta["optimizer"], "state": state})
            if schedule is not None and meta.get("schedule") is not None:
                schedule.load_state_dict(meta["schedule"])
            if early_stopping is not None and meta.get("early_stopping") is not None:
                early_stopping.load_state_dict({**meta["early_stopping"], "best_weights": self._group("best")})
            for name, generator in generators.items():
                generator.bit_generator.state = meta["generators"][name]
        except (KeyError, ValueError, TypeError) as error:
            raise ModelFileError(f"{self.path}: does not fit this run ({error}); "
                                 "was it written by another version or config?") from None

    def _group(self, prefix: str) -> dict[str, np.ndarray]:
        start = len(prefix) + 1
        return {key[start:]: array for key, array in self.tensors.items() if key.startswith(prefix + ".")}


def load_checkpoint(path) -> Checkpoint:
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no checkpoint to resume from (a run writes one after its first epoch)")
    tensors, metadata = read_tensors(path)
    if metadata.get("kind") != "checkpoint":
        raise ModelFileError(f"{path}: not a scratchnn checkpoint")
    history = [EpochResult(**row) for row in metadata["history"]]
    return Checkpoint(path, int(metadata["epoch"]), history, tensors, metadata)
