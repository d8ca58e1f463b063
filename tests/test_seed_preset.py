"""The seed tutorial's recipe on real MNIST digits from ../shared."""
import dataclasses

import numpy as np
import pytest

from scratchnn.io import load, read_metadata
from scratchnn.training.config import TrainConfig
from scratchnn.training.presets import get_preset
from scratchnn.training.run import train_run
from scratchnn.training.run_data import load_set
from test_mlp_preset import alarms


@pytest.mark.slow  # the seed recipe, 500 full-batch iterations on 9,000 real digits
@pytest.mark.parametrize("source", ["csv", "idx"])
def test_seed_preset_reaches_83_5_percent_on_the_dev_set(tmp_path, shared_dir, source):
    mnist = shared_dir / "datasets/mnist"
    config = get_preset("seed")
    if source == "csv":
        config.csv = str(mnist / "t10k-kaggle.csv.gz")
    else:
        config.images, config.labels = str(mnist / "t10k-images-idx3-ubyte.gz"), str(mnist / "t10k-labels-idx1-ubyte.gz")
    lines = []
    result = train_run(config, tmp_path, log=lines.append)
    assert sum(line.startswith("Iteration") for line in lines) == 50  # every 10 of 500
    assert "(9,000 train / 1,000 dev)" in lines[0]
    # Seeds 0-4 of this recipe (9,000/1,000 split of the CSV) reached dev 0.847, 0.849, 0.866, 0.852,
    # 0.846 and train 0.863, 0.848, 0.866, 0.864, 0.856. The floor sits a little under the minimum:
    # half the learning rate (0.05) or half the iterations (250) reach only ~0.80 and must fail.
    assert result.history[-1].dev_accuracy >= 0.835, f"the seed recipe fell to {result.history[-1].dev_accuracy:.4f} dev"
    assert not alarms(result), alarms(result)  # the tutorial's recipe is slow but healthy
    assert result.history[-1].train_accuracy >= 0.835, f"the seed recipe fell to {result.history[-1].train_accuracy:.4f} train"

    # the saved model and config reproduce the same dev-set accuracy
    model = load(result.model_path)
    saved = TrainConfig.from_dict(read_metadata(result.model_path)["config"])
    digests = {name: getattr(saved, name) for name in ("csv_sha256", "images_sha256", "labels_sha256")}
    assert sorted(name for name, value in digests.items() if value) == (
        ["csv_sha256"] if source == "csv" else ["images_sha256", "labels_sha256"])  # train records the files
    assert dataclasses.replace(saved, **{name: "" for name in digests}) == config
    images, labels, _, _ = load_set(saved, "dev")
    x = images.reshape(len(images), -1).astype(np.float32) / 255
    assert np.mean(model.predict(x) == labels) == pytest.approx(result.history[-1].dev_accuracy)


def test_seed_preset_uses_the_tutorials_initialisation():
    model = get_preset("seed").build_model(np.random.default_rng(0))
    for _, param, _ in model.named_parameters():
        assert param.min() >= -0.5 and param.max() < 0.5 and param.dtype == np.float32
