"""OpenBLAS's idle threads go to sleep at once instead of spinning, so they leave the cores to ours.

After each matrix product OpenBLAS keeps its worker threads spinning for 2^28 CPU cycles (~0.1 s
at 2.5 GHz), ready for the next product. The fast path runs its elementwise passes and Winograd
pipelines on Python threads between products (see fast/threads.py), and a spinning BLAS thread
takes a core from them: on a 2-core machine a ``cnn-best`` epoch took 13.3-13.8 s spinning and
9.6-11.3 s with the threads put to sleep after 2^4 cycles (``OPENBLAS_THREAD_TIMEOUT=4``, the
smallest value OpenBLAS accepts; a product then wakes its threads, which costs microseconds).

OpenBLAS reads the variable once, when it is loaded, i.e. when NumPy is first imported; so this
module sets its default before scratchnn imports NumPy. A value already in the environment is
kept. Where NumPy was imported first (``import numpy`` before ``import scratchnn``) it is too
late: ``LOADED_BEFORE`` is then True, and the fast path warns when it would run threads.
The variable is inherited by child processes, as every environment variable is.
"""
import os
import sys

VARIABLE = "OPENBLAS_THREAD_TIMEOUT"
IDLE_EXPONENT = "4"  # idle threads sleep after 2^4 cycles

# NumPy, and with it OpenBLAS, loaded before a timeout was set: the threads spin as by default
LOADED_BEFORE = "numpy" in sys.modules and VARIABLE not in os.environ and "GOTO_THREAD_TIMEOUT" not in os.environ
os.environ.setdefault(VARIABLE, IDLE_EXPONENT)
