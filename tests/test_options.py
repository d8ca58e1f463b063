"""One declaration per option: flags, checks, describe() and the report all come from it."""
import argparse
import dataclasses
import re

import pytest
from fuzzing import fuzz_examples
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchnn.cli.config_flags import add_option_arguments, given_options
from scratchnn.cli.main import build_parser, parse
from scratchnn.cli.train_cmd import resolve_config
from scratchnn.data.augment import CLOTHES, DIGITS
from scratchnn.errors import ConfigError, DataError
from scratchnn.training.config import TrainConfig
from scratchnn.training.options import TRAIN_GROUPS, option, options_of
from scratchnn.training.presets import get_preset


def train_args(*argv):
    return build_parser().parse_args(["train", *argv])


def test_every_option_with_a_group_is_a_train_flag_that_reaches_the_config():
    """Set each option to a value unlike its default through its generated flag."""
    specs = options_of(TrainConfig)
    assert set(specs) == {f.name for f in dataclasses.fields(TrainConfig)}, "every field is declared with option()"
    for name, spec in specs.items():
        if spec.group is None:
            continue
        default = getattr(TrainConfig(), name)
        if isinstance(default, bool):
            argv, expected = [spec.flag if not default else "--no-" + spec.flag[2:]], not default
        elif isinstance(default, list) and spec.choices:  # names, repeatable: --fault a --fault b,c
            expected = list(spec.choices[:3])
            argv = [spec.flag, expected[0].upper(), spec.flag, ",".join(expected[1:])]
        elif isinstance(default, list):
            argv, expected = [spec.flag, "3,2"], [3, 2]
        elif spec.choices:
            expected = next(c for c in spec.choices if c != default)
            argv = [spec.flag, expected.upper()]  # choices are case-insensitive
        else:
            expected = type(default)(7) if spec.below is None and spec.high is None else type(default)(spec.high or 0.5)
            argv = [spec.flag, str(expected)]
        args = train_args(*argv)
        assert given_options(args, (*TRAIN_GROUPS, "data")) == {name: expected}, name


def test_a_new_field_is_a_new_flag_with_its_help_and_range():
    @dataclasses.dataclass
    class Grown(TrainConfig):
        label_smoothing: float = option(0.0, "share of probability spread over the other classes",
                                        group="optimisation", metavar="EPS", low=0.0, below=1.0)

    parser = argparse.ArgumentParser()
    add_option_arguments(parser, ("optimisation",), config_class=Grown)
    assert parser.parse_args(["--label-smoothing", "0.1"]).label_smoothing == 0.1
    assert "share of probability spread" in parser.format_help()
    with pytest.raises(ConfigError, match=r"--label-smoothing must be in \[0, 1\), got 1.5"):
        Grown(label_smoothing=1.5).validate()


def test_mistakes_on_the_command_line_get_a_suggestion(capsys):
    for argv, message in ((["train", "--epoks", "3"], "did you mean --epochs?"),
                          (["train", "--optimizer", "Adm"], "did you mean 'adam'?"),
                          (["train", "--hidden", "128,,64"], "no empty value")):
        with pytest.raises(SystemExit) as exit:
            parse(argv)
        assert exit.value.code == 2
        err = capsys.readouterr().err
        assert message in err and err.startswith("usage: scratchnn train"), err
    assert parse(["train", "--optimizer", "AdamW"]).optimizer == "adamw"


