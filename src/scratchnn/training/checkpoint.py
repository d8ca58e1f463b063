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

from ..data.augment import RECORDED_SINCE, Augmentation, unrecorded
from ..errors import ConfigError, ModelFileError, names_in_message, shell_word
from ..io import check_shapes, read_tensors, write_tensors
from ..model import Sequential
from ..model_schema import buffer_names, check_type
from ..nn.schema import check_int, check_number, is_number, show
from ..optim.schedule_state import check_state
from .config import CONFIG_FILE, TrainConfig
from .early_stopping import EarlyStopping
from .fit import EpochResult
from .options import options_of

CHECKPOINT_FILE = "checkpoint.safetensors"
MAX_EPOCHS = 10**6
MAX_EVALUATIONS = 20_000  # a history of 20,000 takes 3.6 MB of a checkpoint's 8 MB header (io.MAX_HEADER_BYTES)
EPOCH_FIELDS = {field.name: field.type for field in dataclasses.fields(EpochResult)}


def check_evaluations(config: TrainConfig) -> None:
    """A ConfigError for a run of more evaluations than its checkpoint can list: each adds a row
    to its history, metrics.csv and health.csv (60,000 made a checkpoint too big to write, part-way
    through the run; the long-run audit)."""
    evaluations = config.evaluations()
    if evaluations > MAX_EVALUATIONS:
        raise ConfigError(f"--epochs {config.epochs} with --eval-every {config.eval_every} makes {evaluations:,} "
                          f"evaluations, and a run keeps at most {MAX_EVALUATIONS:,} (each adds a row to the "
                          f"checkpoint, metrics.csv and health.csv): give --eval-every "
                          f"{-(-config.epochs // MAX_EVALUATIONS)} or more")


def save_checkpoint(path, **state) -> Path:
    """Write the state after the last epoch in ``history``; ``finished`` marks a completed run.

    Takes the keywords of ``checkpoint_contents``.
    """
    return write_tensors(path, *checkpoint_contents(**state))


def checkpoint_contents(*, model: Sequential, optimizer, schedule=None,
                        early_stopping: EarlyStopping | None = None, generators: dict[str, np.random.Generator],
                        history: list[EpochResult], config: dict | None = None,
                        augmentation: Augmentation | None = None,
                        finished: bool = False) -> tuple[dict[str, np.ndarray], dict]:
    """(tensors, metadata) of a checkpoint, as ``save_checkpoint`` writes them and ``Checkpoint`` holds them.

    ``augmentation`` is the one the run draws its training batches with: a resumed run keeps it
    even when a later version of scratchnn changed the dataset's default.
    """
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
        "history": [dict(vars(r)) for r in history],  # asdict deep-copies: 45 s of a 4,000-evaluation run's saves
        "optimizer": {"lr": optim_state["lr"], "steps": optim_state["steps"]},
        "schedule": schedule.state_dict() if schedule is not None else None,
        "early_stopping": stopping,
        "generators": {name: gen.bit_generator.state for name, gen in generators.items()},
        "architecture": model.config(), "config": config,
        "augmentation": Augmentation.record(augmentation),
    }
    return tensors, metadata


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
        # versions before augmentation (2026-12-01) kept no "augment" generator: their runs drew none
        missing = sorted(set(generators) - set(meta.get("generators", {})) - {"augment"})
        if missing:  # a KeyError read "does not fit this run ('augment')" (the compatibility audit)
            raise ModelFileError(f"{self.path}: an older version wrote it, without the state of the run's "
                                 f"{names_in_message(missing)} random draws, so this one cannot continue it "
                                 "exactly; start it again: scratchnn train --config "
                                 f"{shell_word(self.path.parent / CONFIG_FILE)}")
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
                if name in meta["generators"]:
                    generator.bit_generator.state = meta["generators"][name]
        except (KeyError, ValueError, TypeError) as error:
            raise ModelFileError(f"{self.path}: does not fit this run ({error}); "
                                 "was it written by another version or config?") from None

    @property
    def records_augmentation(self) -> bool:
        """False for a checkpoint written before checkpoints said which augmentation they used."""
        return "augmentation" in self.metadata

    @property
    def augmentation(self) -> Augmentation | None:
        """The augmentation the run was trained with (None: none, or not recorded)."""
        return Augmentation.from_record(self.metadata.get("augmentation"))  # checked when loaded

    def _group(self, prefix: str) -> dict[str, np.ndarray]:
        start = len(prefix) + 1
        return {key[start:]: array for key, array in self.tensors.items() if key.startswith(prefix + ".")}


