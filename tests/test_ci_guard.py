"""The CI guard: a CI run fails, rather than skips, what it needs and does not find."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from ci_guard import import_oracle, under_ci

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("value, on", [("true", True), ("1", True), ("yes", True), ("", False), (None, False)])
def test_any_non_empty_ci_turns_the_guard_on(monkeypatch, value, on):
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    assert under_ci() is on


def test_a_missing_oracle_skips_locally_and_fails_under_ci(monkeypatch):
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception, match="test-oracle"):
        import_oracle("no_such_oracle_module")
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="under CI the oracle tests must run"):
        import_oracle("no_such_oracle_module")


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_ci_run_without_shared_fails_loudly_even_without_ci_set(tmp_path):
    repo = tmp_path / "repo"  # a clone with no ../shared beside it
    shutil.copytree(ROOT / ".ci", repo / ".ci")
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    result = subprocess.run(["bash", str(repo / ".ci" / "run")], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode != 0
    assert "../shared/datasets/mnist not found" in result.stderr, result.stderr
    assert not (repo / ".venv").exists(), "it went on to install and run the tests"
