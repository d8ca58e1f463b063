"""The learning-rate range test: tune.lr_find, its figure, and ``scratchnn lr-find``."""
import math
import shlex
from typing import ClassVar

import numpy as np
import pytest
from matplotlib.image import imread
from test_plots import assert_drawn

from scratchnn.cli.main import main, parse
from scratchnn.data.kaggle_csv import read_kaggle_csv
from scratchnn.data.kaggle_write import write_kaggle_csv
from scratchnn.errors import ConfigError, ShapeError
from scratchnn.plots import lr_find_figure
from scratchnn.io import read_metadata
from scratchnn.nn.losses import SoftmaxCrossEntropy
from scratchnn.optim import SGD, make_optimizer
from scratchnn.training.config import TrainConfig
from scratchnn.tune import LRFindResult, lr_find
from scratchnn.tune.lr_find import fresh_optimizer, suggestions


# --- a small learnable problem ------------------------------------------------------------------
def blob_digits(n: int, rng: np.random.Generator, side: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (n, side, side) whose label is where a bright square sits (10 spots), plus noise;
    a fifth of the labels are random, so no network gets the loss to 0 and a high rate diverges."""
    labels = rng.integers(0, 10, n)
    images = rng.integers(0, 60, (n, side, side)).astype(np.uint8)
    step = side // 5
    for k, label in enumerate(labels):
        r, c = divmod(int(label), 5)
        images[k, r * step * 2:(r * 2 + 1) * step, c * step:(c + 1) * step] = 255
    noisy = rng.random(n) < 0.2
    labels[noisy] = rng.integers(0, 10, int(noisy.sum()))
    return images, labels


def problem(conv: bool = False, side: int = 14, **options):
    """(model, x (N, ...) float32, y (N,)) for a small MLP (or CNN) built as train builds it."""
    rng = np.random.default_rng(0)
    images, labels = blob_digits(600, rng, side)
    config = TrainConfig(hidden=[16], conv=[4] if conv else [], kernel_size=3, **options)
    model = config.build_model(rng, image_shape=(side, side), layer_rng=np.random.default_rng(1))
    x = (images / 255).astype(np.float32).reshape(len(images), *model.input_shape)
    return model, x, labels


def snapshot(model, optimizer) -> dict:
    state = {f"model {k}": v.copy() for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    state.update({f"optimizer {name}.{slot}": v for name, slots in opt["state"].items() for slot, v in slots.items()})
    state.update({"lr": np.array(opt["lr"]), "steps": np.array(opt["steps"])})
    return state


# --- the library ------------------------------------------------------------------------------------
def test_the_callers_model_and_optimizer_are_untouched_bit_for_bit():
    model, x, y = problem(batchnorm=True, dropout=0.3)  # running statistics and dropout masks too
    optimizer = make_optimizer("adam", 1e-3)
    model.forward(x[:32], training=True)  # a trained state: moments, running statistics, a used generator
    loss = SoftmaxCrossEntropy()
    loss.forward(model.forward(x[:32], training=True), y[:32])
    model.backward(loss.backward())
    optimizer.step(model.named_parameters())
    before, generator = snapshot(model, optimizer), model.rng.bit_generator.state
    result = lr_find(model, optimizer, x, y, steps=30, batch_size=32, rng=0)
    after = snapshot(model, optimizer)
    assert len(result.lrs) >= 10
    assert before.keys() == after.keys()
    for key in before:
        assert before[key].dtype == after[key].dtype and np.array_equal(before[key], after[key]), f"{key} changed"
    assert model.rng.bit_generator.state == generator, "the caller's dropout generator was drawn from"


def test_a_float64_model_is_copied_in_float64():
    model, x, y = problem()
    model.astype(np.float64)
    result = lr_find(model, SGD(0.1), x.astype(np.float64), y, steps=12, batch_size=64, end_lr=1.0, rng=0)
    assert np.isfinite(result.losses).all()


class RecordingSGD(SGD):
    """SGD that notes the learning rate of every step it takes (in a list on the class: lr_find
    works on a fresh instance of it)."""
    seen: ClassVar[list[float]] = []

    def step(self, named_parameters):
        RecordingSGD.seen.append(self.lr)
        super().step(named_parameters)


def test_the_learning_rate_grows_exponentially_from_start_to_end():
    model, x, y = problem()
    RecordingSGD.seen = []
    result = lr_find(model, RecordingSGD(0.5), x, y, start_lr=1e-6, end_lr=1e-2, steps=25, batch_size=64, rng=0)
    assert not result.stopped_early and len(result.lrs) == 25
    assert result.lrs[0] == pytest.approx(1e-6, rel=1e-12) and result.lrs[-1] == pytest.approx(1e-2, rel=1e-12)
    ratios = result.lrs[1:] / result.lrs[:-1]
    np.testing.assert_allclose(ratios, (1e-2 / 1e-6) ** (1 / 24), rtol=1e-12)
    np.testing.assert_array_equal(RecordingSGD.seen, result.lrs, err_msg="the optimizer did not step at those rates")


def test_the_smoothed_loss_is_the_bias_corrected_moving_average():
    model, x, y = problem()
    result = lr_find(model, SGD(0.1), x, y, steps=20, end_lr=1e-1, batch_size=64, rng=0, smoothing=0.9)
    average, expected = 0.0, []
    for i, loss in enumerate(result.losses):
        average = 0.9 * average + 0.1 * loss
        expected.append(average / (1 - 0.9 ** (i + 1)))
    np.testing.assert_allclose(result.smoothed, expected, rtol=1e-12)
    assert result.smoothed[0] == pytest.approx(result.losses[0])  # the bias correction at work
    unsmoothed = lr_find(model, SGD(0.1), x, y, steps=12, end_lr=1e-1, batch_size=64, rng=0, smoothing=0.0)
    np.testing.assert_array_equal(unsmoothed.smoothed, unsmoothed.losses)


def test_the_test_stops_once_the_smoothed_loss_passes_four_times_its_minimum():
    model, x, y = problem()
    result = lr_find(model, SGD(0.1), x, y, start_lr=1e-3, end_lr=1e5, steps=200, batch_size=64, rng=0)
    assert result.stopped_early and len(result.lrs) < 200
    s = result.smoothed
    assert not (s[-1] <= 4 * s[:-1].min()), "stopped although the loss had not diverged"
    running_min = np.minimum.accumulate(s[:-1])
    assert (s[1:-1] <= 4 * running_min[:-1]).all(), "went on after the loss had diverged"


def test_a_lower_stop_factor_stops_sooner():
    model, x, y = problem()
    settings = {"start_lr": 1e-3, "end_lr": 1e5, "steps": 200, "batch_size": 64, "rng": 0}
    assert len(lr_find(model, SGD(0.1), x, y, stop_factor=1.5, **settings).lrs) < \
        len(lr_find(model, SGD(0.1), x, y, **settings).lrs)


def test_a_loss_that_diverges_at_once_asks_for_a_lower_start():
    model, x, y = problem()
    with pytest.raises(ConfigError, match="start lower"):
        lr_find(model, SGD(0.1), x, y, start_lr=1e4, end_lr=1e6, steps=50, batch_size=64, rng=0)


def test_suggestions_lie_inside_the_tested_range_and_the_suggestion_is_halfway_between_them():
    model, x, y = problem()
    result = lr_find(model, make_optimizer("adam", 1e-3), x, y, steps=60, batch_size=64, rng=0)
    assert isinstance(result, LRFindResult)
    assert result.lrs[0] <= result.steepest <= result.lrs[-1]
    lowest = result.lrs[np.argmin(result.smoothed)]
    assert result.min_over_10 == pytest.approx(lowest / 10, rel=1e-12)
    assert result.steepest <= lowest, "the steepest descent comes before the minimum"
    assert result.turned_up  # the loss rose past its minimum: both readings count
    assert result.suggestion == pytest.approx(math.sqrt(result.steepest * result.min_over_10), rel=1e-12)


def test_a_network_that_learned_nothing_has_no_suggestion_in_python_either():
    """The CLI refused a flat curve; lr_find() in Python still offered its steepest point of noise."""
    model, x, y = problem()
    result = lr_find(model, SGD(0.1), x, np.random.default_rng(0).permutation(y), steps=60, batch_size=64, rng=0)
    assert result.chance == pytest.approx(math.log(10)) and result.learned_nothing, result.lowest
    with pytest.raises(ConfigError, match=r"the network learned nothing at any rate .* 60 steps are few"):
        result.suggestion
    labels = [text.get_text() for text in result.plot().axes[0].get_legend().get_texts()]
    assert not any(label.startswith("suggested") for label in labels), labels  # the curve, without a suggestion
    learned = lr_find(model, SGD(0.1), x, y, steps=60, batch_size=64, rng=0)
    assert not learned.learned_nothing and learned.lowest < 0.97 * learned.chance and learned.suggestion > 0


def test_a_loss_still_falling_at_the_end_suggests_its_steepest_point():
    """Its lowest point is the end of the range, not a minimum: min/10 is no reading, halfway to it neither."""
    lrs = np.logspace(-4, 0, 50)
    still = LRFindResult(lrs, np.linspace(2.3, 0.5, 50), np.linspace(2.3, 0.5, 50), 1e-2, 0.1, stopped_early=False)
    assert not still.turned_up and still.suggestion == 1e-2
    labels = [text.get_text() for text in still.plot().axes[0].get_legend().get_texts()]
    assert "suggested: 0.01 (the loss never turned up)" in labels and not any("/ 10" in label for label in labels)
    stopped = LRFindResult(lrs, np.ones(50), np.ones(50), 1e-2, 1e-3, stopped_early=True)
    assert stopped.turned_up and stopped.suggestion == pytest.approx(math.sqrt(1e-5))


def test_suggestions_of_known_curves():
    lrs = np.logspace(-6, 0, 61)
    s = 2.3 - 2.0 / (1 + np.exp(-(np.log10(lrs) + 3) * 4))  # a sigmoid that falls fastest at 1e-3
    s[-5:] = [3, 5, 8, 12, 20]  # then diverges
    steepest, min_over_10 = suggestions(lrs, s)
    assert steepest == pytest.approx(1e-3)
    assert min_over_10 == pytest.approx(lrs[55] / 10)
    flat_then_up = np.concatenate([[1.0], np.linspace(1.1, 5, 20)])  # never fell: the minimum is the start
    assert suggestions(np.logspace(-5, -1, 21), flat_then_up) == (pytest.approx(1e-5), pytest.approx(1e-6))
    with_nan = s.copy()
    with_nan[-1] = np.nan
    assert suggestions(lrs, with_nan) == (steepest, min_over_10)


def test_a_cnn_works():
    model, x, y = problem(conv=True, side=12)
    assert x.ndim == 4
    result = lr_find(model, make_optimizer("adamw", 1e-3, weight_decay=0.01), x, y, steps=40, batch_size=32, rng=0)
    assert np.isfinite(result.losses[:-1]).all() and result.lrs[0] <= result.suggestion <= result.lrs[-1]
    assert result.smoothed.min() < result.smoothed[0], "the CNN never learned during the test"


@pytest.mark.parametrize("name, options", [
    ("sgd", {}), ("sgd", {"momentum": 0.9, "nesterov": True, "weight_decay": 1e-4}),
    ("rmsprop", {"momentum": 0.5}), ("adam", {"weight_decay": 1e-3}), ("adamw", {"weight_decay": 0.05}),
])
def test_every_optimizer_works_on_a_fresh_copy_of_its_settings(name, options):
    optimizer = make_optimizer(name, 0.02, **options)
    copy = fresh_optimizer(optimizer)
    assert type(copy) is type(optimizer) and copy is not optimizer
    assert copy.steps == 0 and copy.state == {}
    settings = {k: v for k, v in vars(optimizer).items() if k not in ("state", "steps")}
    assert {k: v for k, v in vars(copy).items() if k not in ("state", "steps")} == settings
    model, x, y = problem()
    result = lr_find(model, optimizer, x, y, start_lr=1e-5, steps=80, batch_size=64, rng=0, smoothing=0.9)
    assert result.smoothed.min() < 0.9 * result.smoothed[0], f"{name}: the loss never fell"
    assert result.lrs[0] <= result.suggestion <= result.lrs[-1]


def test_an_optimizer_whose_settings_cannot_be_read_back_is_refused():
    class Opaque(SGD):
        def __init__(self, lr, gain=2.0):
            super().__init__(lr)

    with pytest.raises(ConfigError, match="gain"):
        fresh_optimizer(Opaque(0.1))


@pytest.mark.parametrize("settings, message", [
    ({"steps": 0}, "steps"), ({"steps": 9}, "steps"), ({"steps": 20.5}, "steps"), ({"steps": True}, "steps"),
    ({"start_lr": 1.0, "end_lr": 0.1}, "start_lr < end_lr"), ({"start_lr": 0.0}, "start_lr"),
    ({"end_lr": math.inf}, "end_lr"), ({"batch_size": 0}, "batch_size"), ({"smoothing": 1.0}, "smoothing"),
    ({"stop_factor": 1.0}, "stop_factor"),
])
def test_bad_settings_are_clear_errors(settings, message):
    model, x, y = problem()
    with pytest.raises(ConfigError, match=message):
        lr_find(model, SGD(0.1), x, y, **settings)


def test_data_that_does_not_fit_is_a_shape_error():
    model, x, y = problem()
    with pytest.raises(ShapeError, match="shape"):
        lr_find(model, SGD(0.1), x[:, :100], y)
    with pytest.raises(ShapeError, match="labels"):
        lr_find(model, SGD(0.1), x, y[:-1])


def test_a_batch_norm_batch_of_one_is_refused_before_the_first_step():
    """The numerics audit: 3,073 digits in 128s ran 24 steps, then failed on the last batch of 1
    with no batch size to use instead (train names one)."""
    from scratchnn.nn import BatchNorm1d, Dense, ReLU
    from scratchnn.model import Sequential

    _, x, y = problem()
    model = Sequential([Dense(x.shape[1], 8, rng=1), BatchNorm1d(8), ReLU(), Dense(8, 10, rng=2)])
    with pytest.raises(ShapeError, match="593 training images in batches of 8 leave a last batch of 1 image.*use "
                                         "--batch-size 7"):
        lr_find(model, SGD(0.1), x[:593], y[:593], batch_size=8)


# --- the figure ---------------------------------------------------------------------------------
def test_the_figure_draws_both_curves_and_labels_both_suggestions():
    model, x, y = problem()
    r = lr_find(model, SGD(0.1), x, y, start_lr=1e-4, end_lr=1e4, steps=80, batch_size=64, rng=0)
    fig = r.plot()  # as lr-find draws it: both readings, and the suggestion halfway between them
    assert_drawn(fig, name="lr_find_figure")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert any(f"{r.steepest:.2g}" in label and "steepest" in label for label in labels), labels
    assert any(f"{r.min_over_10:.2g}" in label and "/ 10" in label for label in labels), labels
    assert f"suggested: {r.suggestion:.2g} (halfway between them)" in labels, labels
    assert not any("suggested" in label for label in labels if "steepest" in label), labels
    lines = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_array_equal(lines["smoothed (moving average: it lags the raw losses)"].get_ydata(), r.smoothed)
    np.testing.assert_array_equal(lines["loss of each mini-batch"].get_ydata(), r.losses)


def test_the_figure_refuses_arrays_that_do_not_match():
    with pytest.raises(ShapeError, match="one length"):
        lr_find_figure([1e-3, 1e-2], [1.0], [1.0], 1e-3, 1e-4)
    with pytest.raises(ShapeError, match="> 0"):
        lr_find_figure([0.0, 1e-2], [1.0, 1.0], [1.0, 1.0], 1e-3, 1e-4)


# --- the command -----------------------------------------------------------------------------------
@pytest.fixture
def digits_csv(tmp_path):
    images, labels = blob_digits(400, np.random.default_rng(3))
    return write_kaggle_csv(tmp_path / "digits.csv", images, labels)


def test_the_command_writes_a_png_and_prints_a_train_command_that_parses(tmp_path, digits_csv, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    code = main(["lr-find", "--csv", str(digits_csv), "--hidden", "32", "--optimizer", "adam", "--dev-size", "100",
                 "--steps", "40", "--no-batchnorm"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert sorted(p.name for p in work.iterdir()) == ["lr_find.png"], "wrote something besides the figure"
    pixels = imread(work / "lr_find.png")
    assert pixels.ndim == 3 and pixels.shape[0] > 200 and pixels.shape[1] > 300
    assert "300 training images" in out, out  # the dev split came off first
    suggested = next(line for line in out.splitlines() if line.startswith("Suggested --lr "))
    lr = float(suggested.split()[2].rstrip(":"))
    command = next(line for line in out.splitlines() if line.startswith("Train with it:")).split(":", 1)[1]
    words = shlex.split(command)
    assert words[:4] == ["scratchnn", "train", "--preset", "mlp"] and words[-2:] == ["--lr", f"{lr:.2g}"]
    args = parse(words[1:])
    assert (args.hidden, args.optimizer, args.batchnorm, args.dev_size, args.lr) == ([32], "adam", False, 100, lr)
    assert args.csv == str(digits_csv)


def test_the_out_flag_names_the_figure_and_a_bad_one_fails_before_the_work(tmp_path, digits_csv, capsys):
    out = tmp_path / "finder.svg"
    assert main(["lr-find", "--csv", str(digits_csv), "--hidden", "16", "--steps", "20", "--dev-size", "50",
                 "--out", str(out)]) == 0
    assert out.read_bytes().lstrip().startswith(b"<?xml") and f"Figure: {out}" in capsys.readouterr().out
    assert main(["lr-find", "--csv", str(digits_csv), "--out", str(tmp_path / "model.safetensors")]) == 1
    error = capsys.readouterr()
    assert "cannot draw .safetensors" in error.err and "Range test" not in error.out
    assert main(["lr-find", "--csv", str(digits_csv), "--out", str(tmp_path / "nowhere" / "a.png")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_a_full_batch_config_is_refused_with_the_flag_to_pass(digits_csv, capsys):
    assert main(["lr-find", "--preset", "seed", "--csv", str(digits_csv)]) == 1
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "full batch" in error and "--batch-size N" in error, error
    assert main(["lr-find", "--preset", "seed", "--csv", str(digits_csv), "--batch-size", "64", "--steps", "60",
                 "--dev-size", "50", "--out", str(digits_csv.parent / "seed.png")]) == 0
    # the seed's 500 full-batch iterations as 500 steps of 64 (350 digits: 6 a pass), not 500 passes (the audit:
    # the printed command trained 35,000 steps and diverged)
    out = capsys.readouterr().out
    command = next(line for line in out.splitlines() if line.startswith("Train with it:"))
    assert "--epochs 84 --lr" in command and "(--epochs 84: the seed recipe's 500 full-batch iterations" in out, out
    # batches of 16 (22 a pass): 23 epochs, which the recipe's evaluation every 10 makes 2 evaluations, too few
    # for the doctor (the advice audit: its --epochs 8 was one): the command evaluates every epoch
    assert main(["lr-find", "--preset", "seed", "--csv", str(digits_csv), "--batch-size", "16", "--steps", "60",
                 "--dev-size", "50", "--out", str(digits_csv.parent / "seed.png")]) == 0
    command = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("Train with it:"))
    assert "--epochs 23 --eval-every 1 --lr" in command, command


def test_json_is_the_same_suggestion_for_scripts_and_the_rest_goes_to_stderr(digits_csv, tmp_path, capsys):
    import json

    argv = ["lr-find", "--csv", str(digits_csv), "--hidden", "16", "--steps", "60", "--dev-size", "50",
            "--threads", "1", "--out", str(tmp_path / "lr.png")]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert main([*argv, "--json"]) == 0
    said = capsys.readouterr()
    found = json.loads(said.out)  # stdout is the JSON alone
    assert f"Suggested --lr {found['suggestion']:.2g}" in text and f"Train with it:  {found['train_command']}" in text
    assert found["figure"] == str(tmp_path / "lr.png") and found["steps"] == 60 and "Model: " in said.err
    assert shlex.split(found["train_command"])[:2] == ["scratchnn", "train"]


def test_lr_is_what_lr_find_measures(digits_csv, capsys):
    assert main(["lr-find", "--csv", str(digits_csv), "--lr", "0.1"]) == 1
    assert "lr-find measures the learning rate, from --start-lr to --end-lr; drop --lr" in capsys.readouterr().err


def test_a_network_that_learns_nothing_gets_no_suggestion(tmp_path, shared_dir, capsys):
    """The lr-find audit: labels shuffled in the file, the loss flat at ln 10 over the whole range,
    and it printed "Suggested --lr 0.57 ... Train with it" (the steepest point of noise). 2,000 real
    digits: too many for 16 units to memorise their shuffled labels in 60 steps."""
    images, labels = read_kaggle_csv(shared_dir / "datasets/mnist/t10k-kaggle.csv.gz")
    shuffled = write_kaggle_csv(tmp_path / "shuffled.csv", images[:2000],
                                np.random.default_rng(0).permutation(labels[:2000]))
    argv = ["lr-find", "--csv", str(shuffled), "--hidden", "16", "--steps", "60", "--dev-size", "500",
            "--out", str(tmp_path / "flat.png")]
    assert main(argv) == 1
    error = capsys.readouterr().err
    assert "the network learned nothing at any rate" in error and "chance level being ln 10 = 2.303" in error, error
    assert "60 steps are few: try 200 (--steps 200)" in error
    assert (tmp_path / "flat.png").is_file()  # the figure shows it


def test_a_loss_that_never_turns_up_gives_no_lowest_loss_rule(digits_csv, capsys):
    """Up to lr 3e-3 the loss of the mlp only falls: its lowest point is the end of the range."""
    assert main(["lr-find", "--csv", str(digits_csv), "--hidden", "16", "--steps", "60", "--dev-size", "50",
                 "--end-lr", "3e-3", "--out", str(digits_csv.parent / "low.png")]) == 0
    out = capsys.readouterr().out
    assert "the lowest-loss/10 rule needs the loss to turn up, and it had not by the end: raise --end-lr" in out, out


@pytest.mark.parametrize("value, message", [
    ("0", "must be from 10 to 100,000"), ("-5", "must be from 10 to 100,000"), ("9", "must be from 10 to 100,000"),
    ("ten", "expected a whole number"), ("2.5", "expected a whole number"),
    ("1" + "0" * 30, "must be from 10 to 100,000 (the points of the curve), got 1000"),  # the fuzz audit: np.arange
])
def test_bad_steps_are_clear_errors(value, message, capsys):
    with pytest.raises(SystemExit) as exit:
        main(["lr-find", "--steps", value])
    assert exit.value.code == 2
    assert f"argument --steps: {message}" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--start-lr", "0"], "argument --start-lr: must be a finite number > 0"),
    (["--end-lr", "inf"], "argument --end-lr: must be a finite number > 0"),
    (["--start-lr", "x"], "argument --start-lr: expected a number > 0"),
])
def test_bad_learning_rate_bounds_are_clear_errors(args, message, capsys):
    with pytest.raises(SystemExit):
        main(["lr-find", *args])
    assert message in capsys.readouterr().err


def test_an_end_below_the_start_fails_before_loading_data(capsys):
    assert main(["lr-find", "--start-lr", "1", "--end-lr", "0.1", "--csv", "missing.csv"]) == 1
    assert "start_lr < end_lr" in capsys.readouterr().err


# --- real digits ---------------------------------------------------------------------------------------
@pytest.mark.slow  # a range test and two 3-epoch runs of mlp on 9,000 digits
def test_the_suggested_lr_trains_mlp_as_well_as_the_presets_own(tmp_path, shared_dir, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    csv = str(shared_dir / "datasets/mnist/t10k-kaggle.csv.gz")
    assert main(["lr-find", "--preset", "mlp", "--csv", csv]) == 0
    out = capsys.readouterr().out
    command = next(line for line in out.splitlines() if line.startswith("Train with it:")).split(":", 1)[1]
    accuracies = {}
    for name, words in (("suggested", shlex.split(command)[1:]), ("preset", ["train", "--preset", "mlp", "--csv", csv])):
        run = tmp_path / name
        assert main([*words, "--epochs", "3", "--out", str(run), "--quiet", "--no-report"]) == 0
        metadata = read_metadata(run)
        accuracies[name] = (metadata["config"]["lr"], metadata["metrics"]["dev_accuracy"])
    print(f"\n{out}\nlr and dev accuracy after 3 epochs: {accuracies}")
    (lr, suggested), (preset_lr, preset) = accuracies["suggested"], accuracies["preset"]
    assert lr != preset_lr
    assert suggested >= preset - 0.01, accuracies


def test_a_loss_that_is_not_finite_before_any_step_is_not_a_rate_to_lower():
    """The lr-find audit: a NaN pixel, or weights that overflow at once, were told to "start lower"."""
    model, x, y = problem()
    bad = x.copy()
    bad[3, 5] = np.nan
    with pytest.raises(ShapeError, match="x holds 1 NaN or infinite value"):
        lr_find(model, SGD(0.1), bad, y, steps=20, rng=0)
    for layer in model.layers:
        for array in layer.params.values():
            array *= 1e30  # logits of 1e30 and more: the loss is inf before any step
    with pytest.raises(ConfigError, match="before the first step, at the initial weights: no learning rate can help"):
        lr_find(model, SGD(0.1), x, y, steps=20, rng=0)


def test_threads_and_augmentation_reach_the_test_and_its_command(digits_csv, capsys, monkeypatch):
    """The lr-find audit: --threads 1 ran on every core (the curve then differs in its last bits), and
    the printed train command dropped --augmentation."""
    from scratchnn.cli import lr_find_cmd

    entered = []
    real = lr_find_cmd.blas_threads
    monkeypatch.setattr(lr_find_cmd, "blas_threads", lambda n: entered.append(n) or real(n))
    assert main(["lr-find", "--csv", str(digits_csv), "--hidden", "16", "--steps", "60", "--dev-size", "50",
                 "--threads", "1", "--augmentation", "rotate=5,p=0.5", "--out",
                 str(digits_csv.parent / "t.png")]) == 0
    command = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("Train with it:"))
    args = parse(shlex.split(command.split(":", 1)[1])[1:])
    assert entered == [1] and args.threads == 1 and args.augmentation == {"rotate": 5.0, "p": 0.5}, command


@pytest.mark.parametrize("args, message", [
    # the fuzz audit: both said "diverged ... at learning rate inf; start lower"
    (["--start-lr", "1e-320"], "runs from 1e-12 to 1e+06 at most (--start-lr, --end-lr); got 9.999888672e-321 to 10"),
    (["--end-lr", "1e308"], "runs from 1e-12 to 1e+06 at most (--start-lr, --end-lr); got 1e-07 to 1e+308"),
])
def test_rates_no_training_can_use_are_refused_before_the_data_is_read(args, message, capsys):
    assert main(["lr-find", *args]) == 1
    assert message in capsys.readouterr().err


def test_the_command_after_a_faulted_config_trains_without_its_faults(digits_csv, capsys):
    """The advice audit: lr-find --config of a lab run printed a train command that kept the fault."""
    from scratchnn.training.config import TrainConfig

    config = digits_csv.parent / "broken.toml"
    TrainConfig(csv=str(digits_csv), hidden=[16], batch_size=64, dev_size=50, fault=["zero-init"]).save(config)
    assert main(["lr-find", "--config", str(config), "--steps", "60", "--out",
                 str(digits_csv.parent / "broken.png")]) == 0
    command = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("Train with it:"))
    assert "--fault none --lr " in command, command
