"""What a CI run requires that a local run may skip: ../shared and the PyTorch oracle.

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
    try:
        return __import__(name)
    except ImportError as error:
        message = f"{name} is not installed ({error}); the oracle tests need: pip install -e '.[test-oracle]'"
        if under_ci():
            pytest.fail(f"under CI the oracle tests must run: {message}", pytrace=False)
        pytest.skip(message, allow_module_level=True)
