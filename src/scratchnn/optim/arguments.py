"""Checks of the numbers an optimizer or a schedule is built with, each a one-line ConfigError.

>>> positive("lr", 0.1)
0.1
>>> count("epochs", 2.0)
2
"""
from __future__ import annotations

import math
import numbers

from ..errors import ConfigError


def check(name: str, value, ok: bool, allowed: str) -> None:
    """Raise ``ConfigError("<name> must be <allowed>, got <value>")`` unless ``ok``."""
    if not ok:
        raise ConfigError(f"{name} must be {allowed}, got {value}")


def _real(value) -> bool:
    """A number to compare: not a string, None or a list (whose comparison raised a TypeError), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def positive(name: str, value: float) -> float:
    check(name, repr(value)[:40], _real(value) and 0 < value < math.inf, "> 0")
    return float(value)


def non_negative(name: str, value: float) -> float:
    check(name, repr(value)[:40], _real(value) and 0 <= value < math.inf, "a finite number >= 0")
    return float(value)


def unit_interval(name: str, value: float) -> float:
    check(name, repr(value)[:40], _real(value) and 0 <= value < 1, "in [0, 1)")
    return float(value)


def count(name: str, value: int, low: int = 1) -> int:
    """A whole number >= ``low`` (2.0 is accepted as 2, 2.5 is not)."""
    whole = _real(value) and math.isfinite(value) and float(value).is_integer()
    check(name, repr(value)[:40], whole and value >= low, f"a whole number >= {low}")
    return int(value)
