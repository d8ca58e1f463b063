"""How long the property tests search: each fuzzer's own number of examples, or FUZZ_EXAMPLES.

    FUZZ_EXAMPLES=3000 python -m pytest -n 2 tests/test_*fuzz*.py tests/test_config.py   # a long hunt

Failures are kept in .hypothesis/ and replayed first on the next run, whatever the count."""
from __future__ import annotations

import os


def fuzz_examples(default: int) -> int:
    """FUZZ_EXAMPLES if it is set (a whole number >= 1), else this fuzzer's ``default``."""
    text = os.environ.get("FUZZ_EXAMPLES", "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"FUZZ_EXAMPLES must be a whole number >= 1, got {text!r}")
    return int(text)
