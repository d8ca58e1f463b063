"""Shared fixtures. Real MNIST comes from ../shared beside the repository."""
import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared; under CI (CI=true) its absence fails the test instead of skipping it."""
    if not (SHARED / "datasets" / "mnist").is_dir():
        message = f"real MNIST not found at {SHARED}/datasets/mnist (../shared beside the repository)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return SHARED
