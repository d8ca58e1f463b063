"""The notebooks of notebooks/: the stored copies are fresh, and each one runs top to bottom in a
Jupyter kernel with small settings (SCRATCHNN_NOTEBOOK_QUICK=1) on the shared digits."""
import importlib.util
import os
import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
spec = importlib.util.spec_from_file_location("notebook_build", NOTEBOOKS / "build.py")
build = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build)
SOURCES = build.sources()


def outputs_text(nb) -> str:
    return "\n".join(o.get("text", "") + o.get("data", {}).get("text/plain", "")
                     for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_there_are_six_notebooks_in_order():
    assert [s.stem[:2] for s in SOURCES] == ["01", "02", "03", "04", "05", "06"]


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.stem)
def test_the_stored_notebook_is_fresh(source):
    assert build.problems(source) == []


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.stem)
def test_the_stored_outputs_name_no_folder_of_the_machine_that_built_them(source):
    text = outputs_text(nbformat.read(NOTEBOOKS / f"{source.stem}.ipynb", as_version=4))
    assert "x_train (9000, 784)" in text
    assert not re.findall(r"(?<![\w.])/[\w.-]+/\S*datasets", text), "an absolute path in the published outputs"


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.stem)
def test_every_figure_a_cell_returns_is_shown_as_a_picture(source):
    nb = nbformat.read(NOTEBOOKS / f"{source.stem}.ipynb", as_version=4)
    for number, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if data.get("text/plain", "").startswith("<Figure size"):
                assert "image/png" in data, f"cell {number} shows {data['text/plain']!r}, not the figure"


def test_a_changed_source_makes_its_notebook_stale(tmp_path, monkeypatch):
    source = tmp_path / "src" / SOURCES[0].name
    source.parent.mkdir()
    source.write_text(SOURCES[0].read_text() + "\n# %%\nprint('one more cell')\n")
    (tmp_path / f"{source.stem}.ipynb").write_bytes((NOTEBOOKS / f"{source.stem}.ipynb").read_bytes())
    monkeypatch.setattr(build, "HERE", tmp_path)
    assert build.problems(source) == [f"{source.stem}.ipynb differs from src/{source.name}: rebuild it"]


def test_changed_text_is_taken_without_running_again_but_changed_code_is_refused(tmp_path, monkeypatch):
    source = tmp_path / "src" / SOURCES[0].name
    source.parent.mkdir()
    stored = NOTEBOOKS / f"{source.stem}.ipynb"
    (tmp_path / stored.name).write_bytes(stored.read_bytes())
    monkeypatch.setattr(build, "HERE", tmp_path)
    text = SOURCES[0].read_text()
    source.write_text(text.replace("# # 1. The seed network", "# # 1. The seed network, retitled", 1))
    build.update_text(source)
    assert build.problems(source) == []
    updated, before = (nbformat.read(path, as_version=4) for path in (tmp_path / stored.name, stored))
    assert updated.cells[0].source.startswith("# 1. The seed network, retitled")
    assert [(c.get("id"), c.get("outputs")) for c in updated.cells[1:]] == \
        [(c.get("id"), c.get("outputs")) for c in before.cells[1:]]  # the rest as it was, outputs kept
    source.write_text(text.replace("rng = np.random.default_rng(0)", "rng = np.random.default_rng(1)", 1))
    with pytest.raises(SystemExit, match="the code cells of src/01_seed_network.py changed, so the outputs would too"):
        build.update_text(source)


@pytest.fixture
def quick(request, monkeypatch):
    """Small settings, on $SCRATCHNN_DIGITS if set (a clone elsewhere), else the shared digits."""
    monkeypatch.setenv(build.QUICK, "1")
    if not os.environ.get("SCRATCHNN_DIGITS"):
        monkeypatch.setenv("SCRATCHNN_DIGITS", str(request.getfixturevalue("shared_dir") / "datasets" / "mnist"))


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.stem)
def test_the_notebook_runs_top_to_bottom(source, quick, tmp_path, monkeypatch):
    # started in tmp_path: the runs it trains go to tmp_path/runs, not into the checkout
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))  # the kernel's temporary folders
    nb = build.execute(build.new_notebook(source), timeout=600, cwd=tmp_path)  # a cell that raises fails here
    # the notebooks audit: 03 left 8 run folders in /tmp at every run
    assert not list((tmp_path / "tmp").iterdir()), "the notebook left temporary folders behind"
    text = outputs_text(nb)
    assert "x_train (9000, 784)" in text
    if source.stem.startswith("01"):
        per_unit, tutorial = map(float, re.search(r"relative error: per-unit (\S+), tutorial (\S+)", text).groups())
        assert per_unit < 1e-7 and tutorial > 0.1, text
        mimes = [set(o.get("data", {})) for c in nb.cells if c.cell_type == "code" for o in c.outputs]
        assert {"text/html"} <= mimes[-1]  # the run renders as tables
        assert any(build.WIDGET in m for m in mimes), "train_run's progress bar is not tqdm's notebook bar"
        assert sum("image/png" in m for m in mimes) >= 1  # history.plot() drawn inline
    if source.stem.startswith("03"):
        assert len(set(re.findall(r"doctor: \[([a-z-]+)\]", text))) >= 4, text
    trains = source.stem[:2] in ("01", "04", "05", "06")
    assert trains == (tmp_path / "runs").is_dir()  # a run a reader can find, evaluate and serve
    if source.stem.startswith("06"):
        errors = [float(e) for e in re.findall(r"relative error (\S+)", text)]
        assert len(errors) == 6 and max(errors) < 1e-6, text  # BatchNorm2d's x, γ, β in both modes
        assert re.search(r"TTA x16 +dev accuracy 0\.\d{4}", text) and "ensemble of 3" in text, text


def test_away_from_the_shared_digits_the_setup_fetches_the_same_ten_thousand(shared_dir, tmp_path, monkeypatch,
                                                                            capsys):
    """The notebooks audit: a clone elsewhere (or a copied notebook) silently downloaded MNIST's
    60,000 training digits: every number in the text wrong, notebook 06 hours long. Now it is
    MNIST's own copy of the same test files, found or downloaded by ``locate``."""
    from scratchnn.data import sources

    asked = []

    def locate(name, split, *args, **kwargs):
        asked.append((name, split))
        return shared_dir / build_digits("images"), shared_dir / build_digits("labels")

    monkeypatch.setattr(sources, "locate", locate)
    monkeypatch.chdir(tmp_path)  # no ../../shared from here
    monkeypatch.delenv("SCRATCHNN_DIGITS", raising=False)
    namespace = {}
    exec(build.SETUP, namespace)
    assert asked == [("mnist", "test")] and "x_train (9000, 784)" in capsys.readouterr().out
    assert namespace["DATA"] == {"images": str(shared_dir / build_digits("images")),
                                 "labels": str(shared_dir / build_digits("labels"))}


def build_digits(kind: str) -> str:
    return f"datasets/mnist/t10k-{kind}-idx{3 if kind == 'images' else 1}-ubyte.gz"


def test_history_plot_is_drawn_inline_without_matplotlib_magic(quick):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from scratchnn.training.fit import EpochResult\nfrom scratchnn.training.history import History\n"
        "History([EpochResult(1, 2.0, 0.5, 2.1, 0.4, 0.1, 1.0), EpochResult(2, 1.0, 0.7, 1.2, 0.6, 0.1, 1.0)]).plot()")])
    build.execute(nb, timeout=120)
    assert "image/png" in nb.cells[0].outputs[-1]["data"]
