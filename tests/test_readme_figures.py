"""The README's accuracy figures for deep-mlp and lenet5, kept honest (slow: minutes each).

Seed 0 on the 9,000/1,000 split of the real MNIST CSV, as the README's table says; each floor
sits a little under the README's figure (the run is deterministic on one machine, but another
BLAS rounds differently). cnn (2.3 min) and the Fashion-MNIST column (~14 min for cnn) do not
fit the 10-minute CI budget: benchmarks/readme_figures.py measures them.
"""
import pytest

from scratchnn.training.presets import get_preset
from scratchnn.training.run import train_run
from test_mlp_preset import alarms


@pytest.mark.slow
@pytest.mark.parametrize("preset, readme, floor", [
    ("deep-mlp", 0.974, 0.965),
    ("lenet5", 0.991, 0.982),
])
def test_the_preset_reaches_the_readme_figure(tmp_path, shared_dir, preset, readme, floor):
    config = get_preset(preset)
    config.csv = str(shared_dir / "datasets/mnist/t10k-kaggle.csv.gz")
    result = train_run(config, tmp_path, log=lambda line: None, progress=False)
    assert len(result.history) == config.epochs
    dev = result.metrics["dev_accuracy"]
    assert dev >= floor, f"{preset} reached {dev:.4f} dev accuracy; the README says {readme} (floor {floor})"
    assert not alarms(result), alarms(result)  # healthy recipes: no doctor's error or warning