@pytest.mark.parametrize("argv, message", [
    # the advice audit: --threads to evaluate was offered --transpose (which then read every image turned
    # over, 0.12), --scheduler the learning-rate --schedule, --tta --out, --set --preset, --lr --help
    (["evaluate", "RUN", "--threads", "1"], "--threads is a flag of train, lr-find, not of evaluate"),
    (["train", "--scheduler", "tcp://127.0.0.1:8786"], "--scheduler is a flag of sweep, not of train"),
    (["train", "--tta", "8"], "--tta is a flag of evaluate, predict, serve, not of train"),
    (["train", "--set", "train"], "--set is a flag of evaluate, predict, explain, report, not of train"),
    (["doctor", "RUN", "--fault", "zero-init"], "--fault is a flag of train, sweep, not of doctor"),  # not --faults
    (["train", "--dev_size", "3"], "; did you mean --dev-size?"),
    (["train", "--learning-rate", "3"], "unrecognized arguments: --learning-rate 3\n"),  # nothing close: nothing
])
def test_a_flag_of_another_command_is_named_as_such_and_only_close_ones_suggested(capsys, argv, message):
    with pytest.raises(SystemExit):
        parse(argv)
    err = capsys.readouterr().err
    assert err.endswith(message if message.endswith("\n") else message + "\n"), err
    assert "did you mean" not in err or "did you mean" in message


def test_sweep_hides_the_threads_it_refuses(capsys):
    """The advice audit: sweep --help offered --threads ("1 repeats a run bit for bit"), then refused every value."""
    from scratchnn.cli.main import main

    with pytest.raises(SystemExit):
        parse(["sweep", "--help"])
    assert "--threads" not in capsys.readouterr().out
    assert main(["sweep", "--out", "sw", "--threads", "1"]) == 1
    assert "--threads: every trial runs on one BLAS thread" in capsys.readouterr().err


def test_a_mistyped_or_missing_command_gets_the_commands(capsys):
    for argv, message in ((["trian", "--epochs", "3"], "unknown command 'trian'; did you mean 'train'? (the commands: "
                                                       "train, lr-find, sweep, evaluate, predict, explain, report,"),
                          (["draw"], "unknown command 'draw' (the commands: train,"),
                          ([], "train      train a network and save it in a run folder")):
        with pytest.raises(SystemExit) as exit:
            parse(argv)
        assert exit.value.code == 2
        err = capsys.readouterr().err
        assert message in err and err.startswith("usage: scratchnn [-h]"), err


def test_a_warmup_the_user_did_not_set_shrinks_to_fit_the_run(capsys):
    config = resolve_config(train_args("--epochs", "1"))  # the mlp preset warms up for 1 of 40 epochs
    assert config.warmup == pytest.approx(1 / 40) and config.epochs == 1
    assert "same share of the run" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="--warmup must be >= 0 and shorter than the run"):
        resolve_config(train_args("--epochs", "1", "--warmup", "1"))  # one the user typed is theirs
    for preset, epochs in (("seed", "0"), ("cnn", "0"), ("cnn", "-3")):  # no warm-up to shrink, or no run
        with pytest.raises(ConfigError, match=r"--epochs must be in \[1, 1000000\]"):
            resolve_config(train_args("--preset", preset, "--epochs", epochs))
        assert "warm-up" not in capsys.readouterr().out


def test_a_recipes_padding_follows_a_conv_given_without_one(capsys, tmp_path):
    """`--preset cnn-best --conv 32` was refused: "--padding needs one value per convolution block
    (1), got 1,1", a --padding the user never typed; the page's conv: [] for lenet5 likewise."""
    config = resolve_config(train_args("--preset", "cnn-best", "--conv", "32,64,128"))
    assert config.padding == [1, 1, 1]
    assert capsys.readouterr().out.startswith("Note: the cnn-best recipe's --padding 1,1 pads 2 convolution blocks; "
                                              "--conv 32,64,128 has 3: --padding 1,1,1\n")
    from scratchnn.training.presets import resolve_config as resolve_settings

    assert resolve_settings("lenet5", {"conv": []}, log=print).padding == []  # what the page sends
    assert "lenet5 recipe's --padding 2,0 pads 2 convolution blocks; the network has none: no padding" in (
        capsys.readouterr().out)
    with pytest.raises(ConfigError, match=r"^--conv 6 has 1 convolution block, and the lenet5 recipe's --padding "
                                          r"2,0 pads 2 \(a value a block\): give --padding with 1 value, "
                                          r"e\.g\. --padding 2$"):
        resolve_config(train_args("--preset", "lenet5", "--conv", "6"))
    with pytest.raises(ConfigError, match="--padding needs one value per convolution block"):
        resolve_config(train_args("--preset", "cnn-best", "--conv", "32", "--padding", "1,1"))  # typed: theirs
    saved = tmp_path / "mine.toml"
    saved.write_text("conv = [8, 16]\npadding = [2, 2]\n")
    assert resolve_config(train_args("--config", str(saved), "--conv", "8")).padding == [2]
    assert "Note: mine.toml's --padding 2,2 pads 2 convolution blocks" in capsys.readouterr().out


