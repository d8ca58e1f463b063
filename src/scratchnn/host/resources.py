"""What this machine lets this process use: the memory still available and the cores it may run on.

Both may be less than the machine has: a control group (a container's ``--memory`` or ``--cpus``,
a systemd slice) or ``ulimit -v`` allows less memory; ``taskset`` or a CPU quota fewer cores.
Linux says all of it in files (``root`` is for tests: a folder holding a copy of them); Windows
and macOS say what they can through their own calls.
"""
from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from ..files import read_at_most

MACHINE, CONTROL_GROUP, ADDRESS_SPACE = "machine", "control group", "ulimit -v"
INFERENCE_MEMORY = 256 * 2**20  # bytes of activations one inference batch may take, where memory allows
INFERENCE_SHARE = 8  # and at most this fraction of what this process may still allocate
_room: list[float] = [-math.inf, 0]  # (when, bytes): inference_memory's last answer, kept for a second
# how a message names what allows the memory it counts (``memory_limits``' keys)
MEMORY_WORDS = {MACHINE: "this machine has {} available",
                CONTROL_GROUP: "this process's control group (a container's memory limit) leaves {}",
                ADDRESS_SPACE: "this process's address-space limit (ulimit -v) leaves {}"}


def available_memory(root: Path = Path("/")) -> int | None:
    """Bytes a new allocation can still get without failing; None where the system does not say:
    the tightest of ``memory_limits``."""
    limits = memory_limits(root)
    return min(limits.values()) if limits else None


def inference_memory() -> int:
    """Bytes one inference batch's pass may take: INFERENCE_MEMORY, or 1/INFERENCE_SHARE of what
    this process may still allocate (``available_memory``) where that is less: a training's
    evaluation runs beside what its steps hold (cnn-best: 230 MB of dev batches beside 140 MB),
    and half the batch costs little (its 1,000 dev digits in batches of 53 rows took 0.41-0.48 s,
    of 107 rows 0.38-0.68 s, two threads of a busy machine). Found once a second at most: the
    page's drawings ask at every stroke."""
    when, room = _room
    if time.monotonic() - when > 1.0:
        room = inference_budget(available_memory())
        _room[:] = time.monotonic(), room
    return int(room)


