"""training/memory.py: the lower bound on a training step's memory, and runs refused by it."""
import tracemalloc

import numpy as np
import pytest

import scratchnn.training.memory as memory
from scratchnn.errors import ConfigError
from scratchnn.nn.winograd4 import F4
from scratchnn.training.fit import fit
from scratchnn.host.resources import available_memory
from scratchnn.training.memory import check_training_memory, step_memory
from scratchnn.training.presets import get_preset
from scratchnn.training.run import resume_run, train_run

NETWORKS = [("seed", {}), ("mlp", {}), ("mlp", {"batchnorm": True, "hidden": [512, 256], "augment": False}),
            ("cnn", {}), ("cnn-best", {"batch_size": 32}), ("lenet5", {}),
            ("cnn", {"batch_size": 0, "conv": [8, 16], "hidden": [32]}),
            ("cnn", {"kernel_size": 5, "padding": [2, 2], "optimizer": "sgd", "momentum": 0.9, "pool": "avg"})]


def traced_peak(config, images: int, fast: bool) -> int:
    """Bytes NumPy held at most (tracemalloc) while ``config``'s network trained one epoch on
    ``images`` random images, counted from before the network was built."""
    rng = np.random.default_rng(0)
    x = rng.random((images, 1, 28, 28) if config.conv else (images, 784), dtype=np.float32)
    y = np.arange(images) % 10
    augment = config.build_augmentation()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        model = config.build_model(np.random.default_rng(0))
        fit(model, config.build_optimizer(), x, y, epochs=1, batch_size=config.batch_size, rng=rng, fast=fast,
            augment=augment, augment_rng=rng if augment else None)
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "textbook"])
@pytest.mark.parametrize("preset,changes", NETWORKS, ids=[f"{p}-{i}" for i, (p, _) in enumerate(NETWORKS)])
def test_the_bound_is_below_what_a_training_step_really_holds(preset, changes, fast):
    config = get_preset(preset)
    for name, value in changes.items():
        setattr(config, name, value)
    images = 256
    bound = step_memory(config).of(config.batch_size or images)
    peak = traced_peak(config, images, fast)
    assert 0 < bound <= peak, (bound, peak)


def test_the_bound_counts_layer_outputs_and_the_optimizers_slots():
    config = get_preset("seed")  # 784 -> 10 (ReLU) -> 10, plain gradient descent: no slots
    assert step_memory(config) == memory.StepMemory(per_image=4 * 30, fixed=4 * 2 * (7850 + 110))
    config.optimizer = "adam"  # two more numbers a parameter
    assert step_memory(config).fixed == 4 * 4 * (7850 + 110)
    config.batchnorm = True  # running averages are not trained: no gradient, no slots
    assert step_memory(config) == memory.StepMemory(per_image=4 * 40, fixed=4 * 4 * (7850 + 20 + 110))


def test_a_run_that_cannot_fit_is_refused_with_what_it_needs_and_a_batch_to_try():
    config = get_preset("cnn")
    config.batch_size = 0  # a full batch of 59,000 images through cnn: 16 GB of layer outputs, 1.4 GB of im2col
    with pytest.raises(ConfigError) as refused:
        check_training_memory(config, (60_000, 28, 28), available=8_000_000_000)
    assert str(refused.value) == (
        "training needs at least 17.9 GB of memory and this machine has 8.0 GB available (a full batch of "
        "59,000 images keeps 17.4 GB of what its layers computed, for the backward pass; the weights, gradients and "
        "optimizer state take 3.6 MB, the images as numbers 188.2 MB, checking it as it learns (dev set, doctor) "
        "268.4 MB); try --batch-size 4,096, or smaller layers (--hidden, --conv)")
    config.batch_size = 4096  # what it suggests fits with room to spare
    check_training_memory(config, (60_000, 28, 28), available=8_000_000_000)
    assert 4 * step_memory(config).of(4096) + 188_160_000 <= 8_000_000_000


def test_a_network_too_big_for_even_a_few_images_says_so():
    config = get_preset("cnn")
    config.conv = [4096]
    with pytest.raises(ConfigError, match="too big to train here even a few images at a time: use smaller layers"):
        check_training_memory(config, (10_000, 28, 28), available=1_500_000_000)  # its weights &c.: 1.4 GB


