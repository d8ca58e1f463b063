"""Named, documented training configurations (``scratchnn train --preset NAME``)."""
from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path

from ..data.augment import RECORDED_SINCE, Augmentation, augmentation_for, unrecorded
from ..errors import ConfigError, ScratchnnError
from ..io import MODEL_FILE, read_metadata
from ..optim.schedule_options import OPTION_USERS
from .checkpoint import check_evaluations
from .config import CONFIG_FILE, SCHEDULE_KEYS, TrainConfig, plural
from .options import option_of, options_of
from .run_data import check_data_files, locate_data, with_data

PRESETS: dict[str, TrainConfig] = {
    # The seed tutorial exactly: 784-10-10, weights and biases U[-0.5, 0.5), full-batch gradient
    # descent, lr 0.1, 500 iterations, 1,000 dev images, a line every 10 iterations. ~85% dev.
    "seed": TrainConfig(preset="seed", hidden=[10], init="seed_uniform", bias_init="seed_uniform",
                        optimizer="sgd", lr=0.1, epochs=500, batch_size=0, dev_size=1000, eval_every=10,
                        checkpoint_every=10),
    # The seed grown up: two wide hidden layers with batch normalisation, dropout on the pixels
    # and on the hidden units, AdamW on mini-batches with one warm-up epoch and a cosine decay.
    # 96.9% of the 9,000/1,000 split in ~35 s; 90.6% of Fashion-MNIST's test set in ~3.5 minutes.
    "mlp": TrainConfig(preset="mlp", hidden=[512, 256], init="he_normal", bias_init="zeros", batchnorm=True,
                       dropout=0.3, input_dropout=0.2, optimizer="adamw", lr=2e-3, weight_decay=0.01,
                       schedule="cosine", warmup=1.0, epochs=40, batch_size=128, dev_size=1000, eval_every=1),
    # The same recipe one layer deeper: 97.4% of the 9,000/1,000 split, in about the same time.
    "deep-mlp": TrainConfig(preset="deep-mlp", hidden=[512, 256, 128], init="he_normal", bias_init="zeros",
                            batchnorm=True, dropout=0.3, input_dropout=0.2, optimizer="adamw", lr=2e-3,
                            weight_decay=0.01, schedule="cosine", warmup=1.0, epochs=40, batch_size=128,
                            dev_size=1000, eval_every=1),
    # Two convolution blocks (3x3, 32 then 64 channels, ReLU, 2x2 max pooling), one dense layer,
    # trained on randomly shifted, rotated, scaled and elastically distorted digits. Every batch
    # is new to it, so it takes 30 epochs to settle: 15 gave 98.2% of the 9,000/1,000 split, 30 99.0%
    # (seeds 0-2: 99.0, 99.1, 99.1% since a fifth of the digits stay sharp, data/augment.py).
    "cnn": TrainConfig(preset="cnn", conv=[32, 64], kernel_size=3, hidden=[128], init="he_normal",
                       bias_init="zeros", dropout=0.3, augment=True, optimizer="adamw", lr=2e-3,
                       weight_decay=0.01, schedule="cosine", warmup=1.0, epochs=30, batch_size=128,
                       dev_size=1000, eval_every=1),
    # The record attempt: VGG-style blocks of two 3x3 'same' convolutions (32-32, then 64-64), each
    # followed by batch norm and ReLU, 2x2 max pooling after each block, a 256-unit dense head with
    # dropout, AdamW with warm-up and cosine decay, the digit augmentation. Every ingredient is the
    # standard one of the strongest from-scratch MNIST CNNs. 99.4-99.9% of the 9,000/1,000 splits
    # of seeds 0-8 (mean 99.63%) in ~3.5 minutes; the README gives every figure and what was tried.
    "cnn-best": TrainConfig(preset="cnn-best", conv=[32, 64], conv_repeat=2, kernel_size=3, padding=[1, 1],
                            hidden=[256], init="he_normal", bias_init="zeros", batchnorm=True, dropout=0.4,
                            augment=True, optimizer="adamw", lr=3e-3, weight_decay=0.01, schedule="cosine",
                            warmup=1.0, epochs=30, batch_size=128, dev_size=1000, eval_every=1),
    # LeNet-5 (LeCun et al. 1998) on 28x28 inputs: the first convolution is padded by 2, as the
    # paper padded its digits to 32x32; its layer sizes, tanh and average pooling, and distorted
    # training digits, as in the paper's best run. Simplified where the paper is of its time: a
    # plain tanh (the paper scales it, 1.7159·tanh(2x/3)), pooling without the paper's trainable
    # coefficient, every C3 map reading all six S2 maps (the paper: a chosen subset), softmax
    # outputs instead of its RBF units. 99.1% of the 9,000/1,000 split in ~40 seconds
    # (without augmentation 97.0%; with 15 epochs at lr 1e-3, 95.6%).
    "lenet5": TrainConfig(preset="lenet5", conv=[6, 16], kernel_size=5, padding=[2, 0], pool="avg",
                          hidden=[120, 84], activation="tanh", init="glorot_uniform", bias_init="zeros",
                          augment=True, optimizer="adam", lr=3e-3, schedule="cosine", epochs=30,
                          batch_size=128, dev_size=1000, eval_every=1),
}

