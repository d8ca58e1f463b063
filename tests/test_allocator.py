"""fast.allocator.keep_freed_memory: freed activations are reused, not faulted in again."""
import platform
import subprocess
import sys

import pytest

from scratchnn.fast.allocator import keep_freed_memory

SCRIPT = """
import resource, numpy as np
from scratchnn.fast.allocator import keep_freed_memory

def faults_of_a_training_like_loop():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    alive = []
    for step in range(30):  # each step: a few 11 MB activations, the previous step's freed
        alive = [np.ones((128, 32, 26, 26), np.float32) for _ in range(4)]
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

faults_of_a_training_like_loop()  # let glibc settle on its own first
default = faults_of_a_training_like_loop()
assert keep_freed_memory()
kept = faults_of_a_training_like_loop()
print(default, kept)
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_freed_activations_are_reused_instead_of_faulted_in_again():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    default, kept = map(int, result.stdout.split())
    assert kept < default / 5, f"page faults: {default} with glibc's defaults, {kept} with freed memory kept"


def test_it_can_be_asked_again():
    first = keep_freed_memory()
    assert keep_freed_memory() == first
