"""Docstring examples must run (STYLE: examples that run).

Only modules that hold at least one example are collected: a module without any would "pass"
doctest by running nothing, and count as a test that cannot fail.
"""
import doctest
import importlib
import pkgutil

import pytest

import scratchnn

FINDER = doctest.DocTestFinder()


def examples(module) -> int:
    """How many examples the docstrings of ``module`` hold."""
    return sum(len(test.examples) for test in FINDER.find(module))


ALL_MODULES = sorted(m.name for m in pkgutil.walk_packages(scratchnn.__path__, "scratchnn.")
                     if not m.name.endswith("__main__"))
MODULES = [name for name in ALL_MODULES if examples(importlib.import_module(name))]

# The modules whose docstrings give a formula worth running: losing their examples (a docstring
# rewritten without one) should be noticed, not silently drop them from the collection above.
MUST_HAVE_EXAMPLES = {"scratchnn.metrics", "scratchnn.nn.losses", "scratchnn.nn.im2col", "scratchnn.nn.flatten",
                      "scratchnn.optim.schedules", "scratchnn.optim.schedule_options", "scratchnn.data.split",
                      "scratchnn.model"}


def test_the_modules_with_examples_are_not_a_token_few():
    missing = MUST_HAVE_EXAMPLES - set(MODULES)
    assert not missing, f"no docstring example left in {', '.join(sorted(missing))}"
    assert len(MODULES) >= 15, f"only {len(MODULES)} modules have docstring examples: {MODULES}"


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name}: no example ran"
    assert result.failed == 0, f"{result.failed} of {result.attempted} doctest(s) failed in {name}"