def test_a_config_file_that_shortens_a_presets_run_shrinks_its_warm_up_as_epochs_does(capsys, tmp_path):
    """The docs audit: the README's `--preset cnn --config mine.toml` with `epochs = 1` in the file
    was refused ("--warmup must be >= 0 and shorter than the run"), where --epochs 1 shrinks it."""
    (tmp_path / "mine.toml").write_text("epochs = 1\n")
    config = resolve_config(train_args("--preset", "cnn", "--config", str(tmp_path / "mine.toml")))
    assert (config.epochs, config.warmup) == (1, pytest.approx(1 / 30))
    assert "the cnn recipe's 1-epoch warm-up is as long as mine.toml's epochs = 1; using 0.0333" in (
        capsys.readouterr().out)
    (tmp_path / "theirs.toml").write_text("epochs = 1\nwarmup = 1.0\n")  # one the file sets is the file's
    with pytest.raises(ConfigError, match="--warmup must be >= 0 and shorter than the run"):
        resolve_config(train_args("--preset", "cnn", "--config", str(tmp_path / "theirs.toml")))


def test_a_schedule_option_the_user_did_not_set_is_left_out_where_their_schedule_does_not_use_it(capsys, tmp_path):
    config = resolve_config(train_args("--schedule", "one-cycle"))  # the mlp preset warms up for 1 epoch
    assert config.schedule == "one-cycle" and config.warmup == 0
    assert capsys.readouterr().out == ("Note: the one-cycle schedule warms up by itself (over 30% of the run); "
                                       "the mlp recipe's --warmup 1 is left out\n")
    with pytest.raises(ConfigError, match="the one-cycle schedule has its own warm-up"):
        resolve_config(train_args("--schedule", "one-cycle", "--warmup", "1"))  # one the user typed is theirs
    saved = tmp_path / "config.toml"
    saved.write_text('preset = "mine"\nschedule = "cosine"\nmin_lr = 1e-5\nwarmup = 2.0\n')
    config = resolve_config(train_args("--config", str(saved), "--schedule", "step"))
    assert (config.min_lr, config.warmup) == (0, 2.0)  # a step schedule warms up too
    assert capsys.readouterr().out == ("Note: the step schedule does not use --min-lr; config.toml's --min-lr 1e-05 is "
                                       "left out\n")
    resolve_config(train_args("--schedule", "cosine"))
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("line, message", [("lr = nan", "--lr must be a finite number, got nan"),
                                           ('augmentation = {rotate = "x"}', "augmentation rotate must be a number")])
def test_a_bad_value_in_a_config_file_names_the_file(tmp_path, line, message):
    saved = tmp_path / "mine.toml"
    saved.write_text(f'preset = "mlp"\n{line}\n')
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(saved))}: {re.escape(message)}"):
        resolve_config(train_args("--config", str(saved)))


def test_adamw_without_weight_decay_is_said_to_be_adam(capsys):
    resolve_config(train_args("--preset", "seed", "--optimizer", "adamw"))
    assert capsys.readouterr().out == ("Note: adamw without weight decay is adam (the decoupled decay is all that "
                                       "sets it apart); the usual amount is --weight-decay 0.01\n")
    for flags in (("--preset", "seed", "--optimizer", "adamw", "--weight-decay", "0.01"),
                  ("--preset", "mlp", "--optimizer", "adamw")):  # the mlp recipe's own decay
        resolve_config(train_args(*flags))
        assert capsys.readouterr().out == ""


