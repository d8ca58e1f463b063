"""The doctor's signals: each measure on hand-made arrays with known answers, health.csv and
metrics.csv written, read back and attacked, HealthLog in a learner's own (seed-notation) loop
giving what HealthRecorder gives, and fit's health rows equal on the fast and textbook paths."""
import math
import os
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from fuzzing import fuzz_examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scratchnn import Dense, ReLU, Sequential
from scratchnn.doctor import HealthLog, diagnose
from scratchnn.doctor.signals import (HEADER, MAX_TABLE_BYTES, MAX_TABLE_ROWS, HealthText, Row, check_metric_rows,
                                      dead_fraction, label_balance, prediction_share, read_health_csv,
                                      read_metrics_csv, rms,
                                      saturated_fraction, spread, unit_spread, update_ratio, write_health_csv)
from scratchnn.errors import DataError
from scratchnn.nn.losses import SoftmaxCrossEntropy
from scratchnn.optim import SGD, Adam
from scratchnn.training.fit import fit
from scratchnn.training.health import HealthRecorder

FUZZ = settings(max_examples=fuzz_examples(150), deadline=1000,  # ms: a hang guard
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# --- the arithmetic ------------------------------------------------------------------------
def test_rms_is_the_root_mean_square_in_float64():
    assert rms(np.array([3.0, 4.0])) == pytest.approx(math.sqrt(12.5))
    assert rms(np.array([[-2.0, 2.0], [2.0, -2.0]])) == 2.0
    assert rms(np.zeros((0, 3))) == 0.0
    big = np.full(10**6, 1e-3, dtype=np.float32) + np.float32(1.0)  # a float32 sum would drift
    assert rms(big) == pytest.approx(float(np.float32(1.001)), rel=1e-12)


def test_update_ratio_is_the_steps_norm_over_the_weights_norm():
    before = np.array([[3.0, 4.0]])  # ‖W‖ = 5
    assert update_ratio(before, np.array([[6.0, 8.0]])) == pytest.approx(1.0)  # ‖ΔW‖ = 5
    assert update_ratio(before, before + np.array([[0.003, 0.004]])) == pytest.approx(1e-3)
    assert update_ratio(before, before) == 0.0
    zero = np.zeros((2, 2))
    assert update_ratio(zero, zero + 0.1) == math.inf  # a zero weight that moved: no size to compare with
    assert math.isnan(update_ratio(zero, zero))  # a zero weight that stayed zero: undefined
    assert update_ratio(before.astype(np.float32), np.array([[6.0, 8.0]], np.float32)) == pytest.approx(1.0)


def test_unit_spread_is_zero_for_identical_units_and_about_one_for_random_ones():
    assert unit_spread(np.array([[1.0, -1.0]])) == pytest.approx(1.0)  # std across units 1, RMS 1
    assert unit_spread(np.array([[1.0, 3.0]])) == pytest.approx(1 / math.sqrt(5))  # std 1, RMS √5
    same = np.tile(np.arange(1.0, 8.0)[:, None], (1, 5))  # W (7, 5): every unit (column) the same
    assert unit_spread(same) == 0.0
    assert unit_spread(same, units_axis=0) == pytest.approx(2 / math.sqrt(20))  # as rows: std 2, RMS √20
    assert unit_spread(np.zeros((4, 3))) == 0.0
    assert unit_spread(np.ones((4, 1))) == 1.0  # one unit has nothing to differ from
    rng = np.random.default_rng(0)
    assert unit_spread(rng.standard_normal((784, 512))) == pytest.approx(1.0, abs=0.01)
    assert unit_spread(rng.standard_normal((784, 512)) + 5.0) == pytest.approx(1 / math.sqrt(26), rel=0.02)


def test_unit_spread_of_a_convolution_compares_whole_filters():
    rng = np.random.default_rng(1)
    kernel = rng.standard_normal((3, 5, 5))  # W (F, C, KH, KW): units are the F filters (axis 0)
    copies = np.stack([kernel] * 8)
    assert unit_spread(copies, units_axis=0) == pytest.approx(0.0, abs=1e-12)
    random = unit_spread(rng.standard_normal((8, 3, 5, 5)), units_axis=0)
    assert random == pytest.approx(math.sqrt(7 / 8), abs=0.05)  # std over 8 (ddof 0): √(7/8) σ
    one_filter_differs = copies.copy()
    one_filter_differs[3] *= -1
    expected = math.sqrt(7 / 64) * 2  # per weight: std over (7 × w, 1 × −w) = 2·√(7/64)·|w|
    assert unit_spread(one_filter_differs, units_axis=0) == pytest.approx(expected)


def test_spread_is_std_over_rms():
    assert spread(np.full(10, 0.3)) == pytest.approx(0.0, abs=1e-12)  # one number for every unit
    assert spread(np.array([1.0, -1.0])) == 1.0
    assert spread(np.array([1.0, 3.0])) == pytest.approx(1 / math.sqrt(5))
    assert spread(np.zeros(4)) == 0.0
    # the fuzz audit: --hidden 1 got "[scalar-bias-gradient] every bias moved by the same amount": one always does
    assert spread(np.array([0.25])) == 1.0


def test_dead_fraction_counts_units_that_never_fired_dense_and_conv():
    y = np.array([[0.0, 1.0, 0.0, 0.0],
                  [0.0, 0.0, -1.0, 2.0],
                  [0.0, 0.0, 0.0, 0.0]])  # (N=3, 4 units): units 0 and 2 never > 0
    assert dead_fraction(y) == 0.5
    assert dead_fraction(np.maximum(y, 0) + 1e-9) == 0.0
    conv = np.zeros((2, 3, 4, 4))  # (N, C, H, W): a channel is one unit over every position
    conv[1, 2, 3, 0] = 0.5  # channel 2 fires once, on one pixel of one image
    assert dead_fraction(conv) == pytest.approx(2 / 3)
    conv[0, 0, 0, 0] = -7.0  # negative is not firing
    assert dead_fraction(conv) == pytest.approx(2 / 3)
    assert dead_fraction(np.zeros(5)) == 0.0 and dead_fraction(np.zeros((3, 0))) == 0.0


def test_saturated_fraction_counts_the_flat_tails_strictly_past_0_99():
    tanh = np.array([0.99, 0.991, -0.99, -0.995, 0.5, 0.0, 1.0, -1.0])
    assert saturated_fraction(tanh, "tanh") == pytest.approx(4 / 8)  # 0.991, -0.995, 1, -1
    sigmoid = np.array([0.01, 0.0099, 0.99, 0.9901, 0.5, 0.0, 1.0, 0.2])
    assert saturated_fraction(sigmoid, "sigmoid") == pytest.approx(4 / 8)  # 0.0099, 0.9901, 0, 1
    assert saturated_fraction(np.full((2, 3, 2, 2), 0.999, np.float32), "sigmoid") == 1.0
    assert saturated_fraction(np.zeros((0, 4)), "tanh") == 0.0
    with pytest.raises(ValueError, match="tanh and sigmoid, not 'relu'"):
        saturated_fraction(tanh, "relu")


def test_prediction_share_names_the_most_predicted_class():
    logits = np.array([[0, 0, 5.0], [0, 0, 1.0], [0, 3.0, 0], [-1.0, -2.0, 0]])  # argmax 2, 2, 1, 2
    assert prediction_share(logits) == (2, 0.75)
    assert prediction_share(np.eye(4)) == (0, 0.25)  # a tie: the lowest class
    assert prediction_share(np.zeros((5, 10))) == (0, 1.0)  # identical logits: argmax is class 0


def test_label_balance_counts_the_classes_held_and_the_commonest_and_rarest_shares():
    labels = np.array([0] * 500 + [1] * 495 + [2] * 5)  # class 3 of 4 is missing: not the "rarest"
    assert label_balance(labels, 4) == {"label_classes": 3.0, "top_label_share": 0.5, "least_label_share": 0.005,
                                        "lowest_label": 0.0, "highest_label": 2.0}
    assert label_balance(labels + 1, 4)["lowest_label"] == 1.0  # numbered from 1
    assert label_balance(np.arange(10).repeat(3), 10)["least_label_share"] == pytest.approx(0.1)
    assert label_balance(labels, 4, dev_labels=np.array([3, 3, 2, 0]))["dev_only_classes"] == 1  # dev has class 3
    assert "dev_only_classes" not in label_balance(labels, 4, dev_labels=np.array([2, 0]))  # recorded when some


def test_a_healthlog_told_the_dev_labels_names_dev_classes_training_lacks():
    log = HealthLog()
    log.labels(np.repeat(np.arange(7), 10), dev_labels=np.array([7, 8, 9] * 5))  # a split of sorted digits
    log.evaluation(0, train_loss=0.5, train_accuracy=0.9, dev_loss=5.0, dev_accuracy=0.0)
    recorded = {r.signal: r.value for r in log.rows}
    assert recorded["dev_only_classes"] == 3 and recorded["dev_images"] == 15 and recorded["train_images"] == 70
    first = log.diagnose()[0]
    assert first.id == "lopsided-labels" and "the dev labels hold 3 of them" in first.message


def test_a_healthlog_fed_one_rare_class_names_it_first():
    log = HealthLog()
    log.labels(np.array([k for k in range(9) for _ in range(100)] + [9]))  # one 9 among 901 labels
    log.evaluation(0, train_loss=2.0, train_accuracy=0.3)
    first = log.diagnose()[0]
    assert first.id == "lopsided-labels" and first.message.startswith("the rarest class has 0.1%"), first.message


# --- the table -----------------------------------------------------------------------------
ROWS = [Row(0, "model", "classes", 10.0), Row(0, "model", "input_max", 1.0), Row(0, "0.Dense", "grad_rms", 1e-300),
        Row(3, "0.Dense", "update_ratio", math.nan), Row(3, "0.Dense", "update_ratio", math.inf),
        Row(3, "model", "diverged_loss", -math.inf), Row(7, "1.ReLU·é, \"quoted\"", "dead_fraction", 0.1 + 0.2)]


def test_health_csv_round_trips_every_value_exactly(tmp_path):
    path = write_health_csv(tmp_path / "health.csv", ROWS)
    assert path.read_text().splitlines()[0] == ",".join(HEADER)
    back = read_health_csv(path)
    assert [(r.epoch, r.layer, r.signal) for r in back] == [(r.epoch, r.layer, r.signal) for r in ROWS]
    for got, wrote in zip(back, ROWS):
        assert got.value == wrote.value or (math.isnan(got.value) and math.isnan(wrote.value)), wrote
    assert not list(tmp_path.glob(".*")), "a temporary file was left behind"


def test_a_growing_table_written_piece_by_piece_is_the_table_written_at_once(tmp_path):
    """A run writes health.csv at every checkpoint: HealthText formats only the rows added."""
    text, rows = HealthText(), []
    for row in ROWS:
        rows.append(row)
        write_health_csv(tmp_path / "growing.csv", rows, text)
    assert (tmp_path / "growing.csv").read_bytes() == write_health_csv(tmp_path / "once.csv", rows).read_bytes()


HEALTH_ERRORS = [
    ("", "empty; expected a header line"),
    ("epoch,layer,signal\n0,model,steps\n", "header must be epoch,layer,signal,value"),
    ("Epoch,layer,signal,value\n", "header must be"),
    ("epoch,layer,signal,value\n0,model,steps\n", "row 2: expected 4 fields"),
    ("epoch,layer,signal,value\n0,model,steps,1\n0,0.Dense,gradient_rms,1\n",
     "row 3: unknown signal 'gradient_rms'; did you mean 'grad_rms'?"),
    ("epoch,layer,signal,value\n1.5,model,steps,1\n", "epoch must be a whole number, got '1.5'"),
    ("epoch,layer,signal,value\nx,model,steps,1\n", "epoch must be a whole number, got 'x'"),
    ("epoch,layer,signal,value\n-1,model,steps,1\n", "epoch must be between 0 and 1e9, got -1"),
    ("epoch,layer,signal,value\n0,0.Dense,steps,1\n", "steps belongs to the model, got layer '0.Dense'"),
    ("epoch,layer,signal,value\n0,model,grad_rms,1\n", "grad_rms belongs to a layer, got layer 'model'"),
    ("epoch,layer,signal,value\n0,,grad_rms,1\n", "layer label must be 1-100 printable characters"),
    ("epoch,layer,signal,value\n0,a\tb,grad_rms,1\n", "layer label must be 1-100 printable characters"),
    ("epoch,layer,signal,value\n0,0.Dense,grad_rms,high\n", "expected a number, got 'high'"),
    ("epoch,layer,signal,value\n\"0,0.Dense,grad_rms,1\n", "expected 4 fields"),
    ("epoch,layer,signal,value\n0,model,health_every,0\n", "health_every is a whole number of evaluations from 1"),
    # a later version's signal: each new one stopped the version before at this line (a run shared in a class)
    ("epoch,layer,signal,value\n0,model,shiny_new_signal,1\n", r"unknown signal 'shiny_new_signal'; the \d+ signals "
     r"are listed .* \(or, if a newer scratchnn wrote this file, upgrade scratchnn to read it\)"),
]
METRICS_ERRORS = [
    ("epoch,train_loss\n1,2.3\n", "needs the columns epoch, train_loss, train_accuracy"),
    ("epoch,train_loss,train_accuracy,epoch\n1,2,0.1,1\n", "once each"),
    ("epoch,train_loss,train_accuracy\n1,2.3\n", "row 2: 2 fields, the header has 3"),
    ("epoch,train_loss,train_accuracy\n1,2.3,much\n", "train_accuracy: expected a number, got 'much'"),
    ("epoch,train_loss,train_accuracy\n2,2.3,0.1\n1,2.2,0.2\n", "epochs must increase row by row"),
    ("epoch,train_loss,train_accuracy\n1e3,2.3,0.1\n", "epoch must be a whole number"),
]


@pytest.mark.parametrize("reader, text, words", [(read_health_csv, *case) for case in HEALTH_ERRORS]
                         + [(read_metrics_csv, *case) for case in METRICS_ERRORS])
def test_a_malformed_table_is_one_line_naming_the_problem(tmp_path, reader, text, words):
    path = tmp_path / "table.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=words) as error:
        reader(path)
    assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)