DEFAULT_PRESET = "mlp"


def _unused_schedule_options(config: TrainConfig, settings: dict, source: str, log) -> dict:
    """{field: 0} for each schedule option of ``config`` (from ``source``) that ``settings`` leaves
    as it was and ``settings["schedule"]`` does not use (``validate`` refuses only what the user typed)."""
    schedule = settings["schedule"]
    unused = {}
    for name, keys in SCHEDULE_KEYS.items():
        value = getattr(config, name)
        if name in settings or not value or any(schedule in OPTION_USERS[key] for key in keys):
            continue
        unused[name] = type(value)(0)
        flag = option_of(TrainConfig, name).flag
        why = "warms up by itself (over 30% of the run)" if name == "warmup" else f"does not use {flag}"
        log(f"Note: the {schedule} schedule {why}; {source} {flag} {value:g} is left out")
    return unused


def _padding_for_blocks(padding: list[int], conv: list, source: str, log) -> dict:
    """{"padding": ...} fitted to a ``conv`` given with fewer or more blocks than ``source``'s
    padding pads (``--preset cnn-best --conv 32`` was refused for a --padding 1,1 no one typed):
    none for no blocks, the same for every block when the recipe pads them all alike; else a
    ConfigError asking for --padding."""
    if not padding or len(padding) == len(conv):
        return {}
    if not conv or len(set(padding)) == 1:
        fitted = [padding[0]] * len(conv)
        given = f"--conv {','.join(map(str, conv))} has {len(conv)}" if conv else "the network has none"
        log(f"Note: {source} --padding {','.join(map(str, padding))} pads {plural(len(padding), 'convolution block')}; "
            f"{given}: " + (f"--padding {','.join(map(str, fitted))}" if conv else "no padding"))
        return {"padding": fitted}
    example = ",".join(map(str, (padding + [0] * len(conv))[:len(conv)]))
    raise ConfigError(f"--conv {','.join(map(str, conv))} has {plural(len(conv), 'convolution block')}, and {source} "
                      f"--padding {','.join(map(str, padding))} pads {len(padding)} (a value a block): give --padding "
                      f"with {plural(len(conv), 'value')}, e.g. --padding {example}")


