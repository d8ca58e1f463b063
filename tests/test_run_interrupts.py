"""No interruption leaves a run that cannot be completed: SIGKILL or SIGINT at every moment of
`python -m scratchnn train`, then `train --resume`, ends with the uninterrupted run's model, bit for bit."""
import os
import shlex
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from scratchnn.data import read_idx_pair, write_idx
from scratchnn.io import MODEL_FILE, read_tensors
from scratchnn.training.checkpoint import CHECKPOINT_FILE, load_checkpoint
from scratchnn.training.config import TrainConfig
from scratchnn.training.run import REPORT_FILE, train_run

pytestmark = pytest.mark.slow  # ten real runs interrupted and resumed in subprocesses (about 40 s)

# Kills itself (SIGKILL, or SIGINT = Ctrl-C) when the run is about to move a finished file into
# place: os.replace onto NAME for the Nth time ("final": once model.safetensors exists). That is
# the moment after everything before it was written and before NAME is (its temp file is full).
KILL_AT_REPLACE = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from scratchnn.cli.main import main
    name, when = os.environ["KILL_AT"].split(":")
    sig = getattr(signal, "SIG" + os.environ["KILL_SIGNAL"])
    real_replace, seen = os.replace, [0]

    def replace(src, dst, *args, **kwargs):
        dst = Path(dst)
        if dst.name == name:
            seen[0] += 1
            if (when == "final" and (dst.parent / "model.safetensors").exists()) or str(seen[0]) == when:
                os.kill(os.getpid(), sig)
        return real_replace(src, dst, *args, **kwargs)

    os.replace = replace
    sys.exit(main(sys.argv[1:]))
""")


@pytest.fixture(scope="module")
def mnist_slice(shared_dir, tmp_path_factory):
    """The first 600 real MNIST test digits as an IDX pair of their own."""
    folder = tmp_path_factory.mktemp("mnist600")
    mnist = shared_dir / "datasets" / "mnist"
    images, labels = read_idx_pair(mnist / "t10k-images-idx3-ubyte.gz", mnist / "t10k-labels-idx1-ubyte.gz")
    write_idx(folder / "images.idx", images[:600])
    write_idx(folder / "labels.idx", labels[:600])
    return folder / "images.idx", folder / "labels.idx"


def config(data, **changes) -> TrainConfig:
    images, labels = data
    values = dict(hidden=[16], init="he_normal", bias_init="zeros", dropout=0.1, optimizer="adam", lr=3e-3,
                  epochs=4, batch_size=50, dev_size=100, eval_every=1, images=str(images), labels=str(labels), seed=2)
    values.update(changes)
    return TrainConfig(**values)


# early stopping after one evaluation without a better dev loss: a high rate on 500 images stops early
EARLY = dict(lr=0.05, epochs=12, patience=1, dropout=0.0)


@pytest.fixture(scope="module")
def whole(mnist_slice, tmp_path_factory):
    """The uninterrupted runs' model tensors, by config name."""
    base = tmp_path_factory.mktemp("whole")
    out = {}
    for name, changes in (("plain", {}), ("early", EARLY)):
        train_run(config(mnist_slice, **changes), base / name, log=lambda line: None, progress=False)
        out[name] = read_tensors(base / name / MODEL_FILE)[0]
    assert load_checkpoint(base / "early" / CHECKPOINT_FILE).epoch < EARLY["epochs"]  # it did stop early
    return out