def test_no_figure_for_the_machine_means_no_check(monkeypatch):
    config = get_preset("cnn")
    config.batch_size = 0
    monkeypatch.setattr(memory, "memory_limits", lambda: {})
    check_training_memory(config, (60_000, 28, 28))


def write(root, path, text):
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_text(text)


MEMINFO = "MemTotal:       24683784 kB\nMemFree:        20462352 kB\nMemAvailable:   2000000 kB\n" \
          "SwapTotal:       1000000 kB\nSwapFree:         500000 kB\n"


def test_available_memory_is_memavailable_and_free_swap(tmp_path):
    write(tmp_path, "proc/meminfo", MEMINFO)
    assert available_memory(tmp_path) == 2_500_000 * 1024


@pytest.mark.parametrize("files,expected", [
    ({"sys/fs/cgroup/memory.max": "1000000000\n", "sys/fs/cgroup/memory.current": "400000000\n"}, 600_000_000),
    ({"sys/fs/cgroup/memory.max": "max\n", "sys/fs/cgroup/memory.current": "400000000\n"}, 2_560_000_000),
    ({"sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
      "sys/fs/cgroup/memory/memory.usage_in_bytes": "400000000\n"}, 2_560_000_000),
    ({"sys/fs/cgroup/memory/memory.limit_in_bytes": "500000000\n",
      "sys/fs/cgroup/memory/memory.usage_in_bytes": "700000000\n"}, 0),
], ids=["cgroup2-limit", "cgroup2-no-limit", "cgroup1-no-limit", "cgroup1-over"])
def test_a_containers_limit_caps_what_is_available(tmp_path, files, expected):
    write(tmp_path, "proc/meminfo", MEMINFO)
    for path, text in files.items():
        write(tmp_path, path, text)
    assert available_memory(tmp_path) == expected


def test_an_address_space_limit_caps_what_is_available(tmp_path, monkeypatch):
    """ulimit -v was not counted: a run the check passed failed after its folder was made, and the
    --batch-size it was told to lower was then refused there (the resource audit)."""
    resource = pytest.importorskip("resource")
    write(tmp_path, "proc/meminfo", MEMINFO)
    write(tmp_path, "proc/self/status", "Name:\tpython\nVmPeak:\t 900000 kB\nVmSize:\t  800000 kB\n")
    limit = [resource.RLIM_INFINITY]
    monkeypatch.setattr(resource, "getrlimit", lambda which: (limit[0], limit[0]))
    assert available_memory(tmp_path) == 2_500_000 * 1024  # no limit: as before
    limit[0] = 1_500_000 * 1024
    assert available_memory(tmp_path) == 700_000 * 1024  # the limit less what the process holds already
    limit[0] = 500_000 * 1024
    assert available_memory(tmp_path) == 0


@pytest.mark.parametrize("meminfo", ["", "MemTotal: 1000 kB\n", "MemAvailable: lots\n", "\x00" * 100_000],
                         ids=["empty", "old-kernel", "garbled", "endless"])
def test_a_system_that_does_not_say_gives_none(tmp_path, meminfo):
    write(tmp_path, "proc/meminfo", meminfo)
    assert available_memory(tmp_path) is None
    assert available_memory(tmp_path / "not-linux") is None


def test_this_machine_says_something_sensible():
    available = available_memory()
    assert available is None or 0 <= available < 2**50


def test_train_refuses_before_making_its_folder_and_resume_refuses_too(tmp_path, shared_dir, monkeypatch):
    csv = shared_dir / "datasets/mnist/t10k-kaggle.csv.gz"
    config = get_preset("seed")
    config.csv, config.epochs = str(csv), 1
    monkeypatch.setattr(memory, "memory_limits", lambda: {"machine": 10_000_000})  # 10 MB: not even the images fit
    with pytest.raises(ConfigError, match="the images alone take more than that: train on fewer"):
        train_run(config, tmp_path / "run", progress=False, log=lambda line: None)
    assert not (tmp_path / "run").exists()
    (tmp_path / "run").mkdir()
    config.save(tmp_path / "run" / "config.toml")  # a run that stopped before its first checkpoint
    with pytest.raises(ConfigError, match="training needs at least"):
        resume_run(tmp_path / "run", progress=False, log=lambda line: None)
    cnn = get_preset("cnn")  # a run resumed where less memory is free: its batch size is its own
    cnn.csv = config.csv
    cnn.save(tmp_path / "run" / "config.toml")
    monkeypatch.setattr(memory, "memory_limits", lambda: {"machine": 60_000_000})  # batches of 128 need 80 MB at least
    with pytest.raises(ConfigError) as refused:
        resume_run(tmp_path / "run", progress=False, log=lambda line: None)
    assert str(refused.value).endswith(f"; resume it where more memory is free, or start it again smaller (scratchnn "
                                       f"train --config {tmp_path / 'run' / 'config.toml'} --batch-size 8)")


