"""What importing scratchnn costs: the NumPy core never imports an optional extra, nor the
network's modules, which only a download needs (the packaging audit: every import paid ~20 ms
for http.client, ssl and urllib.request, a predicting-only program included)."""
import subprocess
import sys

EXTRAS = ("matplotlib", "fastapi", "starlette", "uvicorn", "pydantic", "optuna", "dask", "distributed", "torch",
          "jupyter", "ipykernel", "ipywidgets", "nbformat", "nbclient")
NETWORK = ("ssl", "http.client", "urllib.request", "zipfile")  # zipfile: EMNIST's archive only

PROGRAM = """
import sys
import numpy as np
import scratchnn
from scratchnn import Dense, ReLU, Sequential, io
from scratchnn.data import load_idx, read_kaggle_csv, scale_pixels
from scratchnn.training.config import TrainConfig
net = Sequential([Dense(784, 10), ReLU(), Dense(10, 10)])
net.predict_proba(np.zeros((2, 784), np.float32))
print(" ".join(sorted(sys.modules)))
"""


def test_the_core_imports_no_extra_and_no_network_module():
    done = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.split())
    extras = sorted(name for name in loaded if name.split(".")[0] in EXTRAS)
    assert not extras, f"the core imported {extras}"
    network = sorted(name for name in NETWORK if name in loaded)
    assert not network, f"the core imported {network}, which only a download needs"