def test_describe_reads_the_options_that_apply():
    assert get_preset("mlp").describe() == "adamw lr 0.002 (cosine, 1 warm-up epoch, weight decay 0.01), batch 128"
    assert get_preset("seed").describe() == "sgd lr 0.1, full batch"
    config = TrainConfig(optimizer="sgd", momentum=0.9, nesterov=True, schedule="step", lr_step=5, batch_size=64)
    assert config.describe() == "sgd lr 0.1 (step, every 5 epochs, momentum 0.9, nesterov), batch 64"
    adam = TrainConfig(optimizer="adam", momentum=0.9)  # momentum means nothing to adam: not described
    assert adam.describe() == "adam lr 0.1, full batch"


def test_an_option_noted_as_doing_nothing_does_nothing_rather_than_fail_later(capsys):
    """--momentum on adamw: the note said it does nothing; building the optimizer used to raise."""
    config = resolve_config(train_args("--preset", "mlp", "--momentum", "0.9"))
    assert "--momentum 0.9 does nothing here" in capsys.readouterr().out
    assert type(config.build_optimizer()).__name__ == "AdamW"
    sgd = resolve_config(train_args("--preset", "seed", "--momentum", "0.9", "--nesterov")).build_optimizer()
    assert (sgd.momentum, sgd.nesterov) == (0.9, True)


def test_describe_network_names_what_the_widths_leave_out():
    assert get_preset("mlp").describe_network() == "batch norm, dropout 0.3, input dropout 0.2"
    assert get_preset("cnn-best").describe_network("; ") == "; 2 convolutions per block, batch norm, dropout 0.4"
    assert get_preset("lenet5").describe_network() == "avg pooling, tanh"
    assert get_preset("seed").describe_network("; ") == ""  # the widths say it all
    mlp = TrainConfig(pool="avg", conv_dropout=0.25, activation="relu")  # conv options mean nothing to an MLP
    assert mlp.describe_network() == ""


def test_applicable_options_depend_on_the_network():
    mlp, cnn = get_preset("mlp").applicable(), get_preset("cnn").applicable()
    assert "kernel_size" not in mlp and "pool" not in mlp and "kernel_size" in cnn
    assert "lr_gamma" not in mlp and "monitor" not in mlp
    assert "lr_gamma" in TrainConfig(schedule="plateau").applicable()


def test_mirrored_digits_and_an_augmentation_table_that_does_nothing_get_a_note(tmp_path):
    """The augmentation audit: flip=0.5 on digits trained on mirrored 2s without a word, and a
    config file's table under augment = false was silently unused."""
    lines = []
    config = resolve_config(train_args("--preset", "cnn", "--augmentation", "flip=0.5"), lines.append)
    assert config.build_augmentation().flip == 0.5  # kept: only a note
    assert [line for line in lines if "mirror" in line] == [
        "Note: flip=0.5 mirrors images left to right: right for clothes, wrong for digits (a mirrored 2, 3, 4, 5, 7 "
        "or 9 is not that digit); leave flip at 0 for digits"]
    lines.clear()
    resolve_config(train_args("--preset", "cnn", "--dataset", "fashion-mnist"), lines.append)
    assert not [line for line in lines if "mirror" in line]  # the clothes' own default
    (tmp_path / "c.toml").write_text('augment = false\naugmentation = {rotate = 5.0, p = 0.5}\n')
    resolve_config(train_args("--config", str(tmp_path / "c.toml")), lines.append)
    assert lines == ["Note: the config file's augmentation table (rotate, p) does nothing with augment = false; "
                     "add --augment to train with it"]
    lines.clear()
    resolve_config(train_args("--config", str(tmp_path / "c.toml"), "--augment"), lines.append)
    assert lines == []


def test_schedule_options_are_checked_by_the_one_rule():
    with pytest.raises(ConfigError, match="--lr-gamma does not apply to the cosine schedule, only to step and "
                                          "exponential and plateau"):
        TrainConfig(schedule="cosine", lr_gamma=0.5).validate()
    TrainConfig(schedule="plateau", lr_gamma=0.5).validate()
    with pytest.raises(ConfigError, match="has its own warm-up"):
        TrainConfig(schedule="one-cycle", warmup=1.0).validate()


