"""Files another version of scratchnn wrote (the compatibility audit): a model file of a newer
version, whose training config holds a setting this one does not know, is still evaluated and
reported on, its layers being what this version reads; a run is not resumed on such settings."""
import gzip

import pytest

from scratchnn import io
from scratchnn.cli.main import main


@pytest.fixture()
def newer_run(shared_dir, tmp_path):
    """A finished seed run whose model file's config holds a setting of a 'newer' version."""
    with gzip.open(shared_dir / "datasets/mnist/t10k-kaggle.csv.gz", "rt") as source:
        (tmp_path / "digits.csv").write_text("".join(next(source) for _ in range(1501)))
    run = tmp_path / "run"
    assert main(["train", "--preset", "seed", "--epochs", "20", "--csv", str(tmp_path / "digits.csv"), "--out",
                 str(run), "--threads", "1", "--quiet", "--no-report"]) == 0
    metadata = io.read_metadata(run / "model.safetensors")
    metadata["config"]["future_option"] = 3
    kept = {key: value for key, value in metadata.items() if key != "architecture"}  # the file's own
    io.save(io.load(run), run / "model.safetensors", metadata=kept)
    return run


def test_a_newer_versions_setting_leaves_the_model_usable_with_a_note(newer_run, capsys):
    """One unknown setting refused the whole model: 'unknown option(s) future_option; ...known:'
    and its 60 names, for evaluate, explain and report alike."""
    capsys.readouterr()
    assert main(["evaluate", str(newer_run)]) == 0
    captured = capsys.readouterr()
    assert ("metadata holds settings this scratchnn does not know (future_option), a newer version's: they are left "
            "out (upgrade scratchnn to read them)") in captured.err
    assert "Accuracy" in captured.out or "accuracy" in captured.out
    assert main(["report", str(newer_run)]) == 0
    assert "does not know (future_option)" in capsys.readouterr().out