def test_a_run_that_fits_only_if_it_needs_little_more_than_the_bound_gets_a_note():
    config = get_preset("cnn")
    config.conv, config.batch_size = [4096], 512  # 14 GB at least; it was killed on a 24.7 GB machine
    measuring = memory.measuring_memory(config, step_memory(config), 1000, 10**10)  # the doctor's sample: 0.9 GB
    need = 31_360_000 + step_memory(config).of(512) + measuring
    lines = []
    check_training_memory(config, (10_000, 28, 28), available=int(1.5 * need), log=lines.append)
    assert lines == [f"Note: training needs at least {need / 1e9:.1f} GB of memory, often 2x that, and this machine "
                     f"has {1.5 * need / 1e9:.1f} GB available; if the run is killed (out of memory), try "
                     "--batch-size 128"]
    lines.clear()
    check_training_memory(config, (10_000, 28, 28), available=2 * need, log=lines.append)
    assert lines == []
    config.textbook = True  # the textbook path transforms the batch's Winograd tiles at once: they count
    assert step_memory(config).per_image > step_memory(get_preset("cnn")).per_image


def test_resume_finishing_a_run_that_trained_to_its_end_needs_no_room_to_train(tmp_path, shared_dir, monkeypatch):
    config = get_preset("seed")
    config.csv, config.epochs, config.train_size = str(shared_dir / "datasets/mnist/t10k-kaggle.csv.gz"), 2, 500
    train_run(config, tmp_path / "run", progress=False, log=lambda line: None)
    (tmp_path / "run" / "model.safetensors").unlink()  # killed while writing the model
    monkeypatch.setattr(memory, "memory_limits", lambda: {"machine": 10_000_000})
    result = resume_run(tmp_path / "run", progress=False, log=lambda line: None)
    assert result.model_path.is_file()


def test_a_callers_cap_below_the_machine_is_the_limit_and_named():
    config = get_preset("cnn")
    config.batch_size, config.threads = 0, 2
    with pytest.raises(ConfigError, match=r"at least 2\.8 GB of memory and a run may use 1\.0 GB here \(serve --cap\)"):
        check_training_memory(config, (10_000, 28, 28), available=8_000_000_000, cap=(1_000_000_000, "serve --cap"))
    with pytest.raises(ConfigError, match=r"and this machine has 2\.0 GB available"):  # the machine has less
        check_training_memory(config, (10_000, 28, 28), available=2_000_000_000, cap=(4_000_000_000, "serve --cap"))
    # the bound within the cap, its likely growth not (the web audit: a 2.4 GB bound reached 13 GB under a
    # 4 GB cap): a cap is a promise, so that is refused too, with a batch that fits it
    with pytest.raises(ConfigError, match=r"at least 3\.0 GB of memory, often 2x that, and a run may use 3\.0 GB "
                                          r"here .*try --batch-size \d"):
        check_training_memory(config, (10_000, 28, 28), available=8_000_000_000, cap=(3_000_000_000, "serve --cap"))
    lines = []  # within the cap with room for it to grow: nothing to say
    check_training_memory(config, (10_000, 28, 28), available=8_000_000_000, cap=(6_000_000_000, "serve --cap"),
                          log=lines.append)
    assert lines == []


def test_lr_find_refuses_batches_that_cannot_fit_before_its_range_test(shared_dir, monkeypatch, capsys):
    from scratchnn.cli.main import main

    monkeypatch.setattr(memory, "memory_limits", lambda: {"machine": 100_000_000})  # cnn-best needs 0.9 GB at 1,024
    code = main(["lr-find", "--preset", "cnn-best", "--batch-size", "1024", "--out", "never.png",
                 "--csv", str(shared_dir / "datasets/mnist/t10k-kaggle.csv.gz")])
    assert code != 0 and "training needs at least" in capsys.readouterr().err


