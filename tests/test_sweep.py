"""``scratchnn sweep`` on 2,000 real digits: parallel trials, best.toml, failures, kill and resume, the report."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from optuna.trial import TrialState

from scratchnn.io import read_metadata

from sweep_support import SMALL, SPACE, env, scratchnn, study_trials, write_digits


@pytest.fixture(scope="module")
def digits(shared_dir, tmp_path_factory):
    return write_digits(shared_dir, tmp_path_factory.mktemp("digits") / "digits.csv")


@pytest.fixture(scope="module")
def sweep(digits, tmp_path_factory):
    """A finished 6-trial sweep with two local workers: (folder, the command's output)."""
    base = tmp_path_factory.mktemp("sweep")
    (base / "space.toml").write_text(SPACE)
    out = base / "sweep"
    done = scratchnn("sweep", "--space", base / "space.toml", "--csv", digits, *SMALL, "--trials", 6,
                     "--workers", 2, "--out", out)
    assert done.returncode == 0, done.stderr
    return out, done.stdout


def test_six_trials_run_as_run_folders_with_a_line_each(sweep):
    out, stdout = sweep
    trials = study_trials(out)
    assert len(trials) == 6 and all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    lines = [line for line in stdout.splitlines() if line.startswith("Trial ")]
    assert len(lines) == 6, stdout
    assert all(re.search(r"lr=\S+ dropout=\S+ .*best \d\.\d{4} \(trial \d\)", line) for line in lines), lines
    for trial in trials:  # an ordinary run folder, and it ran in a worker process, not here
        folder = out / "trials" / f"{trial.number:04d}"
        assert {"config.toml", "metrics.csv", "model.safetensors", "train.log"} <= {p.name for p in folder.iterdir()}
        if trial.state == TrialState.COMPLETE:  # the disk audit: its checkpoint, continuing nothing, was most of it
            assert not (folder / "checkpoint.safetensors").exists()
        assert trial.user_attrs["pid"] != os.getpid()
    assert 1 <= len({t.user_attrs["pid"] for t in trials}) <= 2, "at most two worker processes"


def test_best_toml_repeats_the_best_trial_exactly(sweep, tmp_path):
    out, _ = sweep
    best = max((t for t in study_trials(out) if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    # best.toml holds threads = 1, as the trial ran: more threads add up the products in another order
    assert "threads = 1\n" in (out / "best.toml").read_text()
    done = scratchnn("train", "--config", out / "best.toml", "--out", tmp_path / "again", "--quiet", "--no-report")
    assert done.returncode == 0, done.stderr
    assert read_metadata(tmp_path / "again")["metrics"]["dev_accuracy"] == best.value
    assert read_metadata(out / "trials" / f"{best.number:04d}")["config"] == read_metadata(tmp_path / "again")["config"]


def test_report_of_a_sweep_folder(sweep):
    out, _ = sweep
    done = scratchnn("report", out)
    assert done.returncode == 0, done.stderr
    page = (out / "sweep.html").read_text()
    for title in ("Optimisation history", "Parameter importances", "Parallel coordinates", "Slices"):
        assert f"<h3>{title}</h3><img" in page, title
    # the dependency audit: Optuna 4's default importance (fANOVA) needs scikit-learn, which no extra installs,
    # and the caption said fANOVA where Optuna 5 draws PED-ANOVA; PED-ANOVA is asked for by name
    assert "(PED-ANOVA)" in page and "fANOVA" not in page
    links = re.findall(r"href='(trials/\d{4}/report\.html)'", page)
    assert len(links) == 6 and all((out / link).is_file() for link in links)
    # in Python (a notebook): the caller's own pyplot figures stay open (it closed them all)
    from scratchnn.insight.sweep_report import write_sweep_report
    import matplotlib.pyplot as plt

    mine = plt.figure()
    try:
        write_sweep_report(out, log=lambda line: None, trial_reports=False)
        assert plt.fignum_exists(mine.number) and plt.get_fignums() == [mine.number]
    finally:
        plt.close(mine)


def test_a_sweeps_report_draws_the_best_trials_reports_and_says_so(sweep, tmp_path, monkeypatch):
    """The scale audit: a 400-trial sweep's report drew 153 trial reports, 7 minutes without a word."""
    import shutil

    from scratchnn.insight import sweep_report

    out = tmp_path / "copy"
    shutil.copytree(sweep[0], out)
    for report in out.glob("trials/*/report.html"):
        report.unlink()
    monkeypatch.setattr(sweep_report, "TRIAL_REPORTS", 2)
    lines = []
    sweep_report.write_sweep_report(out, log=lines.append)
    said = [re.fullmatch(r"Drawing trial (\d+)'s report \((\d) of 2\)", line) for line in lines]
    said = [(int(m[1]), int(m[2])) for m in said if m]
    assert [order for _, order in said] == [1, 2]
    drawn = sorted(int(report.parent.name) for report in out.glob("trials/*/report.html"))
    assert drawn == sorted(number for number, _ in said)
    assert any(line.endswith(f"the other 4: scratchnn report {out / 'trials' / 'NNNN'}") for line in lines), lines


def test_importing_the_sweep_report_leaves_the_callers_matplotlib_backend():
    """It called matplotlib.use("Agg") at import: a notebook's own figures stopped showing."""
    code = ("import matplotlib; matplotlib.use('svg'); import scratchnn.insight.sweep_report; "
            "print(matplotlib.get_backend())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "svg", done.stderr


def test_diverging_trials_are_failed_not_a_crash(digits, tmp_path):
    (tmp_path / "hot.toml").write_text("lr = {low = 60, high = 100}\n")
    done = scratchnn("sweep", "--space", tmp_path / "hot.toml", "--csv", digits, *SMALL, "--trials", 3,
                     "--workers", 2, "--out", tmp_path / "hot")
    assert done.returncode == 1 and "No trial finished well" in done.stdout, done.stdout + done.stderr
    trials = study_trials(tmp_path / "hot")
    assert len(trials) == 3 and all(t.state == TrialState.FAIL for t in trials)
    assert all("training diverged" in t.user_attrs["error"] for t in trials), [t.user_attrs for t in trials]
    assert not (tmp_path / "hot" / "best.toml").exists()
    # what the doctor made of each, in the trial, its line and sweep.html
    assert all("[exploding] error" in t.user_attrs["findings"] for t in trials), [t.user_attrs for t in trials]
    assert all("doctor: " in line for line in done.stdout.splitlines() if line.startswith("Trial "))
    assert scratchnn("report", tmp_path / "hot").returncode == 0
    page = (tmp_path / "hot" / "sweep.html").read_text()
    assert "<th>doctor</th>" in page and "No trial finished well: 3 of 3 failed or were pruned" in page


def test_a_best_trial_the_doctor_found_broken_is_said_to_be(digits, tmp_path):
    """Every trial at chance: the 'best' is the least bad, and the sweep says so before anyone repeats it."""
    (tmp_path / "warm.toml").write_text("lr = {low = 5, high = 20, log = true}\n")
    done = scratchnn("sweep", "--space", tmp_path / "warm.toml", "--preset", "mlp", "--csv", digits, "--epochs", 2,
                     "--train-size", 1000, "--trials", 2, "--workers", 1, "--out", tmp_path / "warm")
    assert done.returncode == 0, done.stderr
    note = r"Note: the doctor found \[[a-z-]+\] (error|warning).* in the best trial too \(scratchnn doctor \S+trials/"
    assert re.search(note + r"\d{4}\): the trials may all share it", done.stdout), done.stdout
    assert "narrow that range in a copy of" in " ".join(done.stdout.split())


def test_a_killed_sweep_resumes_without_repeating_trials(digits, tmp_path):
    (tmp_path / "space.toml").write_text(SPACE)
    out = tmp_path / "killed"
    slower = [*SMALL[:2], "--epochs", "12", *SMALL[4:]]  # long enough to be killed inside the fourth trial
    command = [sys.executable, "-m", "scratchnn", "sweep", "--space", str(tmp_path / "space.toml"), "--csv",
               str(digits), *slower, "--trials", "6", "--workers", "1", "--out", str(out)]
    sweep = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env(),
                             start_new_session=True)  # its own process group: the sweep and its Dask workers
    try:
        finished = 0
        for line in sweep.stdout:
            finished += line.startswith("Trial ")
            if finished == 3:
                break
        started = out / "trials" / "0003" / "train.log"  # the fourth trial is training: kill it there
        deadline = time.monotonic() + 60
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        os.killpg(sweep.pid, signal.SIGKILL)  # like a crash: nothing gets to clean up
        sweep.wait(timeout=30)
    before = {t.number: t for t in study_trials(out) if t.state == TrialState.COMPLETE}
    assert 3 <= len(before) < 6, "the kill came after 3 trials and before the last"
    from scratchnn.files import lock_held
    deadline = time.monotonic() + 30  # the killed worker reaped: a live holder's folder is left (lock_held)
    while any(lock_held(trial, "run.lock") for trial in (out / "trials").iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    done = scratchnn("sweep", "--resume", out)
    assert done.returncode == 0, done.stderr
    trials = study_trials(out)
    # a finished trial ran to its end or was pruned: once 4 trials are complete the median rule may stop one
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 6, [(t.number, t.state) for t in trials]
    for number, trial in before.items():  # kept as they were, not trained again
        again = next(t for t in finished if t.number == number)
        assert again.state == TrialState.COMPLETE
        assert (again.value, again.params, again.datetime_complete) == (trial.value, trial.params, trial.datetime_complete)
    assert len({tuple(sorted(t.params.items())) for t in finished}) == 6, "no trial repeated"
    lost = [t for t in trials if t.state == TrialState.FAIL]
    assert len(lost) == 1 and lost[0].user_attrs.get("interrupted")  # the one the kill cut short, asked again
    assert not (out / "trials" / f"{lost[0].number:04d}").exists()  # the disk audit: its half-trained folder stayed
    assert all(any(c.user_attrs.get("retry_of") == t.number for c in finished) for t in lost)
    assert len(trials) == 6 + len(lost)


def test_a_trial_below_the_median_is_pruned_in_its_worker(digits, tmp_path):
    """run_trial as a worker runs it, on any Optuna storage: 4 earlier trials at 0.9 per epoch,
    then a learning rate too small to learn is stopped after the second epoch."""
    import optuna

    from scratchnn.training.presets import get_preset
    from scratchnn.tune.study import STUDY_NAME, make_pruner
    from scratchnn.tune.trial import run_trial

    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(study_name=STUDY_NAME, storage=storage, direction="maximize", pruner=make_pruner())
    for _ in range(4):
        study.add_trial(optuna.trial.create_trial(value=0.9, intermediate_values={1: 0.9, 2: 0.9, 3: 0.9, 4: 0.9}))
    config = get_preset("mlp")
    config.csv, config.dev_size, config.epochs, config.hidden, config.lr = str(digits), 500, 4, [32], 1e-6
    trial = study.ask()
    outcome = run_trial(storage, STUDY_NAME, trial._trial_id, config.to_dict(), str(tmp_path / "trial"))
    assert outcome == {"state": "pruned", "reason": outcome["reason"], "findings": outcome["findings"]}
    assert outcome["reason"].startswith("pruned after epoch 2: dev accuracy")
    assert study.trials[-1].intermediate_values.keys() == {1, 2}
    assert "pruned after epoch 2" in (tmp_path / "trial" / "train.log").read_text()


def test_a_resume_cannot_lower_the_total_below_the_trials_done(sweep):
    """'--resume DIR --trials 1' printed '3 of 1 trials done' and saved the total (the sweep audit)."""
    out, _ = sweep
    before = (out / "sweep.json").read_text()
    done = scratchnn("sweep", "--resume", out, "--trials", 2, "--workers", 1)
    assert done.returncode == 1 and "--trials 2 is below the 6 trials this sweep has done" in done.stderr, done.stderr
    assert (out / "sweep.json").read_text() == before and not (out / "sweep.lock").exists()
