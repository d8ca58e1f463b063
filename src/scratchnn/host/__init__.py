"""The machine scratchnn runs on: what it lets a process use (``resources``: memory still
available, cores) and how its BLAS library is told to behave (``openblas_idle``, set before
NumPy loads it). Neither imports NumPy."""
