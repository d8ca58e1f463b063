"""scratchnn sets OpenBLAS's idle-thread timeout before NumPy loads it (host/openblas_idle.py), and the
fast path warns when NumPy came first and the threads still spin."""
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import scratchnn.fast as fast_path
from scratchnn.errors import PerformanceWarning
from scratchnn.fast.threads import Blocks
from scratchnn.model import Sequential
from scratchnn.nn import BatchNorm2d, Conv2D, Dense, Flatten, ReLU
from scratchnn.optim import Adam


def run_python(code: str, **env) -> str:
    environment = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**environment, **env})
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_importing_scratchnn_first_sets_the_timeout_before_numpy_loads_openblas():
    out = run_python("import os, sys, scratchnn; from scratchnn.host import openblas_idle as o; "
                     "print(os.environ['OPENBLAS_THREAD_TIMEOUT'], o.LOADED_BEFORE, 'numpy' in sys.modules)")
    assert out == "4 False True"


def test_a_timeout_the_user_set_is_kept():
    out = run_python("import os, scratchnn; print(os.environ['OPENBLAS_THREAD_TIMEOUT'])", OPENBLAS_THREAD_TIMEOUT="9")
    assert out == "9"


def test_numpy_imported_first_is_noticed():
    out = run_python("import numpy, scratchnn.host.openblas_idle as o; print(o.LOADED_BEFORE)")
    assert out == "True"
    assert run_python("import numpy, scratchnn.host.openblas_idle as o; print(o.LOADED_BEFORE)",
                      OPENBLAS_THREAD_TIMEOUT="4") == "False"  # the user set it: nothing spins


SPIN_PROBE = """
import os, time
{first}
import numpy as np
a = np.ones((600, 600), np.float32)
spent = []
for _ in range(5):
    a @ a  # a product on 2 threads; then the process sleeps 50 ms
    start = os.times()
    time.sleep(0.05)
    end = os.times()
    spent.append((end.user + end.system) - (start.user + start.system))
print(sorted(spent)[2])
"""


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs 2 cores for 2 BLAS threads")
def test_this_openblas_honours_the_timeout():
    """CPU time the process burns while it sleeps right after a product: OpenBLAS's second thread
    spinning (the default, NumPy first) against asleep (scratchnn first)."""
    from threadpoolctl import threadpool_info
    if not any(info.get("internal_api") == "openblas" for info in threadpool_info()):
        pytest.skip("NumPy here does not use OpenBLAS")
    asleep = float(run_python(SPIN_PROBE.format(first="import scratchnn"), OPENBLAS_NUM_THREADS="2"))
    assert asleep < 0.01, asleep  # os.times counts 10 ms ticks: none of the 50 ms
    # the control, that the probe sees a spinning thread at all: at least two ticks. A busy machine
    # gives that thread less of its core (0.02 s with two training runs and CI's four workers on 2
    # cores; under 0.02 at a load of 4-8, the dependency audit), so it has three tries
    spinning = max(float(run_python(SPIN_PROBE.format(first=""), OPENBLAS_NUM_THREADS="2")) for _ in range(3))
    if spinning < 0.0199 and os.getloadavg()[0] > (os.cpu_count() or 1):
        pytest.skip(f"too busy to see OpenBLAS spin (load {os.getloadavg()[0]:.1f}); scratchnn's threads slept")
    assert spinning >= 0.0199, spinning


def small_cnn() -> Sequential:
    return Sequential([Conv2D(1, 4, 3, padding=1, rng=0), BatchNorm2d(4), ReLU(), Flatten(),
                       Dense(4 * 6 * 6, 10, rng=0)], (1, 6, 6))


def test_the_fast_path_warns_when_openblas_spins(monkeypatch):
    monkeypatch.setattr("scratchnn.host.openblas_idle.LOADED_BEFORE", True)
    monkeypatch.setattr("scratchnn.fast._WARNED", [])
    model = small_cnn()
    with pytest.warns(PerformanceWarning, match="Import scratchnn before numpy"):
        fast_path.prepare(model, Adam(1e-3), np.zeros((8, 1, 6, 6)), full_batch=False, blocks=Blocks(2))
    with warnings.catch_warnings():  # once a process (the API audit: every CNN fit said it again)
        warnings.simplefilter("error", PerformanceWarning)
        fast_path.prepare(small_cnn(), Adam(1e-3), np.zeros((8, 1, 6, 6)), full_batch=False, blocks=Blocks(2))


def test_no_warning_without_threaded_layers_or_when_the_threads_sleep(monkeypatch, recwarn):
    monkeypatch.setattr("scratchnn.fast._WARNED", [])
    fast_path.prepare(small_cnn(), Adam(1e-3), np.zeros((8, 1, 6, 6)), full_batch=False, blocks=Blocks(2))
    monkeypatch.setattr("scratchnn.host.openblas_idle.LOADED_BEFORE", True)
    fast_path.prepare(small_cnn(), Adam(1e-3), np.zeros((8, 1, 6, 6)), full_batch=False, blocks=Blocks(1))
    assert not [w for w in recwarn if issubclass(w.category, PerformanceWarning)]
