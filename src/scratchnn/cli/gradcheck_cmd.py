"""``scratchnn gradcheck``: finite differences against every layer's backward pass."""
from __future__ import annotations

import argparse

from ..gradcheck import TOLERANCE, check_everything
from .common import whole_number_type


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "gradcheck", help="check every layer's gradients against finite differences",
        description="Compare each layer's and the loss's analytic gradient with central finite "
                    f"differences in float64; passes when the relative error is below {TOLERANCE:g}.")
    parser.add_argument("--seed", type=whole_number_type(0), default=0, help="seed for the random test inputs")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    checks = check_everything(args.seed)
    width = max(len(c.what) for c in checks)
    print(f"{'layer':<{width}}  {'gradient':<8}  {'rel. error':>10}")
    for c in checks:
        verdict = "ok (0, to rounding)" if c.at_rounding else "ok" if c.ok else "FAIL"
        print(f"{c.what:<{width}}  d{c.wrt:<7}  {c.error:>10.2e}  {verdict}")
    failed = [c for c in checks if not c.ok]
    print(f"\n{len(checks) - len(failed)}/{len(checks)} gradients within {TOLERANCE:g}")
    if failed:
        print("FAILED: " + "; ".join(f"{c.what} d{c.wrt} ({c.error:.1e})" for c in failed))
    return 1 if failed else 0
