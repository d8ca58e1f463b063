"""The same sweep with --workers 1 and --workers 2, in one run: wall times and their ratio.

Each trial is pinned to one BLAS thread in either case, so the ratio shows what running trials
side by side in Dask worker processes buys on this machine (target on 2 cores: <= 0.6x).
The sampler's first trials are random draws from the config's seed, so both sweeps train the
same 8 trials (the script checks it). Prints; asserts nothing about speed.

What bounds the ratio (measured on the quiet 2-core machine, 2026-12-03): two trials side by side
each run ~15% slower than one alone (they share the caches and memory bus), and the sweep spends
~1.6 s before its first trial starts (imports, the LocalCluster). With 10-epoch trials that gives
0.56x; with 3-epoch trials (2 s each) the start-up weighs more: 0.62x.

    python benchmarks/sweep_workers.py                      # 8 trials, mlp, 10 epochs, 10,000 digits
    python benchmarks/sweep_workers.py --trials 4 --epochs 2
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CSV = ROOT.parent / "shared" / "datasets" / "mnist" / "t10k-kaggle.csv.gz"
SPACE = "lr = {low = 3e-4, high = 1e-2, log = true}\ndropout = {low = 0.0, high = 0.5}\n"


def sweep(workers: int, folder: Path, args) -> float:
    command = [sys.executable, "-m", "scratchnn", "sweep", "--space", str(folder / "space.toml"),
               "--preset", args.preset, "--csv", str(args.csv), "--epochs", str(args.epochs),
               "--trials", str(args.trials), "--workers", str(workers), "--out", str(folder / f"workers{workers}"),
               "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def trial_params(folder: Path) -> list[dict]:
    sys.path.insert(0, str(ROOT / "src"))
    from scratchnn.tune.study import open_study, read_sweep_folder

    sweep_folder = read_sweep_folder(folder)
    return [t.params for t in open_study(sweep_folder.storage(), sweep_folder.seed).get_trials()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--preset", default="mlp")
    parser.add_argument("--csv", type=Path, default=CSV)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "space.toml").write_text(SPACE)
        seconds = {workers: sweep(workers, folder, args) for workers in (1, 2)}
        same = sorted(map(repr, trial_params(folder / "workers1"))) == sorted(map(repr, trial_params(folder / "workers2")))
    print(f"{args.trials} trials of {args.preset}, {args.epochs} epochs, {args.csv.name} ({os.cpu_count()} cores)")
    print(f"  --workers 1: {seconds[1]:7.1f} s")
    print(f"  --workers 2: {seconds[2]:7.1f} s")
    print(f"  ratio:       {seconds[2] / seconds[1]:7.2f}x   (same trials in both: {'yes' if same else 'NO'})")


if __name__ == "__main__":
    main()
