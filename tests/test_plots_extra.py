"""Without the plots extra (matplotlib), training, evaluating and predicting still work; what
draws a figure says which extra to install, in one line, and train ends without its report."""
import sys

import pytest

from scratchnn.cli.main import main
from scratchnn.errors import MissingExtra
from scratchnn.io import MODEL_FILE


def forget_plots(monkeypatch):
    """Make the next import of scratchnn.plots (and matplotlib) run again, as in a fresh
    process: out of sys.modules, and off its package (``from . import plots`` reads the attribute)."""
    import scratchnn

    plotting = ("matplotlib.", "scratchnn.plots")
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith(plotting)]:
        monkeypatch.delitem(sys.modules, name)
    if "plots" in vars(scratchnn):  # not getattr: the package's lazy __getattr__ would import it again
        monkeypatch.delattr(scratchnn, "plots")


@pytest.fixture
def no_matplotlib(monkeypatch):
    forget_plots(monkeypatch)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError


def test_train_evaluate_and_predict_need_no_matplotlib(no_matplotlib, shared_dir, tmp_path, capsys):
    csv = shared_dir / "datasets/mnist/t10k-kaggle.csv.gz"
    run = tmp_path / "run"
    assert main(["train", "--preset", "seed", "--epochs", "20", "--csv", str(csv), "--out", str(run)]) == 0
    out = capsys.readouterr().out
    assert "Note: no report.html: figures need matplotlib, which is not installed: pip install " \
           "'scratchnn[plots]'" in out, out
    assert (run / MODEL_FILE).is_file() and not (run / "report.html").exists()
    assert "report.html" not in out.split("Note: no report.html")[1], "the next steps offer a page never written"
    assert main(["evaluate", str(run)]) == 0 and "Accuracy:" in capsys.readouterr().out
    assert main(["predict", str(run), "--index", "3"]) == 0
    capsys.readouterr()
    for command in (["predict", str(run), "--index", "3"], ["explain", str(run), "--index", "3"]):
        assert main([*command, "--save", str(tmp_path / "x.png")]) == 1  # said first, not after the answer
        said = capsys.readouterr()
        assert said.out == "" and "figures need matplotlib" in said.err and said.err.count("\n") == 1, said
    lr_find = ["lr-find", "--preset", "mlp", "--steps", "100", "--csv", str(csv), "--out", str(tmp_path / "lr.png")]
    assert main(lr_find) == 0
    out = capsys.readouterr().out
    assert "Suggested" in out and "Figure: none (figures need matplotlib" in out, out
    assert main(["report", str(run)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("scratchnn report: error: figures need matplotlib") and "\n" not in err, err


def test_a_plot_asked_for_in_python_names_the_extra(no_matplotlib):
    from scratchnn.training.history import History

    with pytest.raises(MissingExtra, match=r"pip install 'scratchnn\[plots\]'"):
        History().plot()


def test_a_matplotlib_that_cannot_be_imported_is_not_called_missing(monkeypatch):
    """A matplotlib built for NumPy 1 under NumPy 2 fails at import: it was 'not installed'."""
    import importlib.machinery
    import types

    forget_plots(monkeypatch)
    broken = types.ModuleType("matplotlib")  # found, but its compiled parts do not load
    broken.__spec__ = importlib.machinery.ModuleSpec("matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib", broken)
    with pytest.raises(MissingExtra, match=r"matplotlib, which is installed but cannot be imported \(.*\); a build "
                                           r"older than 3.8.4 with NumPy 2 does this: pip install 'matplotlib>=3.8.4'"):
        import scratchnn.plots  # noqa: F401


def test_a_report_that_runs_out_of_memory_leaves_the_trained_run_done(shared_dir, tmp_path, capsys, monkeypatch):
    """The resource audit: the model saved, then the report's MemoryError was 'out of memory: use a
    smaller --batch-size ...', exit 1, for a run that had trained."""
    from scratchnn.insight import report

    def out_of_memory(run_dir, log=print):
        raise MemoryError("Unable to allocate 10.2 MiB for an array with shape (1157, 1157)")
    monkeypatch.setattr(report, "write_report", out_of_memory)
    csv = shared_dir / "datasets/mnist/t10k-kaggle.csv.gz"
    run = tmp_path / "run"
    assert main(["train", "--preset", "seed", "--epochs", "20", "--csv", str(csv), "--out", str(run)]) == 0
    out = capsys.readouterr().out
    assert f"Note: no report.html: drawing it ran out of memory; the model is saved, and 'scratchnn report {run}' " \
           "draws it once more memory is free" in out, out
    assert (run / MODEL_FILE).is_file()