def inference_budget(available: int | None) -> int:
    """``inference_memory()`` where ``available`` bytes (None: unknown) may still be allocated."""
    return INFERENCE_MEMORY if available is None else min(INFERENCE_MEMORY, available // INFERENCE_SHARE)


def tightest_limit(limits: dict[str, int]) -> str:
    """The key of ``limits`` (``memory_limits``) that allows least (MACHINE when there is none)."""
    return min(limits, key=limits.get) if limits else MACHINE


def memory_words(limits: dict[str, int], size: str) -> str:
    """'this machine has 1.4 GB available', or the limit of ``limits`` that allows least named
    instead (the control group's, ``ulimit -v``'s): what a message says of the memory ``size``
    it counts."""
    return MEMORY_WORDS[tightest_limit(limits)].format(size)


def memory_limits(root: Path = Path("/")) -> dict[str, int]:
    """What each limit still allows this process, in bytes: {} where the system says nothing.

    Linux: the kernel's MemAvailable plus free swap (``MACHINE``), what the tightest memory limit
    over this process's control group and its ancestors leaves (``CONTROL_GROUP``), and what
    ``ulimit -v`` (RLIMIT_AS) leaves beyond this process's VmSize (``ADDRESS_SPACE``; the
    resource audit: a run it did not count failed after its folder was made). Windows: the
    physical memory GlobalMemoryStatusEx calls available (its standby cache included, the page
    file not). macOS: all of the machine's physical memory, as its sysconf says nothing of what
    is free (and its free pages leave out the cache and compressed memory it gives back when
    asked), so there only a run bigger than the machine is refused.
    """
    if sys.platform == "win32":
        available = _windows_available()
        return {} if available is None else {MACHINE: available}
    if sys.platform == "darwin":
        physical = _physical_memory()
        return {} if physical is None else {MACHINE: physical}
    meminfo = _numbers(root / "proc/meminfo", per_line=True)
    if "MemAvailable" not in meminfo:
        return {}
    limits = {MACHINE: (meminfo["MemAvailable"] + meminfo.get("SwapFree", 0)) * 1024,
              CONTROL_GROUP: _cgroup_room(root), ADDRESS_SPACE: _address_space_room(root)}
    return {name: room for name, room in limits.items() if room is not None}


def usable_cores(root: Path = Path("/")) -> int:
    """The cores this process may run on: those ``taskset`` or a container leaves it, and no more
    than its control group's CPU quota allows (``docker --cpus 1.5``: 2, each of them busy only
    part of the time), so that it starts no more threads than it can keep running."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = cpu_quota(root)
    return cores if quota is None else max(1, min(cores, math.ceil(quota)))


def cpu_quota(root: Path = Path("/")) -> float | None:
    """The CPUs' worth of time the tightest quota over this process's control group and its
    ancestors allows (cgroup v2's cpu.max "150000 100000": 1.5; v1's cpu.cfs_quota_us over
    cpu.cfs_period_us); None: no quota (\"max\", -1) or no control groups."""
    quotas = []
    for version, folder in _group_folders(root, "cpu"):
        if version == 2:
            words = _text(folder / "cpu.max").split()
            quota, period = (words + ["", ""])[:2]
        else:
            quota, period = _text(folder / "cpu.cfs_quota_us").strip(), _text(folder / "cpu.cfs_period_us").strip()
        if quota.isdigit() and period.isdigit() and int(period) > 0:
            quotas.append(int(quota) / int(period))
    return min(quotas) if quotas else None


# the memory files of cgroup v2 and v1: (limit, usage)
CGROUP_MEMORY_FILES = {2: ("memory.max", "memory.current"), 1: ("memory.limit_in_bytes", "memory.usage_in_bytes")}


def _cgroup_room(root: Path) -> int | None:
    """What the tightest memory limit over this process's control group and its ancestors still
    allows (limit − usage, each level's own); None: no limit found."""
    room = None
    for version, folder in _group_folders(root, "memory"):
        limit_file, usage_file = CGROUP_MEMORY_FILES[version]
        limit, usage = _numbers(folder / limit_file).get(""), _numbers(folder / usage_file).get("")
        if limit is not None and usage is not None:
            room = max(0, limit - usage) if room is None else min(room, max(0, limit - usage))
    return room


def _group_folders(root: Path, controller: str) -> Iterator[tuple[int, Path]]:
    """(cgroup version, folder) of this process's control group, then of each ancestor, where
    ``controller``'s files are: v2's unified hierarchy (/proc/self/cgroup's "0::PATH") and v1's
    hierarchy of that controller ("N:cpu,cpuacct:PATH"); the top level's where it does not say."""
    try:
        lines = read_at_most(root / "proc/self/cgroup", 65536).decode("ascii", errors="replace").splitlines()
    except OSError:
        lines = []
    paths = {}
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            paths[2] = path
        elif controller in controllers.split(","):
            paths[1] = path
    for version, base in ((2, "sys/fs/cgroup"), (1, f"sys/fs/cgroup/{controller}")):
        parts = [part for part in paths.get(version, "/").split("/") if part not in ("", ".", "..")]
        for depth in range(len(parts), -1, -1):
            yield version, root / base / "/".join(parts[:depth])


def _address_space_room(root: Path) -> int | None:
    """What ``ulimit -v`` (RLIMIT_AS) leaves this process beyond its VmSize; None without one."""
    try:
        import resource
    except ImportError:
        return None
    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    size = _numbers(root / "proc/self/status", per_line=True).get("VmSize")
    if limit == resource.RLIM_INFINITY or size is None:
        return None
    return max(0, limit - size * 1024)


def _windows_available() -> int | None:
    """GlobalMemoryStatusEx's available physical memory, or the address space left if less (a
    32-bit Python); None if the call fails."""
    import ctypes

    class MemoryStatus(ctypes.Structure):  # MEMORYSTATUSEX
        _fields_ = [("dwLength", ctypes.c_uint32), ("dwMemoryLoad", ctypes.c_uint32),
                    *((name, ctypes.c_uint64) for name in ("ullTotalPhys", "ullAvailPhys", "ullTotalPageFile",
                                                           "ullAvailPageFile", "ullTotalVirtual", "ullAvailVirtual",
                                                           "ullAvailExtendedVirtual"))]

    status = MemoryStatus(dwLength=ctypes.sizeof(MemoryStatus))
    try:
        if not ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):
            return None
    except (AttributeError, OSError):
        return None
    return min(status.ullAvailPhys, status.ullAvailVirtual)


def _physical_memory() -> int | None:
    """The machine's physical memory by sysconf (pages × page size); None where it does not say."""
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGESIZE")
    except (AttributeError, ValueError, OSError):  # no sysconf, or a name this system does not know
        return None
    return pages * size if pages > 0 and size > 0 else None


def _text(path: Path) -> str:
    """A small system file's text; '' when it is missing or unreadable."""
    try:
        return read_at_most(path, 65536).decode("ascii", errors="replace")
    except OSError:
        return ""


def _numbers(path: Path, per_line: bool = False) -> dict[str, int]:
    """A small system file's numbers: {"": n} for a file holding one number, {"Key": n} for
    ``Key: n kB`` lines; {} when it is missing, unreadable or says "max"."""
    found = {}
    for line in _text(path).splitlines() if per_line else [f":{_text(path)}"]:
        key, _, value = line.partition(":")
        digits = value.split()[0] if value.split() else ""
        if digits.isdigit():
            found[key.strip()] = int(digits)
    return found
