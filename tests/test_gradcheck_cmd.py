"""`scratchnn gradcheck` must fail, and name the layer, when a backward pass is wrong.

The pass path is in test_cli.py; here a backward is broken in-process and the command is run
through its entry point, as ``scratchnn gradcheck`` runs it.
"""
import pytest

from scratchnn import gradcheck
from scratchnn.cli.main import main
from scratchnn.nn.batchnorm import BatchNorm2d
from scratchnn.nn.pool import MaxPool2D
from scratchnn.nn.dense import Dense


def off_by(factor, backward, grad=None):
    """``backward`` with its result (grad=None) or one parameter gradient scaled by ``factor``."""
    def wrong(self, dy, *args, **kwargs):
        dx = backward(self, dy, *args, **kwargs)
        if grad is None:
            return None if dx is None else dx * factor
        self.grads[grad] *= factor
        return dx
    return wrong


@pytest.mark.parametrize("layer, grad, named", [
    (Dense, "W", "Dense"),        # dW 0.1% too large: relative error ~5e-4
    (MaxPool2D, None, "MaxPool2D"),  # dx 0.1% too large
    (BatchNorm2d, "gamma", "BatchNorm2d"),  # dγ 0.1% too large (BatchNorm1d shares the math, not this method)
])
def test_a_wrong_backward_fails_and_names_the_layer(monkeypatch, capsys, layer, grad, named):
    monkeypatch.setattr(layer, "backward", off_by(1.001, layer.backward, grad))
    assert main(["gradcheck"]) == 1, "gradcheck passed with a backward pass that is 0.1% off"
    out = capsys.readouterr().out
    failed = [line for line in out.splitlines() if line.endswith("FAIL")]
    assert failed and all(line.startswith((named, "Sequential")) for line in failed), out
    assert any(line.startswith(named) and f" d{grad or 'x'} " in line for line in failed), out
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("FAILED: ") and named in summary, summary


def test_the_tolerance_is_tight_enough_for_float64_central_differences():
    # central differences in float64 with h = 1e-5 agree with a right backward to ~1e-9; a
    # tolerance far above that lets a slightly wrong backward through
    assert gradcheck.TOLERANCE <= 1e-6
    errors = [c.error for c in gradcheck.check_everything(seed=1)]
    assert max(errors) < gradcheck.TOLERANCE / 10, max(errors)


@pytest.mark.parametrize("seed", [2, 129])
def test_every_seed_gives_inputs_a_right_backward_passes_on(seed):
    # seed 2 drew a ReLU input 6e-6 from its kink (error 0.14), seed 129 a unit on for one sample
    # of the six batch norm normalises (error 1.1e-7): the model checks now draw around both
    errors = {f"{c.what} {c.wrt}": c.error for c in gradcheck.check_everything(seed=seed)}
    assert max(errors.values()) < gradcheck.TOLERANCE / 10, errors


def test_layers_that_compute_otherwise_in_inference_are_checked_in_both_modes():
    checked = {c.what.split(" (")[0] for c in gradcheck.check_everything() if c.what.endswith("(inference)")}
    assert checked == {"BatchNorm1d", "BatchNorm2d", "Dropout"}, checked


def test_an_inference_only_mistake_fails(monkeypatch):
    """Batch norm's inference backward with the batch's σ instead of the running one: the
    training rows pass, the inference rows must not."""
    original = BatchNorm2d.backward

    def wrong(self, dy, *args, **kwargs):
        training = self._cache[2]
        dx = original(self, dy, *args, **kwargs)
        return dx if training else dx * 1.01

    monkeypatch.setattr(BatchNorm2d, "backward", wrong)
    failed = {c.what for c in gradcheck.check_everything() if not c.ok}
    assert failed and all(what.startswith("BatchNorm2d") and what.endswith("(inference)") for what in failed), failed
