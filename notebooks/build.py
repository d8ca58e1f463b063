"""Build the notebooks from their sources in src/, execute them, and check the stored ones are fresh.

    python notebooks/build.py              # every notebook: build, execute (full settings), store
    python notebooks/build.py 04           # the notebooks whose name starts with 04
    python notebooks/build.py --check      # exit 1 if a stored notebook is stale (what CI checks)
    python notebooks/build.py --text 05    # only text cells changed: take them, keep the outputs

A source is a Python file in the "percent" format: ``# %%`` starts a code cell, ``# %% [markdown]``
a text cell whose lines start with ``# ``; ``# %% setup`` is replaced by SETUP, the one cell that
finds the digits. The stored .ipynb keeps its outputs (so it reads well on the web, figures
included) and, in its metadata, the SHA-256 of the cells it was executed from: ``--check`` fails
when a source changed after the last execution, or when a cell has no output or an error.
``--text`` stores a source whose code cells are exactly those the stored notebook executed
(only its prose changed) without running it again: outputs come from code cells alone.
"""
from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "src"
QUICK = "SCRATCHNN_NOTEBOOK_QUICK"  # "1": small settings, minutes -> seconds (CI)
WIDGET = "application/vnd.jupyter.widget-view+json"  # what tqdm's notebook bar displays
TIMEOUT = 7200  # seconds per cell: the full CNN recipe (30 epochs) on a busy 2-core machine

SETUP = '''\
import os
from pathlib import Path

import scratchnn  # before NumPy: it asks OpenBLAS's idle threads to sleep (see the README's Speed)
import numpy as np
from scratchnn.data import load_idx
from scratchnn.data.sources import locate

QUICK = os.environ.get("SCRATCHNN_NOTEBOOK_QUICK") == "1"  # small settings (CI): seconds, not minutes
# MNIST's 10,000 test digits: beside the repository (or in $SCRATCHNN_DIGITS), else the same
# files from MNIST's own site, downloaded once (2 MB) into ~/.cache/scratchnn. Either way a
# 9,000 / 1,000 split, so every number in the text is what you get.
DIGITS = Path(os.environ.get("SCRATCHNN_DIGITS", "../../shared/datasets/mnist"))
IMAGES, LABELS = DIGITS / "t10k-images-idx3-ubyte.gz", DIGITS / "t10k-labels-idx1-ubyte.gz"
if not IMAGES.exists():
    IMAGES, LABELS = locate("mnist", "test")
DATA = {"images": str(IMAGES.resolve()), "labels": str(LABELS.resolve())}  # a run's data, for TrainConfig
data = load_idx(IMAGES, LABELS)                                 # (printed below as given)
x_train, y_train, x_dev, y_dev = data
if QUICK:                                                       # train on 2,000 digits only
    x_train, y_train = x_train[:2000], y_train[:2000]
print(data)'''


def cells_of(source: Path) -> list:
    """The notebook cells a source file describes, in order."""
    cells, kind, lines = [], None, []

    def close():
        text = "\n".join(lines).strip("\n")
        if kind == "markdown":
            cells.append(nbformat.v4.new_markdown_cell(text))
        elif kind == "setup":
            cells.append(nbformat.v4.new_code_cell(SETUP))
        elif kind == "code" and text:
            cells.append(nbformat.v4.new_code_cell(text))

    for line in source.read_text().splitlines():
        if line.startswith("# %%"):
            close()
            kind, lines = {"# %% [markdown]": "markdown", "# %% setup": "setup"}.get(line.strip(), "code"), []
        elif kind == "markdown":
            lines.append(line[2:] if line.startswith("# ") else line.lstrip("#"))
        elif kind is not None:
            lines.append(line)
    close()
    for i, cell in enumerate(cells):  # fixed ids: a rebuild changes outputs only, not every cell's random id
        cell.id = f"{source.stem[:2]}-{i:02d}"
    return cells


def digest(cells) -> str:
    """SHA-256 of the cells' kinds and sources: what an execution was made from."""
    h = hashlib.sha256()
    for cell in cells:
        h.update(f"{cell.cell_type}\0{cell.source}\0".encode())
    return h.hexdigest()


def target(source: Path) -> Path:
    return HERE / f"{source.stem}.ipynb"


