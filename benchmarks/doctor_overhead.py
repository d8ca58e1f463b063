"""What the training doctor costs: the same training with ``--doctor off`` and ``--doctor on``.

Each preset is trained by ``train_run`` (what ``scratchnn train`` runs) on the same data with the
same seed, once with the doctor off (no health recording) and once on (``HealthRecorder`` in
``fit``: the untrained network, the last step before each evaluation and a forward pass over 256
sampled images at each evaluation; the live doctor diagnosing the tables after each evaluation;
health.csv written with each checkpoint). The two take turns (off, on, then on, off, ...) so a
noisy shared machine hits both alike.

How to read the table:
- s/epoch is the run's training time (``RunResult.train_seconds``: fit's loop with its evaluations,
  checkpoints and the doctor, not loading the data, the final metrics or a report) divided by
  the epochs trained; a full-batch epoch (seed) is one iteration. Each figure is the median over
  the repeats; every repeat's figure is printed beside it.
- overhead = on / off - 1, of the medians; the acceptance target is <= 3%.
- --profile wraps the doctor's pieces with timers (HealthRecorder.record, before_step,
  after_step; Doctor.update; writing health.csv) and prints their seconds per epoch in the
  "on" runs, and in each such run their sum over the rest of its training time: measured inside
  one run, that share is far less noisy than the difference of two wall-clock medians on a busy
  machine, and an overhead above target says where it goes.
The script prints figures; it asserts nothing about speed.

    python benchmarks/doctor_overhead.py [--csv FILE] [--repeats 5] [--presets seed,mlp,cnn]
                                         [--seed-iterations 200] [--epochs 3] [--cnn-epochs 2]
                                         [--no-cnn] [--profile]
"""
from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from scratchnn.doctor.diagnosis import Doctor
from scratchnn.training import run as run_module
from scratchnn.training.health import HealthRecorder
from scratchnn.training.presets import get_preset
from scratchnn.training.run import train_run

ROOT = Path(__file__).resolve().parents[1]
CSV = ROOT.parent / "shared" / "datasets" / "mnist" / "t10k-kaggle.csv.gz"
MODES = ("off", "on")


def config_for(preset: str, csv: Path, epochs: int, mode: str, seed: int):
    """The preset as ``scratchnn train --preset P --csv CSV --epochs N --doctor MODE --seed S``."""
    config = get_preset(preset)
    config.csv, config.epochs, config.doctor, config.seed = str(csv), epochs, mode, seed
    return config


def seconds_per_epoch(config, folder: Path) -> float:
    result = train_run(config, folder, log=lambda line: None, progress=False)
    return result.train_seconds / max(result.metrics["epochs"], 1)


class Profile:
    """Timers around the doctor's pieces, summed per name while ``counting`` is on."""

    PIECES = ((HealthRecorder, "record"), (HealthRecorder, "before_step"), (HealthRecorder, "after_step"),
              (Doctor, "update"), (run_module, "write_health_csv"))

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self.counting = False
        for owner, name in self.PIECES:
            setattr(owner, name, self._timed(getattr(owner, name), f"{owner.__name__.rsplit('.', 1)[-1]}.{name}"))

    def _timed(self, function, key: str):
        @functools.wraps(function)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                if self.counting:
                    self.seconds[key] += time.perf_counter() - start
        return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=CSV, help="Kaggle-format digits (default: the shared 10,000)")
    parser.add_argument("--repeats", type=int, default=5, help="rounds of off and on; medians printed")
    parser.add_argument("--presets", default="seed,mlp,cnn", help="comma-separated presets (default seed,mlp,cnn)")
    parser.add_argument("--seed-iterations", type=int, default=200, help="full-batch iterations of seed")
    parser.add_argument("--epochs", type=int, default=3,
                        help="epochs of mlp and other mini-batch presets (>= 2: their warm-up is one epoch)")
    parser.add_argument("--cnn-epochs", type=int, default=2, help="epochs of cnn (slow: ~1 min each)")
    parser.add_argument("--no-cnn", action="store_true", help="skip cnn")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", action="store_true", help="time the doctor's pieces in the 'on' runs")
    args = parser.parse_args()
    presets = [p for p in args.presets.split(",") if p and not (args.no_cnn and p == "cnn")]
    profile = Profile() if args.profile else None
    print(f"Doctor overhead on {args.csv.name}, {args.repeats} interleaved repeats, seed {args.seed}")
    print(f"{'preset':<8}{'epochs':>8}{'off s/epoch':>14}{'on s/epoch':>13}{'overhead':>10}   "
          "each repeat off / on", flush=True)
    with tempfile.TemporaryDirectory(prefix="doctor-overhead-") as tmp:
        for preset in presets:
            epochs = args.seed_iterations if preset == "seed" else args.cnn_epochs if preset == "cnn" else args.epochs
            times: dict[str, list[float]] = {mode: [] for mode in MODES}
            pieces: dict[str, list[float]] = defaultdict(list)
            shares = []  # per "on" run: the doctor's seconds over the rest of that run's seconds
            for repeat in range(args.repeats):
                for mode in MODES if repeat % 2 == 0 else MODES[::-1]:
                    if profile:
                        profile.seconds.clear()
                        profile.counting = mode == "on"
                    folder = Path(tmp) / f"{preset}-{mode}-{repeat}"
                    times[mode].append(seconds_per_epoch(config_for(preset, args.csv, epochs, mode, args.seed),
                                                         folder))
                    if profile and mode == "on":
                        for key, seconds in profile.seconds.items():
                            pieces[key].append(seconds / epochs)
                        doctor = sum(profile.seconds.values()) / epochs
                        shares.append(doctor / (times[mode][-1] - doctor))
            off, on = (statistics.median(times[mode]) for mode in MODES)
            each = "  ".join(f"{a:.3g}/{b:.3g}" for a, b in zip(times["off"], times["on"]))
            print(f"{preset:<8}{epochs:>8}{off:>14.4f}{on:>13.4f}{on / off - 1:>+10.1%}   {each}", flush=True)
            for key, values in sorted(pieces.items()):
                print(f"{'':<10}{key:<28} {statistics.median(values):.5f} s/epoch")
            if shares:
                print(f"{'':<10}{'the doctor, in its own runs':<28} {statistics.median(shares):+.2%} of the rest of "
                      f"the epoch (each: {', '.join(f'{share:.2%}' for share in shares)})", flush=True)

if __name__ == "__main__":
    main()