@pytest.mark.parametrize("preset", ["seed", "mlp", "cnn", "cnn-best", "lenet5"])
def test_a_built_model_counts_as_its_config_does(preset):
    config = get_preset(preset)
    model = config.build_model(np.random.default_rng(0))
    assert memory.per_image_bytes(model) == step_memory(config).per_image


def test_fit_by_hand_refuses_a_batch_that_cannot_fit(monkeypatch):
    config = get_preset("cnn")
    model = config.build_model(np.random.default_rng(0))
    x, y = np.zeros((1000, 1, 28, 28), np.float32), np.arange(1000) % 10
    per_image = memory.per_image_bytes(model)  # 284 kB: 1,000 images need 284 MB
    monkeypatch.setattr(memory, "memory_limits", lambda: {"machine": 100 * per_image})
    with pytest.raises(ConfigError) as refused:
        fit(model, config.build_optimizer(), x, y, epochs=1, batch_size=None)
    assert str(refused.value) == (
        f"training needs at least {1000 * per_image / 1e6:.1f} MB of memory for the full batch of 1,000 images "
        f"({per_image / 1e3:.1f} kB an image, for the backward pass) and this machine has {100 * per_image / 1e6:.1f} "
        "MB available; pass batch_size=16 (or less)")
    with pytest.raises(ConfigError, match="for batches of 500 images"):
        fit(model, config.build_optimizer(), x, y, epochs=1, batch_size=500)
    fit(model, config.build_optimizer(), x[:64], y[:64], epochs=1, batch_size=16)  # 16 of 100 fit


def test_the_processs_own_control_group_and_its_ancestors_are_read(tmp_path):
    write(tmp_path, "proc/meminfo", MEMINFO)  # 2.56 GB available
    write(tmp_path, "proc/self/cgroup", "9:name=systemd:/\n4:memory:/jobs/job-7\n0::/\n")
    write(tmp_path, "sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n")  # the top: no limit
    write(tmp_path, "sys/fs/cgroup/memory/memory.usage_in_bytes", "3000000000\n")
    write(tmp_path, "sys/fs/cgroup/memory/jobs/job-7/memory.limit_in_bytes", "2000000000\n")  # the job's own
    write(tmp_path, "sys/fs/cgroup/memory/jobs/job-7/memory.usage_in_bytes", "500000000\n")
    assert available_memory(tmp_path) == 1_500_000_000
    write(tmp_path, "sys/fs/cgroup/memory/jobs/memory.limit_in_bytes", "4000000000\n")  # all jobs together
    write(tmp_path, "sys/fs/cgroup/memory/jobs/memory.usage_in_bytes", "3200000000\n")
    assert available_memory(tmp_path) == 800_000_000  # the tighter room, an ancestor's
    write(tmp_path, "proc/self/cgroup", "0::/user.slice/app.scope\n")  # cgroup v2
    write(tmp_path, "sys/fs/cgroup/user.slice/memory.max", "1000000000\n")
    write(tmp_path, "sys/fs/cgroup/user.slice/memory.current", "900000000\n")
    write(tmp_path, "sys/fs/cgroup/user.slice/app.scope/memory.max", "max\n")
    assert available_memory(tmp_path) == 100_000_000


def test_a_cgroup_path_cannot_climb_out_of_the_cgroup_folder(tmp_path):
    write(tmp_path, "proc/meminfo", MEMINFO)
    write(tmp_path, "proc/self/cgroup", "0::/../../etc\n")
    write(tmp_path, "etc/memory.max", "1\n")
    write(tmp_path, "etc/memory.current", "0\n")
    assert available_memory(tmp_path) == 2_500_000 * 1024


class FakeKernel32:
    """ctypes.windll.kernel32 with a GlobalMemoryStatusEx that fills in ``fields`` (0: it fails)."""

    def __init__(self, **fields):
        self.fields, self.sizes = fields, []

    def GlobalMemoryStatusEx(self, pointer):
        status = pointer._obj
        self.sizes.append(status.dwLength)
        for name, value in self.fields.items():
            setattr(status, name, value)
        return int(bool(self.fields))