def new_notebook(source: Path):
    nb = nbformat.v4.new_notebook(cells=cells_of(source))
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata.language_info = {"name": "python"}
    return nb


def execute(nb, timeout: int = TIMEOUT, cwd: Path = HERE):
    """Run every cell in a fresh kernel started in ``cwd``, by default notebooks/ (relative paths
    as for a reader: the runs a notebook trains go to runs/ there), importing this repository's
    scratchnn (src/ first on its path, whatever is installed)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE.parent / "src"),
                                                                     os.environ.get("PYTHONPATH")]))}
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}})
    client.execute(env=env)
    return nb


def build(source: Path) -> float:
    """Execute the source with full settings and store it with its digest; seconds taken."""
    if os.environ.get(QUICK) == "1":
        raise SystemExit(f"unset {QUICK}: stored notebooks show the full settings")
    nb, start = new_notebook(source), time.perf_counter()
    execute(nb)
    for cell in nb.cells:  # a progress bar's widget cannot render outside a live kernel
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if WIDGET not in o.get("data", {})]
    nb.metadata.pop("widgets", None)  # their state, ~9 kB, for the outputs just dropped
    nb.metadata.scratchnn = {"executed_from": digest(nb.cells)}
    nbformat.write(nb, target(source))
    return time.perf_counter() - start


def update_text(source: Path) -> None:
    """Take the source's text cells into the stored notebook, keeping its outputs; refused unless
    the stored notebook is fresh but for its text cells and its code cells are the source's."""
    path, cells = target(source), cells_of(source)
    stored = nbformat.read(path, as_version=4)
    if stored.metadata.get("scratchnn", {}).get("executed_from") != digest(stored.cells):
        raise SystemExit(f"{path.name} was edited after it was executed: rebuild it")
    code = [(c.cell_type, c.source) for c in cells if c.cell_type != "markdown"]
    if code != [(c.cell_type, c.source) for c in stored.cells if c.cell_type != "markdown"]:
        raise SystemExit(f"{path.name}: the code cells of src/{source.name} changed, so the outputs would too: "
                         f"rebuild it (python notebooks/build.py {source.stem[:2]})")
    if [c.cell_type for c in cells] == [c.cell_type for c in stored.cells]:  # text edited in place: ids kept
        for new, old in zip(cells, stored.cells):
            old.source = new.source
    else:
        ran = iter(c for c in stored.cells if c.cell_type != "markdown")
        stored.cells = [cell if cell.cell_type == "markdown" else next(ran) for cell in cells]
    stored.metadata.scratchnn = {"executed_from": digest(stored.cells)}
    nbformat.write(stored, path)


def problems(source: Path) -> list[str]:
    """Why the stored notebook of ``source`` is stale or broken (empty: it is fresh)."""
    path = target(source)
    if not path.exists():
        return [f"{path.name} is missing: run python notebooks/build.py {source.stem[:2]}"]
    stored = nbformat.read(path, as_version=4)
    found = []
    if digest(stored.cells) != digest(cells_of(source)):
        found.append(f"{path.name} differs from src/{source.name}: rebuild it")
    if stored.metadata.get("scratchnn", {}).get("executed_from") != digest(stored.cells):
        found.append(f"{path.name} was edited after it was executed: rebuild it")
    for i, cell in enumerate(stored.cells):
        if cell.cell_type != "code":
            continue
        if cell.execution_count is None:
            found.append(f"{path.name}: cell {i} was never executed")
        found += [f"{path.name}: cell {i} raised {o.get('ename')}" for o in cell.outputs if o.output_type == "error"]
    return found


def sources(prefixes=()) -> list[Path]:
    return [s for s in sorted(SOURCES.glob("*.py")) if not prefixes or s.stem.startswith(tuple(prefixes))]


def main(argv: list[str]) -> int:
    if "--check" in argv:
        found = [p for s in sources() for p in problems(s)]
        print("\n".join(found) or "every notebook is fresh")
        return 1 if found else 0
    if "--text" in argv:
        for source in sources([a for a in argv if a != "--text"]):
            update_text(source)
            print(f"{target(source).name}: text cells taken from src/{source.name}")
        return 0
    for source in sources(argv):
        print(f"{target(source).name}: {build(source):.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
