"""The disk a server's page may fill with runs, checked before each run starts.

Every run the Train tab starts writes a run folder (the mlp preset's ~10 MB: its model, its
checkpoint with the optimizer's state, health.csv and the report), and the per-run limits
(epochs, seconds, memory) say nothing of how many runs one page starts, one after another (the
soak audit: a script looping Start and Stop wrote 13 GB an hour). So before a run starts:

- the run folders the page has written, measured now (a folder the operator deleted frees its
  share), must be under ``--max-train-disk`` GB. Each holds a PAGE_MARK file, so the runs of
  earlier servers count too (the disk audit: a server restarted each day got the limit afresh);
- the disk that holds them must keep FREE_FLOOR_GB free, whoever else fills it.

Over either, the run is refused (HTTP 507, Insufficient Storage) with the reason, and nothing
already saved is touched: deleting runs is the operator's choice, never the server's.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..errors import ScratchnnError

FREE_FLOOR_GB = 1.0  # what a run never takes from the machine: logs, other programs, the OS
GB = 1e9
PAGE_MARK = ".trained-from-the-page"  # an empty file in each run folder the page makes


class DiskFull(ScratchnnError):
    """The page's runs have used the disk this server allows (HTTP 507)."""


def folder_bytes(folder: Path) -> int:
    """The bytes of the files under ``folder`` (links are counted as links, not followed)."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:  # removed while counting
                continue
    return total


class DiskBudget:
    """The run folders a server's page has written, against ``limit_gb``."""

    def __init__(self, runs_dir: Path, limit_gb: float):
        self.runs_dir, self.limit_gb = Path(runs_dir), limit_gb
        self.folders: list[Path] = []

    def add(self, folder: Path) -> None:
        """Count ``folder`` (made, empty) from now on, and mark it for every server that checks."""
        (Path(folder) / PAGE_MARK).touch()

    def used(self) -> int:
        """Bytes the page's run folders hold now: those marked, by this server or another on the same
        folder (the review: two classes' servers each counted only their own), found at each check."""
        self.folders = sorted(mark.parent for mark in self.runs_dir.glob(f"*/{PAGE_MARK}"))
        return sum(folder_bytes(folder) for folder in self.folders)

    def check(self) -> None:
        """DiskFull when one more run would go past the limit or into the disk's free floor."""
        used = self.used()
        if used >= self.limit_gb * GB:
            count = f"{len(self.folders)} run{'s' if len(self.folders) != 1 else ''}"
            raise DiskFull(f"the runs trained from this page ({count}) take {_size(used)}, the most "
                           f"this server keeps (scratchnn serve --max-train-disk {self.limit_gb:g}); whoever runs "
                           "it can delete old runs or raise the limit")
        existing = next(folder for folder in (self.runs_dir, *self.runs_dir.parents) if folder.exists())
        free = shutil.disk_usage(existing).free
        if free < FREE_FLOOR_GB * GB:
            raise DiskFull(f"the server's disk has {free / GB:.2f} GB free, and it keeps {FREE_FLOOR_GB:g} GB "
                           "free for everything else: no new run until some space is freed")


def _size(count: int) -> str:
    """'2.4 GB', or '31 MB' under a GB (a 30 MB limit's runs took '0.0 GB': the disk audit)."""
    return f"{count / GB:.1f} GB" if count >= GB else f"{count / 1e6:.0f} MB"
