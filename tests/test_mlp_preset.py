"""The mlp preset (the default of ``scratchnn train``) on real MNIST digits from ../shared."""
import pytest

from scratchnn.training.presets import DEFAULT_PRESET, get_preset
from scratchnn.training.run import train_run

pytestmark = pytest.mark.slow  # trains the default preset for 40 epochs on 9,000 digits (about a minute)


def test_mlp_preset_reaches_96_5_percent_on_the_dev_set(tmp_path, shared_dir):
    config = get_preset("mlp")
    config.csv = str(shared_dir / "datasets/mnist/t10k-kaggle.csv.gz")
    result = train_run(config, tmp_path, log=lambda line: None, progress=False)
    assert len(result.history) == config.epochs
    assert result.history[-1].dev_accuracy >= 0.965, result.history[-1]
    assert not alarms(result), alarms(result)  # a healthy recipe: the doctor has nothing to say


def alarms(result) -> list[str]:
    """The run's error and warning findings, as the doctor prints them."""
    return [f.line() for f in result.findings if f.severity in ("error", "warning")]


def test_the_default_preset_is_mlp():
    assert DEFAULT_PRESET == "mlp"