def augmentation_to_continue(current: Augmentation | None, checkpoint: Checkpoint | None,
                             from_table: bool = False) -> tuple[Augmentation | None, str]:
    """(the augmentation a run trains with, a note for its log or ''): ``current`` (its config's;
    ``from_table``: its config.toml has an augmentation table) on a fresh start; on a resume the
    one the run started with, which its checkpoint records, so that neither a later change to a
    dataset's default (for a config.toml from before configs recorded it) nor an edited config
    changes a run half-way. A checkpoint that records none continues with what the versions that
    wrote such checkpoints drew (``unrecorded``), unless config.toml has a table."""
    if checkpoint is None:
        return current, ""
    if not checkpoint.records_augmentation:
        if current is None:
            return None, ""
        drew = current if from_table else unrecorded(current)
        told = (f"{CONFIG_FILE}'s table ({current.describe()})" if from_table else
                f"what those versions drew ({drew.describe()})" + ("" if drew == current else
                f", not this version's default ({current.describe()}); an augmentation table in "
                f"{CONFIG_FILE} chooses another"))
        return drew, (f"Note: the checkpoint does not record which augmentation the run started with (a version "
                      f"before {RECORDED_SINCE} wrote it); continuing with {told}")
    started = checkpoint.augmentation
    if started == current:
        return current, ""

    def words(augmentation):
        return augmentation.describe() if augmentation else "none"

    return started, (f"Note: continuing with the augmentation the run started with ({words(started)}), "
                     f"which its checkpoint records, instead of {words(current)}")


# What a resumed run may take from an edited config.toml: how often it evaluates, checkpoints and is
# diagnosed, its BLAS threads and its layers' code (the textbook ones compute the same numbers); the
# augmentation has its own rule (augmentation_to_continue). Everything else made the run.
MAY_CHANGE = frozenset({"eval_every", "checkpoint_every", "threads", "textbook", "doctor", "augment",
                        "augmentation"})
RUN_GROUPS = ("network", "optimisation", "training loop")
# the faults, and what identifies the data (a moved file is fine: its path may change, its digest not)
WHAT_IT_READ = ("fault", "dataset", "class_names", "transpose", "csv_sha256", "images_sha256", "labels_sha256")


def refuse_edits(config, checkpoint: Checkpoint | None, config_file: Path) -> None:
    """A ConfigError when ``config`` (config.toml as it is now) changed what trains since the run
    began, as its ``checkpoint`` records it: resumed, the run goes on with what it began with (the
    checkpoint's schedule and optimizer state), so an edited lr was ignored while the folder said it
    was used, and more epochs ran at a finished cosine's rate 0. Checkpoints of older versions
    record no config: nothing to hold it to."""
    began = _began(checkpoint)
    if began is None:
        return
    now = config.to_dict()
    # a plateau schedule and early stopping count evaluations: there, how often is what trains
    counted = now.get("schedule") == "plateau" or bool(now.get("patience"))
    changed = [name for name, spec in options_of(type(config)).items()
               if (spec.group in RUN_GROUPS or name in WHAT_IT_READ)
               and (name not in MAY_CHANGE or (name == "eval_every" and counted))
               and name in began and began[name] != now.get(name)]
    if changed:
        edits = ", ".join(f"{name} {show(began[name])} -> {show(now.get(name))}" for name in changed[:4])
        raise ConfigError(f"{config_file} was edited after the run began ({edits}); --resume continues a run as it "
                          f"began: put the values back, or train the edited settings anew with "
                          f"'scratchnn train --config {shell_word(config_file)} --out NEW'")