def test_an_option_set_where_it_does_nothing_gets_a_note():
    lines = []
    config = resolve_config(train_args("--preset", "mlp", "--kernel-size", "5", "--pool", "avg", "--momentum", "0.9",
                                       "--monitor", "dev_accuracy"), lines.append)
    assert config.kernel_size == 5  # kept as given: only a note, so a config that later adds --conv uses it
    assert [line for line in lines if "does nothing" in line] == [
        "Note: --kernel-size 5 does nothing here; it applies only to networks with convolutions (--conv)",
        "Note: --pool avg does nothing here; it applies only to networks with convolutions (--conv)",
        "Note: --momentum 0.9 does nothing here; it applies only to --optimizer sgd and rmsprop",
        "Note: --monitor dev_accuracy does nothing here; it applies only to early stopping (--patience > 0)"]
    lines.clear()
    resolve_config(train_args("--preset", "cnn", "--kernel-size", "5", "--pool", "max", "--threads", "1",
                              "--optimizer", "sgd", "--momentum", "0.9"), lines.append)
    assert not [line for line in lines if "does nothing" in line]  # each applies (or is the default)


def test_augmentation_flag_changes_only_the_settings_it_names(tmp_path):
    config = resolve_config(train_args("--preset", "cnn", "--augmentation", "rotate=5, p=0.5"))
    assert config.build_augmentation() == dataclasses.replace(DIGITS, rotate=5.0, p=0.5)
    # over a config file's table: the file's other entries stay
    TrainConfig(augment=True, augmentation={"shift": 1.0, "rotate": 20.0}).save(tmp_path / "mine.toml")
    config = resolve_config(train_args("--config", str(tmp_path / "mine.toml"), "--augmentation", "rotate=5"))
    assert config.augmentation == {"shift": 1.0, "rotate": 5.0}
    lines = []
    resolve_config(train_args("--preset", "mlp", "--augmentation", "rotate=5"), lines.append)
    assert lines == ["Note: --augmentation rotate=5 does nothing here; it applies only with --augment"]


def test_a_config_files_own_table_stays_when_the_command_line_names_data_of_another_kind(tmp_path):
    """The combinations audit: `augmentation = {rotate = 5.0, p = 0.5}` with --dataset fashion-mnist on the
    command line trained the clothes' table without a word (named in the file, or with --csv, it stayed);
    a run folder's recorded table, made for digits, is still the clothes' default for clothes."""

    mine = tmp_path / "mine.toml"
    mine.write_text("augmentation = {rotate = 5.0, p = 0.5}\n")
    config = resolve_config(train_args("--preset", "cnn", "--config", str(mine), "--dataset", "fashion-mnist"))
    assert config.build_augmentation() == dataclasses.replace(CLOTHES, rotate=5.0, p=0.5)
    recorded = resolve_config(train_args("--preset", "cnn")).with_augmentation_recorded()
    recorded.save(tmp_path / "run.toml")
    config = resolve_config(train_args("--config", str(tmp_path / "run.toml"), "--dataset", "fashion-mnist"))
    assert config.build_augmentation() == CLOTHES


def test_augmentation_flag_can_start_from_a_kinds_whole_table():
    """A CSV of Fashion-MNIST has no dataset name to pick the clothes' augmentation: name it."""
    config = resolve_config(train_args("--preset", "cnn", "--augmentation", "clothes"))
    assert config.build_augmentation() == CLOTHES
    config = resolve_config(train_args("--preset", "cnn", "--augmentation", "clothes, p=0.8"))
    assert config.build_augmentation() == dataclasses.replace(CLOTHES, p=0.8)
    config = resolve_config(train_args("--preset", "cnn", "--dataset", "fashion-mnist", "--augmentation", "digits"))
    assert config.build_augmentation() == DIGITS  # a table given with the dataset is kept (it was dropped)
    config = resolve_config(train_args("--preset", "cnn", "--dataset", "fashion-mnist", "--augmentation", "p=0.5"))
    assert config.build_augmentation() == dataclasses.replace(CLOTHES, p=0.5)


