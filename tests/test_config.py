import dataclasses
import os
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from fuzzing import fuzz_examples
from hypothesis import example, given, settings
from hypothesis import strategies as st

from scratchnn.data.augment import CLOTHES, DIGITS
from scratchnn.errors import ConfigError
from scratchnn.training.config import TrainConfig
from scratchnn.training.presets import PRESETS, get_preset


def test_toml_round_trip(tmp_path):
    config = TrainConfig(hidden=[128, 64], lr=0.05, csv='data/"quoted" dir/x.csv', batch_size=32)
    path = config.save(tmp_path / "config.toml")
    assert TrainConfig.load(path) == config


def test_unknown_option_is_named(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("lr = 0.1\nlearning_rate = 0.2\n")
    with pytest.raises(ConfigError, match="unknown option.*learning_rate"):
        TrainConfig.load(path)
    path.write_text('"lr\\nrate" = 0.2\n')  # a made-up name is quoted: the message stays one line
    with pytest.raises(ConfigError, match=r'unknown option\(s\) "lr\\nrate"; .*; known: preset, conv,'):
        TrainConfig.load(path)


@pytest.mark.parametrize("text, hint", [
    ("learnig_rate = 0.01\n", "unknown option(s) learnig_rate; did you mean lr? known: preset,"),
    ("optimiser = 'adam'\n", "did you mean optimizer?"),
    ("[training]\nlr = 0.01\n", "settings are not grouped in tables: write them at the top level"),
    ("mixup = 0.2\n", "a setting of a newer scratchnn? (upgrade scratchnn to read it)"),
])
def test_an_unknown_setting_says_what_was_meant(tmp_path, text, hint):
    """The config audit: a typo got the list of all 51 settings and no hint, a [training] table no word that the
    settings are not grouped, and a newer version's setting no word of upgrading."""
    (tmp_path / "c.toml").write_text(text)
    with pytest.raises(ConfigError) as info:
        TrainConfig.load(tmp_path / "c.toml")
    assert hint in str(info.value)


@pytest.mark.parametrize("text, message", [
    ('lr = "fast"', "lr must be a number, got 'fast'"),
    # the fuzz audit: a 400-digit integer was "OverflowError: int too large to convert to float"
    ("lr = " + "1" * 400, "lr must be a finite number, got a 400-digit number"),
    ("augment = true\naugmentation = {rotate = " + "1" * 400 + "}",
     "augmentation rotate must be a finite number, got a 400-digit number"),
    ("hidden = [" + "1" * 30 + "]", r"--hidden must be >= 1 and far below 2\*\*63, got a 30-digit number"),
    ('csv = "a\\u0000b"', r"csv holds a NUL character \(\\0\), which no file name or setting can"),
    ("conv = [" + ", ".join(["1.5"] * 5000) + "]",
     r"conv must be a list of whole numbers, got \[1.5, 1.5, .*\[\.\.\.\]$"),
    ("hidden = 10", "hidden must be a list of whole numbers, got 10"),
    ("epochs = 1.5", "epochs must be a whole number, got 1.5"),
    ("lr = -1.0", r"--lr must be in \(0, 1000000\], got -1"),
    ("lr = 2e6", r"--lr must be in \(0, 1000000\], got 2e\+06"),  # a checkpoint could not resume it
    ('schedule = "plateau"\nlr_gamma = 2.0', r"--lr-gamma multiplies the learning rate on a plateau and must be in \(0, 1\), got 2"),
    ("epochs = 0", r"--epochs must be in \[1, 1000000\], got 0"),
    ("hidden = [10, 0]", "--hidden must be >= 1, got 10,0"),
    ("lr = ", "not valid TOML"),
    ("dropout = 1.0", r"--dropout must be in \[0, 0\.9999\], got 1"),
    ("input_dropout = -0.1", r"--input-dropout must be in \[0, 0\.9999\], got -0.1"),
    ("epochs = 2\nwarmup = 2.0", r"--warmup must be >= 0 and shorter than the run \(epochs = 2\), got 2"),
    ('schedule = "one-cycle"\nwarmup = 1.0', "has its own warm-up"),
    ('schedule = "cosine"\nlr_gamma = 0.5', "--lr-gamma does not apply to the cosine schedule"),
    ('csv = "d.csv"\ncsv_sha256 = "abc"', "csv_sha256 must be a SHA-256 of 64 hexadecimal digits .* got 'abc'"),
    ('schedule = "cosine"\nlr = 0.002\nmin_lr = 1.0', r"--min-lr \(the lowest rate\) must be at most --lr "
                                                      r"\(0.002\), got 1"),
    ("augment = true\naugmentation = 3", "augmentation must be a table such as {rotate = 5.0}, got 3"),
    ("augment = true\naugmentation = {p = 2.0}", "p is the probability that an image is augmented"),
    ("augment = true\naugmentation = {spin = 1.0}", "unknown augmentation setting.*spin; known: shift"),
    ('augment = true\naugmentation = {shift = "2"}', "augmentation shift must be a number, got '2'"),
    ("augment = true\naugmentation = {shift = {a = 1}}", "augmentation shift must be a number"),
    ("augment = true\naugmentation = {rotate = nan}", "augmentation rotate must be a finite number"),
    ("augmentation = {shift = -1.0}", "augmentation shift must be >= 0 pixels"),
])
def test_bad_values_are_clear_errors(tmp_path, text, message):
    path = tmp_path / "c.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError, match=message):
        TrainConfig.load(path)


def test_an_augmentation_table_changes_the_datasets_default_where_it_says_and_round_trips(tmp_path):
    config = TrainConfig(augment=True, augmentation={"p": 0.5, "rotate": 5})
    assert config.build_augmentation() == dataclasses.replace(DIGITS, p=0.5, rotate=5.0)
    assert dataclasses.replace(config, dataset="fashion-mnist").build_augmentation() == dataclasses.replace(
        CLOTHES, p=0.5, rotate=5.0)
    assert dataclasses.replace(config, augment=False).build_augmentation() is None
    path = config.save(tmp_path / "config.toml")
    assert "augmentation = {p = 0.5, rotate = 5}" in path.read_text()
    assert TrainConfig.load(path) == config
    recorded = config.with_augmentation_recorded()
    assert recorded.augmentation == dataclasses.replace(DIGITS, p=0.5, rotate=5.0).to_dict()
    assert TrainConfig().with_augmentation_recorded().augmentation == {}
    assert recorded.shown()["augmentation"] == "shifts ±2 px, turns ±5°, sizes ±10%, slants ±8°, elastic 20 px " \
                                               "(sigma 4), each image with probability 50%"
    assert "augmentation" not in TrainConfig(augment=True).shown()  # the dataset's default: nothing to add


AUGMENTATION_FIELDS = [field.name for field in dataclasses.fields(DIGITS)]


# Keys are mostly real Augmentation fields and values mostly in their ranges, so that most tables
# are accepted and read back (random names alone were refused 199 times in 200); the examples
# make sure both branches run whatever hypothesis draws.
@settings(max_examples=fuzz_examples(200), deadline=None)
@given(st.dictionaries(st.one_of(st.sampled_from(AUGMENTATION_FIELDS), st.text(max_size=8)),
                       st.one_of(st.floats(0, 1), st.integers(0, 10), st.floats(allow_nan=False),
                                 st.integers(-10, 10), st.text(max_size=4), st.booleans()), max_size=4))
@example({"rotate": 5.0, "p": 0.5, "shift": 2})
@example({"elastic_alpha": 0.25, "elastic_sigma": 3.0, "flip": 0.5})
@example({"rotate": "5"})
@example({"turn": 5.0})
def test_any_augmentation_table_is_written_as_toml_read_back_the_same_or_refused(tmp_path_factory, table):
    path = tmp_path_factory.mktemp("c") / "config.toml"
    TrainConfig(augment=True, augmentation=table).save(path)  # saving never validates: any table is valid TOML
    try:
        loaded = TrainConfig.load(path)
    except ConfigError as error:
        assert "\n" not in str(error)
    else:
        assert loaded.augmentation == table and loaded.build_augmentation() is not None


@pytest.mark.parametrize("name, content, message", [
    ("none.toml", None, "none.toml: no such file; give a config file"),
    ("folder", "folder", "folder: a folder, not a file; give a config file"),
    ("latin1.toml", b"lr = 0.1\n# caf\xe9\n", r"latin1.toml: not UTF-8 text \(byte 14\)"),
    ("huge.toml", b"# " + b"x" * (64 * 1024), "huge.toml: over 64 KiB, too big for a config file"),
])
def test_a_config_file_that_cannot_be_one_is_one_line(tmp_path, name, content, message):
    if content == "folder":
        (tmp_path / name).mkdir()
    elif content is not None:
        (tmp_path / name).write_bytes(content)
    with pytest.raises(ConfigError, match=message) as raised:
        TrainConfig.load(tmp_path / name)
    assert "\n" not in str(raised.value)


def test_an_endless_config_file_or_a_pipe_is_refused_without_reading_on(tmp_path):
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero here")
    os.mkfifo(tmp_path / "pipe")  # nobody writes to it: open() alone would wait for ever
    for path in ("/dev/zero", tmp_path / "pipe"):
        with pytest.raises(ConfigError, match="a pipe, device or socket, not a file; give a config file"):
            TrainConfig.load(path)
    huge = tmp_path / "huge.toml"
    with huge.open("wb") as f:
        f.truncate(2**30)  # sparse: a gigabyte that costs no disk
    with pytest.raises(ConfigError, match="over 64 KiB"):
        TrainConfig.load(huge)


def test_seed_preset_is_the_tutorial_network():
    seed = get_preset("seed")
    assert (seed.hidden, seed.init, seed.bias_init, seed.lr, seed.epochs, seed.batch_size, seed.dev_size,
            seed.eval_every) == ([10], "seed_uniform", "seed_uniform", 0.1, 500, 0, 1000, 10)
    model = seed.build_model(np.random.default_rng(0))
    assert model.widths() == "784 -> 10 -> 10"
    assert model.num_parameters == 784 * 10 + 10 + 10 * 10 + 10


def test_presets_are_valid_and_copies():
    for name in PRESETS:
        get_preset(name).validate()
    get_preset("seed").hidden.append(5)
    assert PRESETS["seed"].hidden == [10]
    with pytest.raises(ConfigError, match="unknown preset"):
        get_preset("nope")


def test_conv_dropout_follows_every_pooling_and_only_a_cnn_has_it():
    config = TrainConfig(conv=[4, 6], conv_repeat=2, padding=[1, 1], hidden=[8], conv_dropout=0.25)
    kinds = [type(layer).__name__ for layer in config.build_model(np.random.default_rng(0)).layers]
    assert [kinds[i + 1] for i, kind in enumerate(kinds) if kind == "MaxPool2D"] == ["Dropout", "Dropout"]
    assert kinds.count("Dropout") == 2 and [layer.p for layer in config.build_model(np.random.default_rng(0)).layers
                                            if type(layer).__name__ == "Dropout"] == [0.25, 0.25]
    mlp = TrainConfig(hidden=[16], conv_dropout=0.25)
    assert "conv_dropout" not in mlp.applicable() and "conv_dropout" in config.applicable()


def test_input_dropout_comes_first_and_only_in_training():
    config = TrainConfig(hidden=[16], input_dropout=0.5)
    model = config.build_model(np.random.default_rng(0), layer_rng=np.random.default_rng(1))
    assert type(model.layers[0]).__name__ == "Dropout"
    x = np.ones((4, 784), dtype=np.float32)
    assert np.array_equal(model.forward(x, training=False), model.forward(x, training=False))


def test_a_network_whose_image_shrinks_below_a_window_is_told_a_fix_that_builds():
    """The advice audit: five blocks were told --padding 1 (refused: one value for five blocks), then,
    padded, the same advice again: 28 pixels halve to nothing after four poolings."""
    def refused(**settings) -> str:
        with pytest.raises(ConfigError) as raised:
            TrainConfig(**settings).build_model(np.random.default_rng(0))
        return str(raised.value)

    told = refused(conv=[8] * 5)
    assert told.endswith("give --conv 4 size(s) with --padding 1,1,1,1") 
    assert told.split("; ")[-1] == refused(conv=[8] * 5, padding=[1] * 5).split("; ")[-1]  # at a pooling: the same
    TrainConfig(conv=[8] * 4, padding=[1] * 4).build_model(np.random.default_rng(0))  # what it names builds
    told = refused(conv=[8] * 3, kernel_size=5, conv_repeat=2)
    assert "pad each block (--padding 2,2,2 keeps each 5x5 convolution's image its size)" in told
    TrainConfig(conv=[8] * 3, kernel_size=5, conv_repeat=2, padding=[2] * 3).build_model(np.random.default_rng(0))
    told = refused(conv=[8] * 4, kernel_size=4, conv_repeat=3)  # the review: told 2 blocks at most, and padding 1
    assert "(--padding 2,2,2,2 keeps each 4x4 convolution's image its size or a pixel larger)" in told
    TrainConfig(conv=[8] * 4, kernel_size=4, conv_repeat=3, padding=[2] * 4).build_model(np.random.default_rng(0))
    assert refused(conv=[8], kernel_size=30).endswith("a 30x30 window is larger than the 28-pixel images: use a "
                                                      "smaller --kernel-size")


@pytest.mark.parametrize("settings, message", [
    ({"hidden": [10**9]}, r"layer 0 \(Dense\) out_features must be an integer from 1 to 4,194,304, got 1000000000"),
    ({"hidden": [40_000, 40_000]}, r"has 1,631,840,010 parameters and buffers \(at most 134,217,728\)"),
    ({"conv": [100_000], "padding": [1]}, r"layer 1 \(ReLU\) gets samples of 78,400,000 numbers \(at most 67,108,864\)"),
    ({"conv": [8, 8, 8, 8, 8]}, r"a 3x3 window does not fit a 1x1 input with padding 0x0; 28-pixel images go "
                                r"through at most 4 conv block\(s\) of 3x3 windows, even padded"),  # not --hidden
])
def test_a_network_too_big_to_build_is_refused_before_anything_is_allocated(settings, message):
    """The model-file bounds (model_schema) hold for what train builds too: worked out on paper
    first, so --hidden 1000000000 is one line, not a 2.9 TiB allocation (or the OOM killer)."""
    config = TrainConfig.from_dict({**TrainConfig().to_dict(), **settings})
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError, match=message) as raised:
            config.build_model(np.random.default_rng(0))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(raised.value).startswith("this network cannot be built: ") and "\n" not in str(raised.value)
    assert ("use fewer or smaller layers" in str(raised.value)) != ("window" in message) and peak < 2**20


def test_every_preset_builds_the_layers_its_specs_describe():
    for name in PRESETS:
        config = get_preset(name)
        input_shape, specs = config.layer_specs()
        model = config.build_model(np.random.default_rng(0))
        assert model.input_shape == input_shape
        assert [type(layer) for layer in model.layers] == [kind for kind, _ in specs]