def scratchnn(*args, script=None, env=None, timeout=300):
    command = [sys.executable, *(["-c", script] if script else ["-m", "scratchnn"]), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


def assert_same_tensors(expected, path):
    got = read_tensors(path)[0]
    assert expected.keys() == got.keys()
    for name in expected:
        assert np.array_equal(expected[name], got[name]), name


MOMENTS = [  # (config, file about to be moved into place, occurrence, signal, what the folder then holds)
    ("plain", CHECKPOINT_FILE, "1", "KILL", "config.toml only: killed before the first checkpoint"),
    ("plain", MODEL_FILE, "1", "KILL", "last checkpoint written, model file half-way (a temp file)"),
    ("plain", MODEL_FILE, "1", "INT", "Ctrl-C right after the last checkpoint"),
    ("plain", CHECKPOINT_FILE, "final", "KILL", "model written, checkpoint not yet marked finished"),
    ("plain", REPORT_FILE, "1", "KILL", "finished, killed while writing the report"),
    ("plain", REPORT_FILE, "1", "INT", "finished, Ctrl-C while writing the report"),
    ("early", MODEL_FILE, "1", "KILL", "early stopping ended training; the best weights not yet restored"),
    ("early", MODEL_FILE, "1", "INT", "early stopping, Ctrl-C after the last checkpoint"),
]


@pytest.mark.parametrize("name, file, when, sig, moment", MOMENTS, ids=[m[4] for m in MOMENTS])
def test_an_interrupted_run_resumes_to_the_uninterrupted_model(tmp_path, mnist_slice, whole, name, file, when, sig,
                                                               moment):
    config(mnist_slice, **(EARLY if name == "early" else {})).save(tmp_path / "config.toml")
    run = tmp_path / "run"
    killed = scratchnn("train", "--config", tmp_path / "config.toml", "--out", run, script=KILL_AT_REPLACE,
                       env={"KILL_AT": f"{file}:{when}", "KILL_SIGNAL": sig})
    if sig == "KILL":
        assert killed.returncode == -signal.SIGKILL, killed.stderr
    else:
        assert killed.returncode == 130, killed.stderr
        assert killed.stderr.strip().endswith(f"interrupted; the run folder {run} keeps its last checkpoint; "
                                              f"continue with 'scratchnn train --resume {run}'"), killed.stderr
        assert "Traceback" not in killed.stderr
    assert not (run / REPORT_FILE).exists()
    if file != REPORT_FILE and file != CHECKPOINT_FILE:
        assert not (run / MODEL_FILE).exists()
    if file == MODEL_FILE:  # the run's checkpoint holds the end of training, which is what was lost
        checkpoint = load_checkpoint(run / CHECKPOINT_FILE)
        assert not checkpoint.metadata["finished"]

    resumed = scratchnn("train", "--resume", run)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_tensors(whole[name], run / MODEL_FILE)
    assert (run / REPORT_FILE).exists() and load_checkpoint(run / CHECKPOINT_FILE).metadata["finished"]
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")]  # litter of the kill swept
    if file == MODEL_FILE:
        assert "Finishing" in resumed.stdout and "Epoch " not in resumed.stdout  # nothing trained again
    again = scratchnn("train", "--resume", run)
    # a finished run resumed again is done, not an error (a job scheduler may start a job twice)
    assert again.returncode == 0 and "already finished" in again.stderr and "nothing to train" in again.stderr, \
        again.stderr
    assert "Epoch " not in again.stdout and load_checkpoint(run / CHECKPOINT_FILE).metadata["finished"]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM], ids=["SIGKILL", "SIGINT", "SIGTERM"])
def test_a_kill_from_outside_at_whatever_moment_resumes_bit_for_bit(tmp_path, mnist_slice, sig):
    """The signal comes from another process, as a user's would, once training is under way."""
    settings = config(mnist_slice, epochs=30)
    settings.save(tmp_path / "config.toml")
    train_run(settings, tmp_path / "whole", log=lambda line: None, progress=False)
    run = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "scratchnn", "train", "--config", str(tmp_path / "config.toml"),
                                "--out", str(run), "--no-report", "--quiet"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240  # a hang guard only
    while process.poll() is None and time.monotonic() < deadline:
        if (run / CHECKPOINT_FILE).exists() and load_checkpoint(run / CHECKPOINT_FILE).epoch >= 3:
            process.send_signal(sig)
            break
        time.sleep(0.01)
    process.wait(timeout=240)
    stderr = process.stderr.read()
    assert process.returncode == -sig, stderr  # ended by the signal, once what it keeps is kept (console())
    if sig != signal.SIGKILL:  # SIGTERM as Ctrl+C: it says how to go on (it used to end without a word)
        assert "interrupted" in stderr and "--resume" in stderr, stderr
    resumed = scratchnn("train", "--resume", run, "--no-report")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_tensors(read_tensors(tmp_path / "whole" / MODEL_FILE)[0], run / MODEL_FILE)