@pytest.mark.parametrize("text,message", [
    ("rotat=5", "unknown setting 'rotat' (did you mean 'rotate'?); known: shift, rotate, scale, shear, elastic_alpha, "
                "elastic_sigma, flip, p"),
    ("rotate=lots", "rotate must be a number, got 'lots'"),
    ("rotate", "expected NAME=VALUE pairs like shift=1.5,p=0.5 (or a whole table first: digits, clothes), "
               "got 'rotate'"),
    ("p=0.5,clothes", "'clothes' names a whole table: give it first, then NAME=VALUE pairs, e.g. clothes,p=0.5"),
    ("clothez", "unknown table 'clothez' (did you mean 'clothes'?); the whole tables: digits, clothes"),
    ("clothes,p=0.5,p=1", "p is given twice"),
    ("rotate=5,,p=1", "expected NAME=VALUE pairs"),
    ("rotate=5,rotate=6", "rotate is given twice in 'rotate=5,rotate=6'; give each setting once"),
])
def test_a_bad_augmentation_flag_is_one_line_naming_it(capsys, text, message):
    with pytest.raises(SystemExit):
        train_args("--preset", "cnn", "--augmentation", text)
    assert f"argument --augmentation: {message}" in capsys.readouterr().err


def test_an_augmentation_out_of_range_is_the_tables_own_error():
    with pytest.raises(ConfigError, match="augmentation rotate must be between 0 and 180 degrees, got -5"):
        resolve_config(train_args("--preset", "cnn", "--augmentation", "rotate=-5"))


def test_resume_refuses_an_augmentation_flag(tmp_path):
    from scratchnn.cli.train_cmd import run

    with pytest.raises(ConfigError, match="--resume continues a run with its own config; drop --augmentation"):
        run(train_args("--resume", str(tmp_path), "--augmentation", "rotate=5"))


@pytest.mark.parametrize("command", ["lr-find", "sweep"])
def test_commands_that_resolve_a_config_as_train_does_take_the_augmentation_flag_too(command):
    args = build_parser().parse_args([command, "--preset", "cnn", "--augmentation", "rotate=5"])
    assert resolve_config(args).augmentation == {"rotate": 5.0}


NAMES = ["shift", "rotate", "scale", "shear", "elastic_alpha", "elastic_sigma", "flip", "p"]


@settings(max_examples=fuzz_examples(300), deadline=None)
@given(st.one_of(st.text(max_size=60), st.lists(st.tuples(st.sampled_from(NAMES + ["rot", ""]),
                                                          st.one_of(st.floats(allow_nan=True), st.text(max_size=8))),
                                                max_size=5).map(lambda pairs: ",".join(f"{n}={v}" for n, v in pairs))))
def test_any_augmentation_text_is_a_table_or_a_one_line_refusal(text):
    from scratchnn.cli.config_flags import table_type

    try:
        table = table_type("--augmentation", NAMES)(text)
    except argparse.ArgumentTypeError as error:
        assert "\n" not in str(error) and str(error)
        return
    assert set(table) <= set(NAMES) and all(type(value) is float for value in table.values())
    try:
        TrainConfig(augment=True, augmentation=table).validate()
    except ConfigError as error:
        assert "\n" not in str(error) and "augmentation" in str(error)


