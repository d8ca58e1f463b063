"""Shared fixtures. Real MNIST comes from ../shared beside the repository."""
import os
from pathlib import Path

import pytest
from ci_guard import under_ci

import scratchnn  # noqa: F401  before any test imports NumPy: OpenBLAS's idle threads sleep, as in the CLI

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared; under CI (any non-empty CI) its absence fails the test instead of skipping it."""
    if not (SHARED / "datasets" / "mnist").is_dir():
        message = f"real MNIST not found at {SHARED}/datasets/mnist (../shared beside the repository)"
        if under_ci():
            pytest.fail(message)
        pytest.skip(message)
    return SHARED


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests leave files for people to look at (screenshots): $SCRATCHNN_ARTIFACTS, else
    test-artifacts/ in the repository. Unlike tmp_path it is neither pruned nor per-test."""
    path = Path(os.environ.get("SCRATCHNN_ARTIFACTS") or Path(__file__).resolve().parents[1] / "test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Empty system and cache folders for named datasets, no SCRATCHNN_* variables: a test of
    where datasets are found or downloaded starts from nothing. Returns tmp_path."""
    from scratchnn.data import sources

    monkeypatch.setattr(sources, "SYSTEM_DIR", tmp_path / "system")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("SCRATCHNN_DATA", raising=False)
    monkeypatch.delenv("SCRATCHNN_MIRRORS", raising=False)
    return tmp_path