def get_preset(name: str) -> TrainConfig:
    """A fresh copy of the named preset (safe to modify)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return TrainConfig.from_dict(PRESETS[name].to_dict())


def resolve_config(preset: str | None = None, settings: dict | None = None, data: dict | None = None, *,
                   config_file: Path | None = None, log=print) -> TrainConfig:
    """A preset (default: DEFAULT_PRESET), then a config file, then ``settings`` ({field: value}),
    then the data options ``data``: later ones override earlier ones. Validated.

    A config file alone starts from the defaults (the settings an older version's config.toml
    leaves out are what that version did: a feature added since, off); with ``preset`` it starts
    from that preset, so a file need only hold what it changes. A file naming a preset whose
    settings it leaves out gets a note saying which came from the defaults instead.

    A warm-up the user did not set that would last the whole run (``epochs`` lowered below a
    preset's warm-up) shrinks to the same share of the run instead of being refused; a schedule
    option the user did not set that the schedule they chose does not use (the mlp recipe's
    warm-up under ``--schedule one-cycle``, which warms up itself) is left out, with a note.
    """
    settings, data = dict(settings or {}), dict(data or {})
    if config_file and Path(config_file).is_dir() and (Path(config_file) / CONFIG_FILE).is_file():
        config_file = Path(config_file) / CONFIG_FILE  # a run folder: the config it saved
    if config_file:  # an older config's relative data paths: from here, else from the config's folder
        folder = Path(config_file).parent
        config = with_recorded_augmentation(locate_data(_config_file(config_file, preset, log), folder), folder, log)
        if not data.keys() & {"dataset", "csv", "images", "labels"}:
            check_data_files(config)  # a repeat trains on the data the run did, or says why it cannot
    else:
        config = get_preset(preset or DEFAULT_PRESET)
    epochs = settings.get("epochs")
    if _outlasts(config, epochs) and "warmup" not in settings:
        settings["warmup"] = _shrunk_warmup(config, epochs, "--epochs", log)
    source = f"{Path(config_file).name}'s" if config_file else f"the {config.preset} recipe's"
    if "schedule" in settings:
        settings.update(_unused_schedule_options(config, settings, source, log))
    if isinstance(settings.get("conv"), list) and "padding" not in settings:
        settings.update(_padding_for_blocks(config.padding, settings["conv"], source, log))
    # the data first: data of another kind drops the old config's augmentation table, not one given now
    config = with_data(config, data)
    for name, value in settings.items():  # a table (the augmentation) changes only the entries given
        setattr(config, name, {**getattr(config, name), **value} if isinstance(value, dict) else value)
    config = config.validate()
    _refuse_runaway(config)
    for line in ignored_settings(config, settings) + _augmentation_notes(config, settings):
        log(line)
    if settings.get("optimizer") == "adamw" and not config.weight_decay:
        log("Note: adamw without weight decay is adam (the decoupled decay is all that sets it apart); "
            "the usual amount is --weight-decay 0.01")
    return config


def _config_file(path: Path, preset: str | None, log) -> TrainConfig:
    """The config file at ``path`` over ``preset`` (given: its settings are the base) or the defaults;
    a preset's warm-up that the file's epochs would end within is shrunk to fit, as for --epochs."""
    values = TrainConfig.read_file(path)
    named = values.get("preset")
    known = named if isinstance(named, str) and named in PRESETS else None
    # (with --preset the file lies over it already: the review, the note then repeated itself)
    near = difflib.get_close_matches(named, PRESETS, n=1) if isinstance(named, str) and not known and not preset else []
    if near:  # a typo trained the defaults without a word (a name of one's own only names the run folders)
        log(f"Note: {Path(path).name} names the preset {named[:40]!r}, which scratchnn does not have (did you mean "
            f"{near[0]!r}?): its settings are the defaults and the file's; to start from {near[0]}'s, add "
            f"--preset {near[0]}")
    if preset and known and known != preset:
        raise ConfigError(f"{path} names the preset {known!r}, --preset names {preset!r}: drop one of them")
    if preset:  # a file that shortens the run shrinks the preset's warm-up, as --epochs does (the docs audit)
        base = get_preset(preset)
        if _outlasts(base, values.get("epochs")) and "warmup" not in values:
            base.warmup = _shrunk_warmup(base, values["epochs"], f"{Path(path).name}'s epochs =", log)
        return TrainConfig.load(path, base=base)
    config = TrainConfig.load(path)
    if known:
        recipe, default = PRESETS[known].to_dict(), TrainConfig().to_dict()
        missing = [name for name in recipe if name not in values and recipe[name] != default[name]]
        if missing:
            log(f"Note: {Path(path).name} names the preset {known!r} but leaves out {len(missing)} of its settings "
                f"({', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''}): they are the defaults, not "
                f"{known}'s; to start from {known}'s, add --preset {known}")
    return config


def _outlasts(config: TrainConfig, epochs) -> bool:
    """Whether ``config``'s warm-up lasts the whole of a run of ``epochs`` (a valid count)."""
    valid = isinstance(epochs, int) and not isinstance(epochs, bool) and epochs >= 1  # else validate() says so
    return valid and 0 < config.warmup >= epochs


def _shrunk_warmup(config: TrainConfig, epochs: int, named: str, log) -> float:
    """The recipe's warm-up at the same share of a run of ``epochs``, with a note saying so."""
    warmup = config.warmup / config.epochs * epochs
    log(f"Note: the {config.preset} recipe's {config.warmup:g}-epoch warm-up is as long as {named} {epochs}; "
        f"using {warmup:.3g} epochs, the same share of the run")
    return warmup


def _refuse_runaway(config: TrainConfig) -> None:
    """Settings that only make a new run diverge (the fuzz audit: --weight-decay 1e30 trained to NaN,
    a step "decay" of 50 took the rate from 0.027 to 1.36, and the doctor blamed --lr), or fail
    part-way (more evaluations than a checkpoint can list). Checked here, for new runs only: a run
    an older version trained with them still loads, serves and resumes."""
    if config.weight_decay > 1:
        raise ConfigError(f"--weight-decay must be in [0, 1] (above 1 no gradient step keeps up with the decay), got "
                          f"{config.weight_decay:g}")
    check_evaluations(config)
    if config.lr_gamma > 1 and config.schedule in ("step", "exponential"):
        raise ConfigError(f"--lr-gamma multiplies the learning rate as the {config.schedule} schedule decays it and "
                          f"must be in (0, 1] (above 1 the rate grows), got {config.lr_gamma:.10g}")


def _augmentation_notes(config: TrainConfig, settings: dict) -> list[str]:
    """A note for a config file's augmentation table that does nothing (``augment = false``), and
    for mirrors on data whose default has none (digits: a mirrored 2 is not a 2)."""
    if config.augmentation and not config.augment and "augmentation" not in settings:  # --augmentation: noted
        return [f"Note: the config file's augmentation table ({', '.join(config.augmentation)}) does nothing "
                "with augment = false; add --augment to train with it"]
    flip = config.augment and config.build_augmentation().flip
    if flip and not augmentation_for(config.dataset).flip:
        return [f"Note: flip={flip:g} mirrors images left to right: right for clothes, wrong for digits (a "
                "mirrored 2, 3, 4, 5, 7 or 9 is not that digit); leave flip at 0 for digits"]
    return []


def ignored_settings(config: TrainConfig, settings: dict) -> list[str]:
    """A note for each option the user set that does nothing in ``config`` (``--kernel-size 5``
    for a network without convolutions): set, it looks used. Strict options are errors instead."""
    specs, default = options_of(TrainConfig), TrainConfig()
    return [f"Note: {spec.flag} {spec.shown(value)} does nothing here; it applies {spec.applies_to}"
            for name, value in settings.items()
            for spec in [specs.get(name)]
            if spec is not None and spec.applies_to and not spec.strict and value != getattr(default, name)
            and not spec.applies_here(config)]


def with_recorded_augmentation(config: TrainConfig, folder: Path, log=print) -> TrainConfig:
    """``config`` with the augmentation the run saved in ``folder`` trained with, when its
    config.toml predates configs recording it (it says only ``augment = true``): the one its
    model file records, or for a model file older than such records what those versions drew
    (``unrecorded``), so the repeat is exact even where this version's default has changed since
    (a note says so). Unchanged without a readable model file."""
    if not config.augment or config.augmentation or not (folder / MODEL_FILE).is_file():
        return config
    try:
        metadata = read_metadata(folder / MODEL_FILE)
        recorded = Augmentation.from_record(metadata.get("augmentation"))
    except (ScratchnnError, OSError):  # an unreadable model file is for the commands that read it to report
        return config
    current = config.build_augmentation()
    if "augmentation" not in metadata:  # trained before runs recorded it (the compatibility audit)
        recorded = unrecorded(current)
        if recorded != current:
            log(f"Note: {folder}'s model file does not record its augmentation (a version before {RECORDED_SINCE} "
                f"wrote it): repeating what those versions drew ({recorded.describe()}); this version's default is "
                f"{current.describe()}")
    elif recorded is None:
        return config
    elif recorded != current:
        log(f"Note: repeating the augmentation {folder}'s model file records ({recorded.describe()}); "
            f"this version's default is {current.describe()}")
    return dataclasses.replace(config, augmentation=recorded.to_dict())
