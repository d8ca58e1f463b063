"""Convolutional networks and augmentation through the config, the training loop and the CLI."""
import numpy as np
import pytest

from scratchnn.errors import ConfigError
from scratchnn.io import load
from scratchnn.nn import AvgPool2D, Conv2D, Flatten, MaxPool2D
from scratchnn.optim import Adam
from scratchnn.training.config import TrainConfig
from scratchnn.training.fit import fit
from scratchnn.training.presets import get_preset


def test_cnn_preset_is_the_benchmark_network():
    model = get_preset("cnn").build_model(np.random.default_rng(0))
    assert model.input_shape == (1, 28, 28)
    assert model.widths() == "1x28x28 -> 32x26x26 -> 32x13x13 -> 64x11x11 -> 64x5x5 -> 1600 -> 128 -> 10"
    assert [type(layer) for layer in model.layers[:4]] == [Conv2D, type(model.layers[1]), MaxPool2D, Conv2D]
    assert get_preset("cnn").augment


def test_lenet5_preset_pads_the_first_convolution_and_average_pools():
    model = get_preset("lenet5").build_model(np.random.default_rng(0))
    assert model.widths() == "1x28x28 -> 6x28x28 -> 6x14x14 -> 16x10x10 -> 16x5x5 -> 400 -> 120 -> 84 -> 10"
    assert sum(isinstance(layer, AvgPool2D) for layer in model.layers) == 2
    assert model.num_parameters == 61706  # LeNet-5's dense part on a 16x5x5 map, as in the paper


@pytest.mark.parametrize("changes, message", [
    ({"conv": [8, 0]}, "--conv must be >= 1, got 8,0"),
    ({"conv": [8, 8], "padding": [1]}, r"--padding needs one value per convolution block \(2\), got 1"),
    ({"conv": [8], "padding": [-1]}, "--padding must be >= 0, got -1"),
    ({"kernel_size": 0}, "--kernel-size must be >= 1"),
    ({"pool": "median"}, "unknown pool 'median'"),
])
def test_bad_convolution_options(changes, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**changes).validate()


def test_config_with_conv_and_augment_round_trips_through_toml(tmp_path):
    config = TrainConfig(conv=[6, 16], kernel_size=5, padding=[2, 0], pool="avg", augment=True)
    assert TrainConfig.load(config.save(tmp_path / "c.toml")) == config


def test_augmentation_is_seeded_and_changes_training():
    rng = np.random.default_rng(0)
    x = rng.random((64, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, 64)
    config = TrainConfig(conv=[4], hidden=[8], init="he_normal", bias_init="zeros", augment=True)

    def train(augment, seed=1):
        model = config.build_model(np.random.default_rng(0))
        fit(model, Adam(1e-2), x, y, epochs=2, batch_size=16, rng=np.random.default_rng(2),
            augment=config.build_augmentation() if augment else None, augment_rng=np.random.default_rng(seed))
        return model.state_dict()

    first, again, other, plain = train(True), train(True), train(True, seed=9), train(False)
    assert all(np.array_equal(first[k], again[k]) for k in first)
    assert not all(np.array_equal(first[k], other[k]) for k in first)
    assert not all(np.array_equal(first[k], plain[k]) for k in first)


def test_fit_wants_a_generator_for_augmentation():
    config = TrainConfig(hidden=[8], augment=True)
    model = config.build_model(np.random.default_rng(0))
    with pytest.raises(ValueError, match="augment_rng"):
        fit(model, Adam(1e-3), np.zeros((4, 784), np.float32), np.zeros(4, int), epochs=1, batch_size=2,
            rng=np.random.default_rng(0), augment=config.build_augmentation())


def test_a_cnn_run_saves_a_model_that_evaluate_and_predict_use(tmp_path, shared_dir):
    from scratchnn.cli.main import main
    csv = shared_dir / "datasets/mnist/t10k-kaggle.csv.gz"
    out = tmp_path / "run"
    assert main(["train", "--conv", "4", "--hidden", "16", "--augment", "--epochs", "1", "--batch-size", "64",
                 "--optimizer", "adam", "--lr", "0.003", "--warmup", "0", "--init", "he_normal", "--csv", str(csv), "--out", str(out),
                 "--quiet", "--no-report"]) == 0
    model = load(out / "model.safetensors")
    assert model.input_shape == (1, 28, 28) and any(isinstance(layer, Flatten) for layer in model.layers)
    assert main(["evaluate", str(out)]) == 0
    assert main(["predict", str(out), "--index", "0"]) == 0


def test_conv_repeat_builds_vgg_style_blocks_and_cnn_best_uses_them():
    config = get_preset("cnn-best")
    model = config.build_model(np.random.default_rng(0))
    kinds = [type(layer).__name__ for layer in model.layers]
    block = ["Conv2D", "BatchNorm2d", "ReLU", "Conv2D", "BatchNorm2d", "ReLU", "MaxPool2D"]
    assert kinds[:14] == block * 2 and kinds[14] == "Flatten"
    assert model.output_shapes()[13] == (64, 7, 7)  # 'same' padding: only the pooling halves the image
    assert [layer.in_channels for layer in model.layers if type(layer).__name__ == "Conv2D"] == [1, 32, 32, 64]
    config.conv_repeat = 5
    with pytest.raises(ConfigError, match="conv-repeat"):
        config.validate()
