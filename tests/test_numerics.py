"""Numbers that went wrong without a word (the numerics audit): each was a wrong answer, or a
failure blamed on something else, where a one-line error now names what to do."""
import numpy as np
import pytest

from scratchnn import Dense, ReLU, Sequential, io
from scratchnn.errors import ConfigError, ModelFileError, ShapeError, TrainingDiverged
from scratchnn.metrics import confusion_matrix
from scratchnn.nn import BatchNorm1d, Dropout
from scratchnn.optim import SGD, Adam, RMSprop
from scratchnn.training.fit import evaluate, fit


def mlp(batchnorm: bool = False) -> Sequential:
    layers = [Dense(16, 8), *([BatchNorm1d(8)] if batchnorm else []), ReLU(), Dense(8, 3)]
    return Sequential(layers, input_shape=(16,), rng=0)


def data(n: int = 60):
    rng = np.random.default_rng(0)
    return rng.random((n, 16), dtype=np.float32), np.arange(n) % 3


@pytest.mark.parametrize("scale", [65535, 1000, 256.5], ids=["16-bit", "thousand", "just-past-255"])
def test_predictions_refuse_floats_past_255_as_unscaled_pixels(scale):
    """x * 65535 (a 16-bit image as floats) was read at 100% confidence, a third of it wrong:
    floats stopped being checked at 255, integers at 65535."""
    model, (x, y) = mlp(), data()
    with pytest.raises(ShapeError, match=r"unscaled pixels by the look of it; .*x / 65535 for 16 bits"):
        model.predict_proba(x * np.float32(scale))
    with pytest.raises(ShapeError, match="unscaled pixels"):
        evaluate(model, x * np.float32(scale), y)
    model.predict_proba(x)  # 0..1 as before
    model.predict_proba(x * 2 - 1)  # -1..1 (a network of the user's own, trained so) as before


def test_a_confusion_matrix_of_uint8_labels_counts_past_16_classes():
    """uint8 labels (read_idx_pair's, EMNIST letters' 26 classes) times 26 wrapped past 255."""
    labels = np.array([25, 12, 25], np.uint8)
    matrix = confusion_matrix(labels, np.array([25, 12, 3], np.uint8), 26)
    assert matrix[25, 25] == 1 and matrix[12, 12] == 1 and matrix[25, 3] == 1 and matrix.sum() == 3


@pytest.mark.parametrize("optimizer,dtype,fits", [(lambda: Adam(1e-3, eps=1e-50), np.float32, "1e-08"),
                                                  (lambda: RMSprop(1e-3, eps=1e-50), np.float32, "1e-08"),
                                                  (Adam, np.float16, "0.0001")],
                         ids=["adam-float32", "rmsprop-float32", "adam-default-float16"])
def test_an_eps_that_is_zero_in_the_models_numbers_is_refused_before_training(optimizer, dtype, fits):
    """It trained to NaN at its second step ('try a lower learning rate'): 0 / (√0 + 0) for a
    weight whose gradient is always 0."""
    model, (x, y) = mlp().astype(dtype), data()
    with pytest.raises(ConfigError, match=rf"eps 1e-\d+ is 0 in {np.dtype(dtype)} .* use eps={fits} or more"):
        fit(model, optimizer(), x.astype(dtype), y, epochs=1)


def test_a_batch_norm_eps_that_is_zero_in_float32_is_refused():
    with pytest.raises(ConfigError, match=r"eps must be > 0 \(and not 0 in float32"):
        BatchNorm1d(8, eps=1e-50)
    BatchNorm1d(8, eps=1e-30)


def test_running_statistics_that_overflow_stop_training_as_a_divergence():
    """Inputs of 1e19 made a running variance infinite; fit returned, and the model then said
    0.1 for every class and every image without a word."""
    model, (x, y) = mlp(batchnorm=True), data()
    with pytest.raises(TrainingDiverged, match=r"running statistics 1\.running_var became NaN or infinite"):
        fit(model, SGD(0.01), x * np.float32(1e19), y, epochs=1)


@pytest.mark.filterwarnings("ignore:invalid value encountered in sqrt:RuntimeWarning")
def test_a_negative_running_variance_is_named_and_never_saved(tmp_path):
    model, (x, _) = mlp(batchnorm=True), data()
    model.layers[1].buffers["running_var"][0] = -1.0
    with pytest.raises(ShapeError, match=r"running variance 1\.running_var holds values below 0"):
        model.predict_proba(x)
    with pytest.raises(ModelFileError, match=r"'1\.running_var', a batch norm's running variance, holds values "
                                             r"below 0"):
        io.save(model, tmp_path / "m.safetensors")
    assert not (tmp_path / "m.safetensors").exists()


@pytest.mark.parametrize("p", [0.99999, 0.99999999])
def test_dropout_near_one_is_refused_where_float32_cannot_draw_it(p):
    """p = 0.99999999 is 1 in float32: every unit was dropped, where the scale 1/(1 − p) said
    one in 10⁸ was kept (the output's mean 0, not 1)."""
    with pytest.raises(ConfigError, match=r"keeps fewer than one unit in 10,000.* use p <= 0\.9999"):
        Dropout(p)
    kept = Dropout(0.9999, rng=0).forward(np.ones((1000, 1000), np.float32), training=True)
    assert abs(kept.mean() - 1) < 0.2  # about 100 units of the million kept, each 10,000x


def test_batch_norm_statistics_of_an_offset_input_keep_their_digits():
    """A float32 sum over the 173,056 rows of 256 images of 26x26 lost digits: inputs of 1000 plus
    noise came out with channel means up to -0.018 instead of 0 (float64: 1e-7)."""
    from scratchnn.nn import BatchNorm2d

    x = 1000 + np.random.default_rng(0).standard_normal((256, 8, 26, 26)).astype(np.float32)
    y = BatchNorm2d(8).forward(x, training=True)
    assert np.abs(y.mean(axis=(0, 2, 3))).max() < 1e-3
    assert np.abs(y.std(axis=(0, 2, 3)) - 1).max() < 1e-3


def test_a_batch_norm_that_never_updates_its_statistics_says_so():
    """momentum 0 kept the running mean 0 and variance 1: dev accuracy 0.69 against 0.92."""
    from scratchnn.errors import OtherConvention

    with pytest.warns(OtherConvention, match="momentum 0 never updates the running statistics"):
        BatchNorm1d(8, momentum=0)


def test_a_value_just_past_a_limit_is_shown_as_given():
    """--augmentation p=1.0000001 was refused with 'got 1'."""
    from scratchnn.data.augment import Augmentation

    with pytest.raises(ConfigError, match=r"in \[0, 1\]; got 1\.0000001$"):
        Augmentation(p=1.0000001)
    from scratchnn.training.config import TrainConfig

    with pytest.raises(ConfigError, match=r"--dropout must be in \[0, 0\.9999\], got 0\.9999999$"):
        TrainConfig(dropout=0.9999999).validate()  # was 'got 1'
    with pytest.raises(ConfigError, match=r"--lr must be in \(0, 1000000\], got 2e\+06$"):
        TrainConfig(lr=2e6).validate()  # short where that loses nothing