def test_a_config_file_over_a_preset_holds_only_what_it_changes(tmp_path, capsys):
    """The config audit: `preset = "cnn"` with `epochs = 2` trained the 784-10-10 defaults in a folder named cnn,
    and --preset with --config was refused although --help says settings come from both, in that order."""
    mine = tmp_path / "mine.toml"
    mine.write_text("epochs = 2\nlr = 0.003\n")
    config = resolve_config(train_args("--preset", "cnn", "--config", str(mine), "--seed", "5"))
    expected = dataclasses.replace(get_preset("cnn"), epochs=2, lr=0.003, seed=5)
    assert config.to_dict() == expected.validate().to_dict()
    named = tmp_path / "named.toml"
    named.write_text('preset = "cnn"\nepochs = 2\n')
    assert resolve_config(train_args("--preset", "cnn", "--config", str(named))).conv == get_preset("cnn").conv
    with pytest.raises(ConfigError, match=r"names the preset 'cnn', --preset names 'mlp': drop one of them"):
        resolve_config(train_args("--preset", "mlp", "--config", str(named)))
    capsys.readouterr()
    alone = resolve_config(train_args("--config", str(named)))  # an older config.toml's missing keys: the defaults
    assert alone.conv == [] and alone.preset == "cnn"
    note = capsys.readouterr().out
    assert note.startswith("Note: named.toml names the preset 'cnn' but leaves out ") and "add --preset cnn" in note


def test_a_config_file_naming_a_preset_like_one_of_scratchnns_gets_a_note(tmp_path):
    """The advice audit: `preset = "cnn-bets"` trained the defaults without a word, where --preset cnn-bets
    and the page's preset are refused; a name of one's own (it names the run folders) gets none."""
    typo = tmp_path / "typo.toml"
    typo.write_text('preset = "cnn-bets"\nepochs = 2\n')
    said = []
    assert resolve_config(train_args("--config", str(typo)), said.append).conv == []
    assert said == ["Note: typo.toml names the preset 'cnn-bets', which scratchnn does not have (did you mean "
                    "'cnn-best'?): its settings are the defaults and the file's; to start from cnn-best's, add "
                    "--preset cnn-best"]
    typo.write_text('preset = "cnn-bets"\nepochs = 2\n')
    said.clear()  # the review: with --preset cnn-best, as the note says, the note again
    assert resolve_config(train_args("--config", str(typo), "--preset", "cnn-best"), said.append).conv and not said
    typo.write_text('preset = "my-experiment"\nepochs = 2\n')
    said.clear()
    assert resolve_config(train_args("--config", str(typo)), said.append).preset == "my-experiment" and not said


def test_a_config_file_repeats_its_run_only_on_the_data_it_recorded(tmp_path):
    """The config audit: the data behind a saved config.toml was replaced, and `--config` trained on it silently."""
    data = tmp_path / "digits.csv"
    data.write_text("label," + ",".join(f"pixel{i}" for i in range(784)) + "\n" + "3," + ",".join(["0"] * 784) + "\n")
    saved = tmp_path / "config.toml"
    from scratchnn.training.run_data import record_data

    record_data(dataclasses.replace(get_preset("seed"), csv=str(data))).save(saved)
    assert resolve_config(train_args("--config", str(saved))).csv == str(data)
    data.write_text(data.read_text() + "4," + ",".join(["0"] * 784) + "\n")
    with pytest.raises(DataError, match=r"that file has changed \(sha256 now .*restore it, or give the data "
                                          r"explicitly with --csv"):
        resolve_config(train_args("--config", str(saved)))
    assert resolve_config(train_args("--config", str(saved), "--csv", str(data))).csv_sha256 == ""  # named anew


@pytest.mark.parametrize("argv, words", [
    # the fuzz audit: --csv= fell back to downloading MNIST; --out= wrote the run's files loose into the folder
    (["evaluate", "run", "--csv="], "argument --csv: expected a value, got ''"),
    (["train", "--out", " "], "argument --out: expected a value, got ' '"),
    (["serve", "run", "--allowed-host", ""], "argument --allowed-host: expected a value, got ''"),
])
def test_a_blank_value_is_refused_not_read_as_no_flag(argv, words, capsys):
    with pytest.raises(SystemExit) as exit:
        parse(argv)
    assert exit.value.code == 2 and words in capsys.readouterr().err