def test_metrics_csv_keeps_the_doctors_columns_and_nan_for_a_missing_dev_set(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,train_loss,train_accuracy,lr,seconds\n1,2.25,0.125,0.1,3\n2,2.0,0.5,0.1,3\n")
    rows = read_metrics_csv(path)
    assert [r["epoch"] for r in rows] == [1, 2] and rows[1]["train_loss"] == 2.0
    assert set(rows[0]) == {"epoch", "train_loss", "train_accuracy", "dev_loss", "dev_accuracy", "lr"}
    assert math.isnan(rows[0]["dev_loss"])


def test_a_header_field_with_a_line_break_still_gives_a_one_line_error(tmp_path):
    for name, reader in (("health.csv", read_health_csv), ("metrics.csv", read_metrics_csv)):
        path = tmp_path / name
        path.write_text('"epoch\nlayer",x,y,z\n0,1,2,3\n')
        with pytest.raises(DataError) as error:
            reader(path)
        assert "\n" not in str(error.value), str(error.value)


def test_an_oversize_table_is_refused_after_a_bounded_read_and_a_pipe_before_any(tmp_path):
    """Only MAX_TABLE_BYTES + 1 bytes are read from a huge file; a run folder's metrics.csv
    pointing at /dev/zero (endless, its size on disk says 0) or at a pipe nobody writes to (open()
    waited for ever) is refused before it is read."""
    huge = tmp_path / "huge"
    with huge.open("wb") as f:
        f.truncate(100 * MAX_TABLE_BYTES)  # sparse: reads as zeros, costs no disk
    os.mkfifo(tmp_path / "pipe")
    others = [tmp_path / "pipe", *([Path("/dev/zero")] if Path("/dev/zero").exists() else [])]
    for source in [huge, *others]:
        for name, reader in (("health.csv", read_health_csv), ("metrics.csv", read_metrics_csv)):
            path = tmp_path / name
            path.unlink(missing_ok=True)
            path.symlink_to(source)
            said = (f"over the {MAX_TABLE_BYTES:,} bytes a run's table can hold" if source == huge
                    else "a pipe, device or socket, not a file")
            tracemalloc.start()
            try:
                with pytest.raises(DataError, match=said):
                    reader(path)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            assert peak < 3 * MAX_TABLE_BYTES


def test_a_table_of_more_rows_than_a_run_writes_is_refused(tmp_path):
    """A 64 MiB health.csv took 1.2 GB and 41 s to diagnose: rows past MAX_TABLE_ROWS are refused."""
    rows = MAX_TABLE_ROWS + 1
    (tmp_path / "health.csv").write_text("epoch,layer,signal,value\n" + "0,model,steps,0\n" * rows)
    with pytest.raises(DataError, match=f"more than the {MAX_TABLE_ROWS:,} rows a run's table can hold"):
        read_health_csv(tmp_path / "health.csv")


def test_missing_and_binary_tables_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_health_csv(tmp_path / "nope.csv")
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00epoch")
    with pytest.raises(DataError, match="not UTF-8 text"):
        read_metrics_csv(tmp_path / "bin.csv")


def seed_tables():
    """Valid health.csv and metrics.csv bytes, as HealthLog writes them."""
    log = HealthLog()
    rng = np.random.default_rng(0)
    for epoch in (0, 10, 20):
        log.evaluation(epoch, train_loss=2.3 - epoch / 100, train_accuracy=0.1 + epoch / 100, dev_loss=2.3,
                       dev_accuracy=0.1)
        log.inputs(epoch, rng.random((4, 784)))
        log.outputs(epoch, rng.standard_normal((8, 10)))
        log.weights(epoch, "W1", rng.standard_normal((10, 784)), grad=rng.standard_normal((10, 784)),
                    before=rng.standard_normal((10, 784)), bias_step=rng.standard_normal(10), units_axis=0)
        log.activation(epoch, "A1", rng.standard_normal((10, 8)), kind="relu", units_axis=0)
    return log


@st.composite
def mutated(draw, seed: bytes):
    """A valid table changed 1 to 4 times: cut, a byte flipped, a run of CSV syntax inserted, a
    line duplicated or swapped with another."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["cut", "flip", "insert", "lines"]))
        position = draw(st.integers(0, len(data)))
        if kind == "cut":
            del data[position:]
        elif kind == "flip" and data:
            data[min(position, len(data) - 1)] ^= draw(st.integers(1, 255))
        elif kind == "insert":
            data[position:position] = draw(st.sampled_from(
                [b",", b"\n", b'"', b"\r", b"nan", b"-", b"1e999", b"\x00", b"model", b"\xc3"])) * draw(
                st.sampled_from([1, 3, 200]))
        elif kind == "lines":
            lines = bytes(data).split(b"\n")
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i] + (b"\n" + lines[i] if draw(st.booleans()) else b"")
            data = bytearray(b"\n".join(lines))
    return bytes(data)


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    folder = seed_tables().save(tmp_path_factory.mktemp("tables"))
    return {"health": (folder / "health.csv").read_bytes(), "metrics": (folder / "metrics.csv").read_bytes()}


def parse_or_refuse(reader, path, data: bytes) -> None:
    """``reader(path)`` on ``data`` returns rows or raises one DataError line naming the file."""
    path.write_bytes(data)
    try:
        rows = reader(path)
    except DataError as error:  # any other exception escapes and fails the test
        message = str(error)
        assert message.startswith(str(path)) and "\n" not in message and len(message) < 600, message
    else:
        assert isinstance(rows, list)


@pytest.mark.slow  # hypothesis: a few seconds each
@FUZZ
@given(data=st.data())
def test_mutated_health_csv_parses_or_is_refused_in_one_line(tmp_path, seeds, data):
    parse_or_refuse(read_health_csv, tmp_path / "health.csv", data.draw(mutated(seeds["health"])))


@pytest.mark.slow
@FUZZ
@given(data=st.data())
def test_mutated_metrics_csv_parses_or_is_refused_in_one_line(tmp_path, seeds, data):
    parse_or_refuse(read_metrics_csv, tmp_path / "metrics.csv", data.draw(mutated(seeds["metrics"])))


# --- HealthLog in a learner's loop, against HealthRecorder -----------------------------------
def seed_step(W1, b1, W2, b2, X, Y):
    """One step of the seed tutorial's network in its own notation: X (784, m), W1 (10, 784),
    A1 (10, m), Z2 (10, m); returns the gradients (dW1, db1, dW2, db2) and the activations."""
    m = X.shape[1]
    Z1 = W1.dot(X) + b1
    A1 = np.maximum(Z1, 0)
    Z2 = W2.dot(A1) + b2
    A2 = np.exp(Z2 - Z2.max(axis=0)) / np.exp(Z2 - Z2.max(axis=0)).sum(axis=0)
    dZ2 = A2 - np.eye(10)[Y].T
    dW2, db2 = dZ2.dot(A1.T) / m, dZ2.sum(axis=1, keepdims=True) / m
    dZ1 = W2.T.dot(dZ2) * (Z1 > 0)
    dW1, db1 = dZ1.dot(X.T) / m, dZ1.sum(axis=1, keepdims=True) / m
    return (dW1, db1, dW2, db2), (A1, Z2)


def test_a_learners_seed_loop_records_what_health_recorder_records():
    rng = np.random.default_rng(3)
    m = 64
    X, Y = rng.random((784, m)), rng.integers(0, 10, m)
    W1, b1 = rng.random((10, 784)) - 0.5, rng.random((10, 1)) - 0.5
    W2, b2 = rng.random((10, 10)) - 0.5, rng.random((10, 1)) - 0.5
    model = Sequential([Dense(784, 10), ReLU(), Dense(10, 10)]).astype(np.float64)
    for layer, W, b in ((model.layers[0], W1, b1), (model.layers[2], W2, b2)):  # x @ W is W.dot(X) transposed
        layer.params["W"][...], layer.params["b"][...] = W.T, b[:, 0]
    recorder = HealthRecorder(X.T.copy())
    loss = SoftmaxCrossEntropy()
    loss.forward(model.forward(X.T, training=True), Y)
    model.backward(loss.backward())
    recorder.before_step(model)
    for layer in (model.layers[0], model.layers[2]):
        for name in ("W", "b"):
            layer.params[name] -= 0.1 * layer.grads[name]
    recorder.after_step(model)
    recorder.record(model, 1, 1)

    log = HealthLog()
    (dW1, db1, dW2, db2), _ = seed_step(W1, b1, W2, b2, X, Y)
    new = {"W1": (W1 - 0.1 * dW1, b1 - 0.1 * db1), "W2": (W2 - 0.1 * dW2, b2 - 0.1 * db2)}
    for name, grad, before, bias_before in (("W1", dW1, W1, b1), ("W2", dW2, W2, b2)):
        log.weights(1, name, new[name][0], grad=grad, before=before, bias_step=new[name][1] - bias_before,
                    units_axis=0)
    _, (A1, Z2) = seed_step(*new["W1"], *new["W2"], X, Y)
    log.inputs(1, X)
    log.outputs(1, Z2, classes_axis=0)
    log.activation(1, "A1", A1, kind="relu", units_axis=0)

    labels = {"W1": "0.Dense", "A1": "1.ReLU", "W2": "2.Dense", "model": "model"}
    learner = {(labels[r.layer], r.signal): r.value for r in log.rows if r.epoch == 1}
    scratchnn = {(r.layer, r.signal): r.value for r in recorder.rows if r.epoch == 1}
    assert len(learner) == 19 and set(learner) <= set(scratchnn), set(learner) - set(scratchnn)
    for key, value in learner.items():
        assert value == pytest.approx(scratchnn[key], rel=1e-9, abs=1e-12), key
    metrics = [{"epoch": 1, "train_loss": 2.3, "train_accuracy": 0.1}]  # the doctor sees the same network
    assert [f.id for f in diagnose(metrics, log.rows)] == [f.id for f in diagnose(metrics, recorder.rows)]


def test_the_counts_of_images_are_recorded_by_fit_and_by_a_learners_log():
    """train_images and dev_images: what the memorising rule weighs a gap against."""
    rng = np.random.default_rng(5)
    x, y = rng.random((96, 64)), rng.integers(0, 10, 96)
    health = HealthRecorder.for_data(x)
    fit(Sequential([Dense(64, 10), ReLU(), Dense(10, 10)]), SGD(0.1), x[:80], y[:80], epochs=1,
        x_dev=x[80:], y_dev=y[80:], health=health)
    counts = {r.signal: r.value for r in health.rows if r.epoch == 0 and r.signal.endswith("_images")}
    assert counts == {"train_images": 80, "dev_images": 16}
    log = HealthLog()
    log.labels(y[:80])
    assert not [r for r in log.rows if r.signal.endswith("_images")]  # no dev set named: no counts
    log.labels(y[:80], dev_images=16)
    assert {r.signal: r.value for r in log.rows if r.signal.endswith("_images")} == counts


# --- fit: the fast path records the textbook path's health ----------------------------------
@pytest.mark.parametrize("optimizer, batch_size", [(lambda: SGD(0.1), 0), (lambda: Adam(1e-2), 16)])
def test_fit_records_the_same_health_on_the_fast_and_textbook_paths(optimizer, batch_size):
    rng = np.random.default_rng(5)
    x, y = rng.random((96, 64)), rng.integers(0, 10, 96)
    recorded = {}
    for fast in (True, False):
        model = Sequential([Dense(64, 10, rng=np.random.default_rng(1)), ReLU(),
                            Dense(10, 10, rng=np.random.default_rng(2))]).astype(np.float64)
        health = HealthRecorder.for_data(x)
        fit(model, optimizer(), x, y, epochs=6, eval_every=2, batch_size=batch_size,
            rng=np.random.default_rng(0), health=health, fast=fast)
        recorded[fast] = health.rows
    fast_rows, textbook_rows = recorded[True], recorded[False]
    assert [(r.epoch, r.layer, r.signal) for r in fast_rows] == [(r.epoch, r.layer, r.signal) for r in textbook_rows]
    assert {r.signal for r in fast_rows} >= {"grad_rms", "update_ratio", "weight_rms", "dead_fraction",
                                             "bias_update_spread", "top_class_share"}
    for got, expected in zip(fast_rows, textbook_rows):
        assert got.value == pytest.approx(expected.value, rel=1e-9, abs=1e-12), (got, expected)


def test_template_accuracy_reads_images_by_their_class_means():
    from scratchnn.doctor.signals import template_accuracy

    labels = np.array([0, 0, 1, 1])
    x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    assert template_accuracy(x, labels, x) == 1.0
    assert template_accuracy(x, labels, x[:, ::-1]) == 0.0  # every image looks like the other class
    assert template_accuracy(x, labels, np.array([[1.0, 0.0]] * 4)) == 0.5
    assert np.isnan(template_accuracy(x[:0], labels[:0], x[:0]))
    with pytest.raises(ValueError, match="one shape"):
        template_accuracy(x, labels, x[:3])


@pytest.mark.parametrize("column, value, words", [("train_loss", -1.0, "a cross-entropy loss is 0 or more, got -1.0"),
                                                  ("dev_loss", -0.5, "dev_loss: a cross-entropy loss is 0 or more"),
                                                  ("train_accuracy", 1.5, "an accuracy is between 0 and 1, got 1.5"),
                                                  ("dev_accuracy", -0.1, "an accuracy is between 0 and 1")])
def test_metrics_out_of_their_range_are_refused_naming_the_cell(column, value, words):
    row = {"epoch": 0, "train_loss": 2.3, "train_accuracy": 0.1, "dev_loss": 2.3, "dev_accuracy": 0.1, column: value}
    with pytest.raises(DataError, match=f"metrics, row 2, {column}: ") as error:
        check_metric_rows([row])
    assert words in str(error.value)
    assert math.isnan(check_metric_rows([{**row, column: math.nan}])[0][column])  # NaN: not measured, or diverged


def test_a_blank_lr_column_is_no_number_recorded_not_a_damaged_file(tmp_path):
    """metrics.csv gained an optional lr column for the doctor; one left blank must not stop it (the review)."""
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,train_loss,train_accuracy,lr\n1,2.25,0.125,\n2,2.0,0.5,\n")
    assert all(math.isnan(row["lr"]) for row in read_metrics_csv(path))


def test_a_long_runs_health_is_recorded_at_evenly_thinned_evaluations(monkeypatch):
    """The long-run audit: 100,000 evaluated iterations of the seed preset wrote 2 million health
    rows (80 MB, rewritten at each checkpoint), past the 1,000,000 rows health.csv's readers take.
    A recorder told how many evaluations the run plans records one in ``every``, fixed at its
    first record so that the table stays under HEALTH_ROWS; the last evaluation is always recorded."""
    from scratchnn.training import health as health_module

    rng = np.random.default_rng(0)
    x, y = rng.random((64, 12)).astype(np.float32), rng.integers(0, 3, 64)
    model = Sequential([Dense(12, 8, rng=0), ReLU(), Dense(8, 3, rng=1)])
    first = HealthRecorder(x[:16])
    fit(model, SGD(0.1), x, y, epochs=1, batch_size=32, health=first, rng=0)
    once = set(label_balance(y, 3))  # the labels' balance: recorded once a run, not at each evaluation
    per_evaluation = sum(row.epoch == 0 and row.signal not in once  # the untrained network's, its first step's
                         for row in first.rows)
    monkeypatch.setattr(health_module, "HEALTH_ROWS", per_evaluation * 9)  # 27 planned evaluations: one in 3
    recorder = HealthRecorder(x[:16], planned=27)
    fit(model, SGD(0.1), x, y, epochs=56, eval_every=2, batch_size=32, health=recorder, rng=0)
    assert recorder.every == 3
    recorded = sorted({row.epoch for row in recorder.rows})
    assert recorded == [0, *range(6, 55, 6), 56], recorded  # evaluations 3, 6, ... of every 2nd epoch, and the last
    grads = {row.epoch for row in recorder.rows if row.signal == "grad_rms"}
    assert grads == set(recorded)  # each recorded evaluation has its step's gradients, the others none
    assert len(recorder.rows) <= per_evaluation * (9 + 2)  # the budget, and the untrained network's and the last
    assert [row.value for row in recorder.rows if row.signal == "health_every"] == [3]  # said, for a resume:
    assert HealthRecorder(x[:16], rows=recorder.rows, planned=27).every == 3  # it goes on with the same ones
    unplanned = HealthRecorder(x[:16])
    fit(model, SGD(0.1), x, y, epochs=6, batch_size=32, health=unplanned, rng=0)
    assert sorted({row.epoch for row in unplanned.rows}) == list(range(7))  # the Python API's: every one


def test_a_long_run_stopped_off_its_thinned_evaluations_still_records_its_last(monkeypatch):
    """The review: with health thinned, a run stopped early (Stop, early stopping) at an evaluation
    not due recorded nothing of its last network."""
    from scratchnn.training import health as health_module

    rng = np.random.default_rng(0)
    x, y = rng.random((64, 12)).astype(np.float32), rng.integers(0, 3, 64)
    monkeypatch.setattr(health_module, "HEALTH_ROWS", 1)  # every evaluation is over the budget: one in 100
    recorder = HealthRecorder(x[:16], planned=100)
    stops = iter([False] * 13 + [True])  # 2 batches an epoch: stopped at the end of epoch 7
    fit(Sequential([Dense(12, 8, rng=0), ReLU(), Dense(8, 3, rng=1)]), SGD(0.1), x, y, epochs=100, batch_size=32,
        health=recorder, rng=0, stop_requested=lambda: next(stops))
    assert sorted({row.epoch for row in recorder.rows}) == [0, 7]