def rounding_edits(config, checkpoint: Checkpoint | None) -> str:
    """A note when config.toml now runs the layers on other code than the run began with (BLAS
    threads, textbook layers): the same math rounded in another order, so the resumed run ends
    near, not bit for bit at, where the uninterrupted one would (max |d| 0.017 after 2 epochs)."""
    began = _began(checkpoint)
    if began is None:
        return ""
    now = config.to_dict()
    edits = [f"{name} {show(began[name])} -> {show(now[name])}" for name in ("threads", "textbook")
             if name in began and began[name] != now[name]]
    return (f"Note: {', '.join(edits)} since the run began: the same math, rounded in another order, so the weights "
            "end near, not bit for bit at, those of the run never stopped") if edits else ""


def _began(checkpoint: Checkpoint | None) -> dict | None:
    """The config the run began with, as its checkpoint records it (None: an older version's)."""
    began = checkpoint.metadata.get("config") if checkpoint is not None else None
    return began if isinstance(began, dict) else None


def load_checkpoint(path) -> Checkpoint:
    """Read and check a checkpoint: its metadata against the layout ``save_checkpoint`` writes
    and its tensors against the architecture, before anything is restored (see ``io.read_tensors``)."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no checkpoint to resume from (a run writes one after its first epoch)")
    remedy = ("it cannot be resumed from; train the same settings anew: "
              f"scratchnn train --config {shell_word(path.parent / CONFIG_FILE)}")
    try:
        tensors, metadata = read_tensors(path, check=checkpoint_layout, remedy=remedy)
    except ModelFileError as error:  # a value out of range is damage too: say how to go on, as for the rest
        said = str(error)
        raise ModelFileError(said if said.endswith(remedy) else f"{said}; {remedy}") from None
    history = [EpochResult(**row) for row in metadata["history"]]
    return Checkpoint(path, metadata["epoch"], history, tensors, metadata)


def checkpoint_layout(metadata: dict, state: dict | None, tensors: dict[str, tuple[int, ...]]) -> None:
    """Check a checkpoint's metadata and that its tensors are the model's ("model."), its
    optimizer's (one slot set for every parameter, "optim.0.W.m") and early stopping's best
    weights ("best.", none or all); ModelFileError otherwise."""
    if metadata.get("kind") != "checkpoint":
        raise ModelFileError("not a scratchnn checkpoint (its metadata has no kind 'checkpoint')")
    if state is None:
        raise ModelFileError("no architecture in the checkpoint's metadata")
    _check_metadata(metadata)
    groups: dict[str, dict[str, tuple[int, ...]]] = {"model": {}, "optim": {}, "best": {}}
    for key, shape in tensors.items():
        prefix, _, name = key.partition(".")
        if prefix not in groups:
            raise ModelFileError(f"tensor {key!r} does not belong in a checkpoint (model., optim. or best.)")
        groups[prefix][name] = shape
    check_shapes(groups["model"], state, "model.")
    if groups["best"]:
        check_shapes(groups["best"], state, "best.")
    buffers = buffer_names()
    parameters = {name: shape for name, shape in state.items() if name.rsplit(".", 1)[1] not in buffers}
    slots: dict[str, set[str]] = {}
    for key, shape in groups["optim"].items():
        name, _, slot = key.rpartition(".")
        if name not in parameters or not slot.isidentifier():
            raise ModelFileError(f"tensor {'optim.' + key!r} names no parameter of the architecture")  # repr: one line
        if shape != parameters[name]:
            raise ModelFileError(f"tensor {'optim.' + key!r} has shape {shape}, the parameter has {parameters[name]}")
        slots.setdefault(name, set()).add(slot)
    if slots and (slots.keys() != parameters.keys() or len({frozenset(s) for s in slots.values()}) > 1):
        raise ModelFileError("the optimizer state does not hold the same slots for every parameter")


def _check_metadata(meta: dict) -> None:
    for key in ("epoch", "finished", "history", "optimizer", "generators"):
        if key not in meta:
            raise ModelFileError(f"checkpoint metadata has no {key!r}")
    epoch = check_int(meta["epoch"], "checkpoint epoch", 0, MAX_EPOCHS)
    check_type(meta["finished"], bool, "checkpoint 'finished'", "true or false")
    history = check_type(meta["history"], list, "checkpoint history", "a list of epoch results")
    if len(history) > MAX_EPOCHS:
        raise ModelFileError(f"checkpoint history holds {len(history):,} epochs (at most {MAX_EPOCHS:,})")
    last = 0
    for i, row in enumerate(history):
        where = f"checkpoint history entry {i}"
        check_type(row, dict, where, "an object")
        if row.keys() != EPOCH_FIELDS.keys():
            raise ModelFileError(f"{where} must hold exactly {', '.join(EPOCH_FIELDS)}, got {show(sorted(row))}")
        last = check_int(row["epoch"], f"{where} epoch", last + 1, epoch)
        for field in EPOCH_FIELDS:
            if field != "epoch" and not is_number(row[field]):
                raise ModelFileError(f"{where} {field} must be a number, got {show(row[field])}")
    if last != epoch:
        raise ModelFileError(f"checkpoint epoch {epoch} is not the last epoch of its history ({last})")
    optimizer = check_type(meta["optimizer"], dict, "checkpoint optimizer", "an object")
    if optimizer.keys() != {"lr", "steps"}:
        raise ModelFileError(f"checkpoint optimizer must hold exactly lr and steps, got {show(sorted(optimizer))}")
    check_number(optimizer["lr"], "checkpoint optimizer lr", 0, 1e6)
    check_int(optimizer["steps"], "checkpoint optimizer steps", 0)
    if meta.get("schedule") is not None:
        try:
            check_state(meta["schedule"], "checkpoint schedule")
        except ConfigError as error:
            raise ModelFileError(str(error)) from None
    stopping = meta.get("early_stopping")
    if stopping is not None:
        check_type(stopping, dict, "checkpoint early_stopping", "an object")
        if stopping.keys() != {"best", "best_epoch", "bad_evaluations"}:
            raise ModelFileError("checkpoint early_stopping must hold exactly best, best_epoch and bad_evaluations")
        if not is_number(stopping["best"]):
            raise ModelFileError(f"checkpoint early_stopping best must be a number, got {show(stopping['best'])}")
        check_int(stopping["best_epoch"], "checkpoint early_stopping best_epoch", 0, epoch)
        check_int(stopping["bad_evaluations"], "checkpoint early_stopping bad_evaluations", 0, MAX_EPOCHS)
    _check_augmentation(meta.get("augmentation"))
    generators = check_type(meta["generators"], dict, "checkpoint generators", "an object")
    for name, generator in generators.items():
        _check_generator(generator, f"checkpoint generator {show(name)}")


def _check_augmentation(values) -> None:
    """Every value in range (``check_metadata`` has checked it is an object of numbers)."""
    try:
        Augmentation.from_record(values)
    except ConfigError as error:
        raise ModelFileError(f"checkpoint augmentation: {error}") from None


def _check_generator(state, where: str) -> None:
    """A PCG64 bit-generator state, as ``np.random.default_rng().bit_generator.state`` gives it."""
    check_type(state, dict, where, "a PCG64 bit-generator state")
    inner = state.get("state")
    if state.keys() != {"bit_generator", "state", "has_uint32", "uinteger"} or state["bit_generator"] != "PCG64" \
            or type(inner) is not dict or inner.keys() != {"state", "inc"}:
        raise ModelFileError(f"{where} must be a PCG64 bit-generator state, got {show(state)}")
    check_int(inner["state"], f"{where} state", 0, 2**128 - 1)
    check_int(inner["inc"], f"{where} inc", 0, 2**128 - 1)
    check_int(state["has_uint32"], f"{where} has_uint32", 0, 1)
    check_int(state["uinteger"], f"{where} uinteger", 0, 2**32 - 1)


def training_done(checkpoint: Checkpoint, config: TrainConfig) -> bool:
    """True when the checkpoint holds the end of training: the last epoch, or early stopping's stop."""
    stopping = checkpoint.metadata.get("early_stopping")
    bad = stopping.get("bad_evaluations") if isinstance(stopping, dict) else None
    stopped = bool(config.patience) and isinstance(bad, int) and bad >= config.patience
    return checkpoint.epoch >= config.epochs or bool(checkpoint.metadata.get("finished")) or stopped
