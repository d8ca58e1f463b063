"""What a CI run requires that a local run may skip: ../shared, the PyTorch oracle and the extras.

Locally a missing dataset or torch skips the tests that need it; under CI (any non-empty ``CI``,
which ``.ci/run`` exports itself) it fails them, so a green CI run has run them all.
"""
import os

import pytest


def under_ci() -> bool:
    """True when ``CI`` is set to anything non-empty (GitHub sets "true", others "1" or "yes")."""
    return bool(os.environ.get("CI"))


def import_oracle(name: str = "torch"):
    """The module ``name`` (the PyTorch oracle); skips locally when it is missing, fails under CI."""
    return require_module(name, "test-oracle", "the oracle tests")


def require_module(name: str, extra: str = "test", needed_by: str = "these tests"):
    """``import name``, installed by the pyproject extra ``extra``: a local run without it skips
    (the whole module, when called at its top), a CI run fails."""
    try:
        return __import__(name)
    except ImportError as error:
        message = f"{name} is not installed ({error}); {needed_by} need: pip install -e '.[{extra}]'"
        if under_ci():
            pytest.fail(f"under CI {needed_by} must run: {message}", pytrace=False)
        pytest.skip(message, allow_module_level=True)