def test_windows_says_its_available_physical_memory(monkeypatch, tmp_path):
    import ctypes
    import sys
    import types

    monkeypatch.setattr(sys, "platform", "win32")
    kernel32 = FakeKernel32(ullAvailPhys=6_000_000_000, ullAvailVirtual=2**47)
    monkeypatch.setattr(ctypes, "windll", types.SimpleNamespace(kernel32=kernel32), raising=False)
    assert available_memory(tmp_path) == 6_000_000_000
    assert kernel32.sizes == [64], "dwLength must be sizeof(MEMORYSTATUSEX), or Windows refuses the call"
    kernel32.fields["ullAvailVirtual"] = 1_500_000_000  # a 32-bit Python: its address space is the limit
    assert available_memory(tmp_path) == 1_500_000_000
    kernel32.fields.clear()
    assert available_memory(tmp_path) is None


def test_macos_says_its_physical_memory_and_nothing_where_sysconf_does_not(monkeypatch, tmp_path):
    import os
    import sys

    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(os, "sysconf", {"SC_PHYS_PAGES": 1_048_576, "SC_PAGESIZE": 16384}.__getitem__)
    assert available_memory(tmp_path) == 16 * 2**30

    def unknown(name):
        raise ValueError("unrecognized configuration name")

    monkeypatch.setattr(os, "sysconf", unknown)
    assert available_memory(tmp_path) is None



@pytest.mark.parametrize("resume", [False, True])
def test_running_out_of_memory_anyway_is_one_line_naming_what_to_lower(monkeypatch, capsys, tmp_path, resume):
    from scratchnn.cli import train_cmd
    from scratchnn.cli.main import main

    def allocate(*args, **kwargs):
        raise MemoryError("Unable to allocate 16.0 GiB for an array with shape (59000, 32, 28, 28) and data type "
                          "float32")

    monkeypatch.setattr(train_cmd, "train_run", allocate)
    monkeypatch.setattr(train_cmd, "resume_run", allocate)
    argv = ["--resume", str(tmp_path)] if resume else ["--preset", "cnn", "--out", str(tmp_path / "run")]
    assert main(["train", *argv]) == 1
    advice = ("close other programs and resume it again, or start it again smaller (--batch-size, --hidden, --conv)"
              if resume else "use a smaller --batch-size, smaller layers (--hidden, --conv) or fewer images "
              "(--train-size); --threads 1 and --doctor off need less")  # (the resource audit: they did)
    assert capsys.readouterr().err == (
        "scratchnn train: error: out of memory (Unable to allocate 16.0 GiB for an array with shape (59000, 32, 28, "
        f"28) and data type float32): {advice}\n")


def test_winograd_tiles_of_the_whole_batch_count_on_one_thread_and_the_textbook_path():
    """The web audit: a full-batch cnn on one thread (a page's run) held 2.6x the bound, its
    second convolution's Winograd tiles of all 9,000 images left out; on two threads the fast
    path transforms a few tiles at a time. benchmarks/memory_bound.py: now 1.1-1.2x."""
    config = get_preset("cnn")
    config.batch_size, config.threads = 0, 2
    threaded = step_memory(config).of(9000)
    config.threads = 1
    whole = step_memory(config).of(9000)
    # the 11x11 outputs of 64 channels in F(4x4, 3x3)'s 9 tiles of 6x6: forward's work arrays and dM, dV
    tiles = F4.work_floats((32, 13, 13), 64, (0, 0)) + 36 * 9 * (32 + 64)
    assert whole - threaded == 9000 * tiles * 4
    config.threads, config.textbook = 2, True
    assert step_memory(config).of(9000) == whole


def test_a_run_checking_itself_as_it_learns_stays_within_the_bound_that_counts_it():
    """cnn-best passed the check with 512 MiB free and peaked at 627 MB: the doctor's 128 images
    went through the textbook layers at once (250 MB) while the work arrays of the dev set's
    batches (230 MB) were still held. Here (two epochs of 256 images, 256 dev images) NumPy's peak
    was 518 MB against a bound, with both counted, of 392 MB; 250 MB now."""
    from scratchnn.training.health import HealthRecorder

    config = get_preset("cnn-best")
    images = dev = 256
    rng = np.random.default_rng(0)
    x, y = rng.random((images + dev, 1, 28, 28), dtype=np.float32), np.arange(images + dev) % 10
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        model = config.build_model(np.random.default_rng(0))
        fit(model, config.build_optimizer(), x[:images], y[:images], epochs=2, batch_size=128, x_dev=x[images:],
            y_dev=y[images:], health=HealthRecorder.for_data(x[:images]), rng=rng)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    step = step_memory(config)
    assert peak <= step.of(128) + memory.measuring_memory(config, step, dev, None), peak