def test_data_dir_beside_a_file_source_is_refused_rather_than_ignored(tmp_path):
    """The fuzz audit: --data-dir with --csv was ignored without a word (serve refused it)."""
    with pytest.raises(ConfigError, match="--data-dir steers where a named dataset is looked for; with --csv or "
                                          "--images it does nothing"):
        resolve_config(train_args("--csv", "d.csv", "--data-dir", str(tmp_path)))
    assert resolve_config(train_args("--dataset", "mnist", "--data-dir", str(tmp_path))).data_dir == str(tmp_path)


def test_an_augmentation_table_given_twice_keeps_both():
    """The fuzz audit: the second --augmentation replaced the first (rotate=5 was lost without a word)."""
    config = resolve_config(train_args("--augment", "--augmentation", "rotate=5", "--augmentation", "p=0.1,rotate=6"))
    assert (config.augmentation["rotate"], config.augmentation["p"]) == (6.0, 0.1)


@pytest.mark.parametrize("argv, words", [
    # the fuzz audit: a growing "decay" diverged and the doctor blamed --lr; 1e30 weight decay trained to NaN
    (["--schedule", "exponential", "--lr-gamma", "50"], r"--lr-gamma multiplies the learning rate as the exponential "
                                                        r"schedule decays it and must be in \(0, 1\] .*got 50"),
    (["--weight-decay", "1e30"], r"--weight-decay must be in \[0, 1\] .*got 1e\+30"),
    # the long-run audit: 60,000 evaluations made a checkpoint too big to write, mid-run
    (["--preset", "seed", "--epochs", "100000", "--eval-every", "1"], r"^--epochs 100000 with --eval-every 1 makes "
     r"100,000 evaluations, and a run keeps at most 20,000 .*: give --eval-every 5 or more$"),
])
def test_settings_that_only_diverge_are_refused_for_a_new_run_and_an_old_run_still_loads(argv, words, tmp_path):
    with pytest.raises(ConfigError, match=words):
        resolve_config(train_args(*argv))
    (tmp_path / "config.toml").write_text('schedule = "step"\nlr_gamma = 1.5\nweight_decay = 2.0\n')
    recorded = TrainConfig.load(tmp_path / "config.toml")  # the review: an older version's run must still load
    assert (recorded.lr_gamma, recorded.weight_decay) == (1.5, 2.0)


def test_a_blank_data_dir_or_class_names_still_clears_a_config_files_value(tmp_path):
    """The review: refusing every blank value took away the one way to drop a config file's --data-dir."""
    (tmp_path / "dd.toml").write_text('dataset = "mnist"\ndata_dir = "/gone/mnist"\n')
    assert resolve_config(train_args("--config", str(tmp_path / "dd.toml"), "--data-dir", "")).data_dir == ""


def test_fault_none_takes_a_config_files_faults_out(tmp_path):
    """The advice audit: a lab run's config.toml kept fault = ["zero-init"], and --fault "", none and --no-fault
    were all refused, so its repeat could not train normally; lr-find's printed command kept the fault."""
    from scratchnn.cli.lr_find_cmd import train_command

    broken = tmp_path / "config.toml"
    TrainConfig(fault=["zero-init"]).save(broken)
    assert resolve_config(train_args("--config", str(broken))).fault == ["zero-init"]
    assert resolve_config(train_args("--config", str(broken), "--fault", "none")).fault == []
    assert resolve_config(train_args("--config", str(broken), "--fault", "NONE")).fault == []
    for argv in (["--fault", "zero-init,none"], ["--fault", "zero-init", "--fault", "none"],
                 ["--fault", "none", "--fault", "tiny-init"]):  # the reviews: zero-init kept without a word
        with pytest.raises(SystemExit):
            train_args(*argv)
    assert train_args("--fault", "zero-init", "--fault", "tiny-init,huge-init").fault == ["zero-init", "tiny-init",
                                                                                         "huge-init"]
    from scratchnn.web.training import train_settings
    assert "none" not in str(train_settings()["fault"])  # the page has no config file to leave out
    command = train_command(parse(["lr-find", "--config", str(broken)]), 0.01, faulted=True)
    assert command.endswith("--fault none --lr 0.01") and resolve_config(train_args(*command.split()[2:])).fault == []
