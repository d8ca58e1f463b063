"""Docstring examples must run (STYLE: examples that run)."""
import doctest
import importlib
import pkgutil

import pytest

import scratchnn

MODULES = sorted(m.name for m in pkgutil.walk_packages(scratchnn.__path__, "scratchnn.")
                 if not m.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"
