"""What the machine lets a process use: the cores a CPU quota allows, and which limit a memory
message names (the memory figures themselves: test_memory.py)."""
import os

import pytest

import scratchnn.training.memory as memory
from scratchnn.host import resources
from scratchnn.errors import ConfigError
from scratchnn.training.presets import get_preset

AFFINITY = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def write(root, path, text):
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


@pytest.mark.parametrize("files,quota", [
    ({"sys/fs/cgroup/cpu.max": "150000 100000\n"}, 1.5),
    ({"sys/fs/cgroup/cpu.max": "max 100000\n"}, None),
    ({"sys/fs/cgroup/cpu/cpu.cfs_quota_us": "50000\n", "sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n"}, 0.5),
    ({"sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n", "sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({"sys/fs/cgroup/cpu.max": "100000 0\n"}, None),
    ({"sys/fs/cgroup/cpu.max": "\x00" * 100_000}, None),
    ({}, None),
], ids=["cgroup2", "cgroup2-no-quota", "cgroup1", "cgroup1-no-quota", "zero-period", "garbled", "no-cgroups"])
def test_a_cpu_quota_is_read_from_either_cgroup_version(tmp_path, files, quota):
    for path, text in files.items():
        write(tmp_path, path, text)
    assert resources.cpu_quota(tmp_path) == quota


def test_the_tightest_quota_over_the_group_and_its_ancestors_counts(tmp_path):
    write(tmp_path, "proc/self/cgroup", "0::/docker/abc\n")
    write(tmp_path, "sys/fs/cgroup/docker/abc/cpu.max", "400000 100000\n")
    write(tmp_path, "sys/fs/cgroup/docker/cpu.max", "250000 100000\n")  # every container together
    assert resources.cpu_quota(tmp_path) == 2.5
    write(tmp_path, "proc/self/cgroup", "3:cpu,cpuacct:/job\n0::/\n")  # cgroup v1, its cpu hierarchy
    write(tmp_path, "sys/fs/cgroup/cpu/job/cpu.cfs_quota_us", "100000\n")
    write(tmp_path, "sys/fs/cgroup/cpu/job/cpu.cfs_period_us", "100000\n")
    assert resources.cpu_quota(tmp_path) == 1.0


def test_usable_cores_are_no_more_than_the_quota_allows_and_at_least_one(tmp_path):
    """docker --cpus 1 on a many-core machine: a sweep started a worker per core, and OpenBLAS a
    thread per core, each then running a fraction of the time."""
    assert resources.usable_cores(tmp_path) == AFFINITY  # no quota: the cores it may run on
    write(tmp_path, "sys/fs/cgroup/cpu.max", "150000 100000\n")
    assert resources.usable_cores(tmp_path) == min(AFFINITY, 2)  # 1.5 CPUs' time: two threads busy part-time
    write(tmp_path, "sys/fs/cgroup/cpu.max", "10000 100000\n")
    assert resources.usable_cores(tmp_path) == 1
    write(tmp_path, "sys/fs/cgroup/cpu.max", f"{100000 * (AFFINITY + 8)} 100000\n")
    assert resources.usable_cores(tmp_path) == AFFINITY  # a quota above the cores allows no more of them


def test_a_memory_message_names_the_limit_that_allows_least():
    """Under ulimit -v the refusal said 'this machine has 1.4 GB available' of a 24 GB machine."""
    assert resources.memory_words({}, "1.0 GB") == "this machine has 1.0 GB available"
    assert resources.memory_words({resources.MACHINE: 9}, "9 bytes") == "this machine has 9 bytes available"
    words = resources.memory_words({resources.MACHINE: 24e9, resources.ADDRESS_SPACE: 1.4e9}, "1.4 GB")
    assert words == "this process's address-space limit (ulimit -v) leaves 1.4 GB"
    limits = {resources.MACHINE: 24e9, resources.CONTROL_GROUP: 5e8, resources.ADDRESS_SPACE: 1e9}
    words = resources.memory_words(limits, "500.0 MB")
    assert words == "this process's control group (a container's memory limit) leaves 500.0 MB"


def test_training_refused_under_ulimit_v_says_it_is_ulimit_v(monkeypatch):
    monkeypatch.setattr(memory, "memory_limits", lambda: {resources.MACHINE: 24_000_000_000,
                                                          resources.ADDRESS_SPACE: 100_000_000})
    with pytest.raises(ConfigError, match=r"needs at least .* and this process's address-space limit \(ulimit -v\) "
                                          r"leaves 100\.0 MB \("):
        memory.check_training_memory(get_preset("cnn-best"), (60_000, 28, 28))
    monkeypatch.setattr(memory, "memory_limits", lambda: {resources.MACHINE: 100_000_000})
    with pytest.raises(ConfigError, match=r" and this machine has 100\.0 MB available \("):
        memory.check_training_memory(get_preset("cnn-best"), (60_000, 28, 28))


def test_inference_batches_take_at_most_an_eighth_of_what_is_free(monkeypatch):
    """A training's evaluation holds its batches beside the steps' arrays: 256 MiB of them on a
    machine with 400 MB free would take it past what it has."""
    from scratchnn.nn import Conv2D, Dense, Flatten, ReLU
    from scratchnn.model import Sequential

    model = Sequential([Conv2D(1, 32, 3, padding=1), ReLU(), Flatten(), Dense(32 * 28 * 28, 10)],
                       input_shape=(1, 28, 28))
    monkeypatch.setattr(resources, "_room", [-float("inf"), 0])
    monkeypatch.setattr(resources, "available_memory", lambda: None)
    unknown = model.inference_batch_size()
    assert unknown == model.inference_batch_size(resources.INFERENCE_MEMORY)
    monkeypatch.setattr(resources, "available_memory", lambda: 80_000_000)
    assert model.inference_batch_size() == unknown  # asked again within the second: the last answer
    monkeypatch.setattr(resources, "_room", [-float("inf"), 0])
    assert model.inference_batch_size() == model.inference_batch_size(10_000_000) < unknown
    monkeypatch.setattr(resources, "_room", [-float("inf"), 0])
    monkeypatch.setattr(resources, "available_memory", lambda: 0)
    assert model.inference_batch_size() == 1  # nothing free: one row at a time, not none


def test_under_ulimit_v_the_note_allows_for_address_space_growing_more():
    """cnn-best under ulimit -v 650 MiB passed without a note (a 220 MB bound, twice that within the
    482 MiB left) and ran out of address space in its first epoch: it grew 2.5x the bound."""
    from scratchnn.training.presets import get_preset

    config = get_preset("cnn-best")
    config.threads = 2

    def notes(limits):
        lines = []
        memory.memory_limits = lambda: limits
        memory.check_training_memory(config, (4000, 28, 28), log=lines.append)
        return lines

    original = memory.memory_limits
    try:
        room, step = 480 * 2**20, memory.step_memory(config)  # what ulimit -v 650 MiB left
        need = 12_544_000 + step.of(128) + memory.measuring_memory(config, step, 1000, room)
        assert 2 * need <= room < 3 * need
        assert notes({resources.MACHINE: room}) == []
        said = notes({resources.MACHINE: 10 * room, resources.ADDRESS_SPACE: room})
        assert len(said) == 1
        assert ", often 3x that, and this process's address-space limit (ulimit -v) leaves " in said[0]
    finally:
        memory.memory_limits = original
