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
    assert printed == [f.to_dict() for f in log.diagnose()]
    assert set(printed[1]) == {"id", "severity", "epoch", "message", "explanation", "fix", "layer", "step"}
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
    assert printed == [f.to_dict() for f in log.diagnose()]


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
