"""A learner's own network: the README's hand-written seed tutorial, recorded with HealthLog.

``examples/doctor_own_network.py`` is the README's example, included there verbatim: the seed
tutorial's 784-10-10 network in NumPy, W1 (10, 784) as the tutorial writes it, trained on 2,000
of the shared digits. With the tutorial's scalar bias gradient the doctor names it; with the
per-unit one it does not. ``scratchnn doctor DIR --json`` reads what ``HealthLog.save`` writes.
"""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scratchnn.cli.main import main
from scratchnn.data.idx import read_idx_pair
from scratchnn.doctor import HealthLog
from scratchnn.doctor.signals import read_metrics_csv

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "doctor_own_network.py"


def load_example():
    spec = importlib.util.spec_from_file_location("doctor_own_network", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def digits(shared_dir):
    """2,000 of the shared MNIST digits as the tutorial holds them: X (784, m) in 0..1, Y (m,)."""
    mnist = shared_dir / "datasets" / "mnist"
    images, labels = read_idx_pair(mnist / "t10k-images-idx3-ubyte.gz", mnist / "t10k-labels-idx1-ubyte.gz")
    return images[:2000].reshape(-1, 784).T / 255, labels[:2000]


def test_the_readme_shows_the_example_verbatim():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- examples/doctor_own_network.py -->\n```python\n", 1)[1].split("```\n", 1)[0]
    assert block == EXAMPLE.read_text()
    assert readme.index("## The training doctor") < readme.index("### Break it on purpose") \
        < readme.index("### A learner's own network")


def test_a_hand_written_seed_network_with_the_tutorials_bias_gradient_is_diagnosed(digits):
    train = load_example().train
    buggy, correct = train(*digits, scalar_bias=True), train(*digits)
    buggy_ids = [f.id for f in buggy.diagnose()]
    assert buggy_ids[0] == "scalar-bias-gradient", buggy_ids
    assert "W1" in buggy.diagnose()[0].message
    assert "scalar-bias-gradient" not in [f.id for f in correct.diagnose()]
    assert correct.metrics[-1]["train_loss"] < correct.metrics[0]["train_loss"]  # it does learn


def doctor_json(folder, capsys) -> list[dict]:
    """``scratchnn doctor FOLDER --json``, parsed."""
    assert main(["doctor", str(folder), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_scratchnn_doctor_json_on_a_saved_healthlog(tmp_path, capsys):
    log = HealthLog()
    fired = np.zeros((4, 10))
    fired[:, :3] = 1.0  # 7 of the 10 units never fire
    for epoch in range(3):
        log.evaluation(epoch, train_loss=2.0 - 0.5 * epoch, train_accuracy=0.2 + 0.2 * epoch)
        log.inputs(epoch, np.array([0.0, 255.0]))
        log.activation(epoch, "A1", fired, kind="relu")
    printed = doctor_json(log.save(tmp_path / "mine"), capsys)
    assert [f["id"] for f in printed] == ["unscaled-inputs", "dead-relu"]
    assert printed == [f.to_dict() | {"run": str(tmp_path / "mine")} for f in log.diagnose()]  # each names its run
    assert set(printed[1]) == {"id", "severity", "epoch", "message", "explanation", "fix", "layer", "step", "run"}
    assert printed[1]["step"] == "epoch"  # a HealthLog counts steps only where told
    assert printed[1]["layer"] == "A1" and printed[1]["epoch"] == 1 and "70%" in printed[1]["message"]


SAVES_NUMPY_SCALARS = ("HealthLog.save writes metrics with repr(), and a NumPy scalar (np.mean's result, what a "
                       "learner passes as train_loss) comes out as 'np.float64(2.3)', which read_metrics_csv "
                       "refuses: metrics.csv should hold float(value)")


def test_healthlog_saves_numpy_scalars_readably(tmp_path):
    log = HealthLog()
    log.evaluation(0, train_loss=np.float64(2.3), train_accuracy=np.mean(np.array([0.0, 1.0])))
    assert read_metrics_csv(log.save(tmp_path) / "metrics.csv")[0]["train_loss"] == 2.3


def test_scratchnn_doctor_json_reads_the_examples_folder(digits, tmp_path, capsys):
    log = load_example().train(*digits, iterations=5, scalar_bias=True)
    printed = doctor_json(log.save(tmp_path / "mine"), capsys)
    assert printed[0]["id"] == "scalar-bias-gradient" and printed[0]["layer"] == "W1"
    assert printed == [f.to_dict() | {"run": str(tmp_path / "mine")} for f in log.diagnose()]  # each names its run


def test_the_example_runs_as_a_script(shared_dir, tmp_path):
    mnist = shared_dir / "datasets" / "mnist"
    done = subprocess.run([sys.executable, str(EXAMPLE), str(mnist / "t10k-images-idx3-ubyte.gz"),
                           str(mnist / "t10k-labels-idx1-ubyte.gz"), str(tmp_path / "out"), "--scalar-bias"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("[scalar-bias-gradient] warning: W1:")
    assert (tmp_path / "out" / "health.csv").is_file() and (tmp_path / "out" / "metrics.csv").is_file()



def test_a_healthlog_learns_of_an_augmentation_that_leaves_the_images_unreadable():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 20)
    x = np.eye(10)[labels] + 0.1 * rng.random((200, 10))  # each class its own pixel: templates read them all
    log = HealthLog()
    log.augmentation(x, labels, rng.permutation(x, axis=1))  # the pixels scrambled: one in ten read right
    log.evaluation(1, train_loss=2.3, train_accuracy=0.1)
    found = log.diagnose()
    assert found and found[0].id == "unreadable-augmentation", found
    assert "100% of the sampled training images as they are" in found[0].message


def test_a_healthlog_learns_of_labels_that_miss_classes():
    log = HealthLog()
    log.labels(np.array([1] * 90 + [7] * 10))  # HealthLog(classes=10), the default
    log.evaluation(1, train_loss=0.3, train_accuracy=0.9)
    found = log.diagnose()
    assert found and found[0].id == "lopsided-labels", found
    assert found[0].message.startswith("the training labels hold 2 of the network's 10 classes (8 classes have no "
                                       "training images)")


def test_a_healthlog_refuses_labels_it_would_misread_and_names_the_fix():
    """The API audit: labels 1..10 (class 0 missing, 10 out of range) were taken without a word, and
    one-hot rows read as the classes 0 and 1 ('[lopsided-labels] ... 2 of 10 classes', with a fix
    about --csv)."""
    from scratchnn.errors import ConfigError, ShapeError

    y = np.arange(10).repeat(5)
    for labels, words in ((y + 1, r"^HealthLog labels: labels must lie in 0..9, got 1..10; numbered from 1 by the "
                                  r"look of it: labels - 1$"),
                          (y + 17, r"got 17..26; or, if the network has 27 outputs, HealthLog\(classes=27\)$"),
                          (np.eye(10)[y], r"got shape \(50, 10\): one-hot rows, .*; pass labels.argmax\(1\)$"),
                          (np.eye(10)[y].T, r"one-hot columns \(C, N\), as the tutorial's one_hot_Y; pass "
                                            r"labels.argmax\(0\)$"),
                          (y.astype(float), r"whole numbers stored as floats: labels.astype\(int\)$")):
        with pytest.raises(ShapeError, match=words):
            HealthLog().labels(labels)
    with pytest.raises(ShapeError, match=r"^HealthLog dev_labels: labels must lie in 0..9, got 0..10"):
        HealthLog().labels(y, dev_labels=np.append(y, 10))
    with pytest.raises(ConfigError, match="classes is the network's number of outputs, a whole number >= 2, got 1"):
        HealthLog(classes=1)


def test_a_healthlog_refuses_logits_along_the_wrong_axis():
    """The API audit: the tutorial's Z2 (10, m) given without classes_axis=0 was read as 10 images of
    m classes, and the doctor said 'class 0 takes 100%' of the answers when it was class 6."""
    from scratchnn.errors import ShapeError

    z2 = np.zeros((10, 40))
    z2[6] = 5.0  # the tutorial's layout (C, N): every image's largest logit is class 6
    with pytest.raises(ShapeError, match=r"logits of shape \(10, 40\) have 40 along classes_axis=-1, not the log's 10 "
                                         r"classes; pass classes_axis=0 for the tutorial's \(10, m\) layout"):
        HealthLog().outputs(0, z2)
    with pytest.raises(ShapeError, match=r"pass classes_axis=-1 for logits \(N, C\)$"):
        HealthLog().outputs(0, z2.T, classes_axis=0)
    with pytest.raises(ShapeError, match=r"if the network has 7 outputs, HealthLog\(classes=7\)$"):
        HealthLog().outputs(0, np.zeros((40, 7)))
    log = HealthLog()
    log.outputs(0, z2, classes_axis=0)
    assert {r.signal: r.value for r in log.rows}["top_class"] == 6


def test_a_learners_own_loop_is_told_of_lopsided_labels_without_scratchnns_flags():
    from scratchnn.doctor import Settings

    log = HealthLog()
    log.labels(np.array([1] * 90 + [7] * 10))
    log.evaluation(1, train_loss=0.3, train_accuracy=0.9)
    fix = log.diagnose(Settings({"lr": 0.1}))[0].fix
    assert fix.startswith("check that these are the right labels and not cut from data sorted by label")
    assert fix.endswith("if the data has only these 2 classes, give the network 2 outputs") and "--" not in fix