@pytest.mark.skipif(not hasattr(signal, "SIGXCPU"), reason="a CPU-time limit (ulimit -t)")
def test_a_cpu_time_limit_stops_a_run_as_sigterm_does(tmp_path, mnist_slice):
    """The resource audit: ulimit -t ended a run with SIGXCPU at once: no word, no resume command,
    its epoch lost. It is kept and said now, and the process still ends by that signal."""
    import resource

    settings = config(mnist_slice, epochs=10_000)
    settings.save(tmp_path / "config.toml")
    limited = subprocess.run([sys.executable, "-m", "scratchnn", "train", "--config", str(tmp_path / "config.toml"),
                              "--out", str(tmp_path / "run"), "--no-report", "--quiet"], capture_output=True,
                             text=True, timeout=300,
                             preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_CPU, (4, 60)))  # ulimit -t 4
    assert limited.returncode == -signal.SIGXCPU, limited.stderr
    assert "interrupted; the run folder" in limited.stderr and "--resume" in limited.stderr, limited.stderr
    assert load_checkpoint(tmp_path / "run" / CHECKPOINT_FILE).epoch >= 1


def test_a_config_edited_before_resume_is_refused_naming_the_edit(tmp_path, mnist_slice, whole):
    """The reproducibility audit: an lr edited in config.toml was ignored by --resume (the checkpoint's
    schedule came back) while config.toml and the model file said it was used, so '--config' of the folder
    did not repeat it. What made the run is held to its checkpoint; threads and the like may change."""
    from scratchnn.errors import ConfigError
    from scratchnn.training.config import CONFIG_FILE
    from scratchnn.training.run import resume_run

    from scratchnn.errors import RunInterrupted

    run = tmp_path / "run"

    def interrupt(result):
        if result.epoch == 2:
            raise KeyboardInterrupt  # Ctrl+C after the second epoch's evaluation
    with pytest.raises(RunInterrupted):
        train_run(config(mnist_slice), run, log=lambda line: None, progress=False, on_evaluation=interrupt)
    assert load_checkpoint(run / CHECKPOINT_FILE).epoch == 2 and not (run / MODEL_FILE).exists()
    text = (run / CONFIG_FILE).read_text()
    assert "lr = 0.003\n" in text and "epochs = 4\n" in text and "threads = 0\n" in text
    (run / CONFIG_FILE).write_text(text.replace("lr = 0.003", "lr = 0.01").replace("epochs = 4", "epochs = 8"))
    with pytest.raises(ConfigError, match=r"config.toml was edited after the run began \(lr 0.003 -> 0.01, epochs 4 "
                                          r"-> 8\); --resume continues a run as it began: put the values back"):
        resume_run(run, log=lambda line: None, progress=False)
    (run / CONFIG_FILE).write_text(text.replace("threads = 0", "threads = 1"))  # how it runs, not what it learns
    resume_run(run, log=lambda line: None, progress=False)
    assert (run / MODEL_FILE).is_file()


@pytest.mark.skipif(os.name != "posix", reason="a shell script and process groups")
def test_one_ctrl_c_stops_a_shell_loop_of_runs(tmp_path, mnist_slice):
    """The CLI audit: the first Ctrl+C ended the run with exit code 130, so the script's loop went
    on to the next run (and the script ended 0). Ended by SIGINT, the shell stops with it."""
    # long enough to be caught training on a busy machine (CI once ran all three 300-epoch runs before the
    # test's process, sharing 2 cores with 4 test workers and a browser, saw the first checkpoint)
    config(mnist_slice, epochs=3000).save(tmp_path / "config.toml")
    loop = tmp_path / "loop.sh"
    loop.write_text(f"for s in 1 2 3; do {shlex.quote(sys.executable)} -m scratchnn train --config config.toml "
                    "--seed $s --out run-$s --no-report --quiet; done\necho the loop went on\n")
    script = subprocess.Popen(["bash", str(loop)], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, start_new_session=True,  # a terminal's process group, Ctrl+C's default
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 240  # a hang guard only
    while script.poll() is None and time.monotonic() < deadline:
        if (tmp_path / "run-1" / CHECKPOINT_FILE).exists():
            os.killpg(script.pid, signal.SIGINT)
            break
        time.sleep(0.01)
    out, err = script.communicate(timeout=240)
    assert script.returncode == -signal.SIGINT and "the loop went on" not in out, (out, err)
    assert "interrupted; the run folder run-1 keeps its last checkpoint" in err and not (tmp_path / "run-2").exists()
    assert "continue with 'scratchnn train --resume run-1 --no-report'" in err  # the disk audit: as it began
