"""``scratchnn train --seeds 0,1,2``: ensemble members trained one after another into one folder."""
import numpy as np
import pytest

from scratchnn.cli.main import main
from scratchnn.data.kaggle_write import write_kaggle_csv
from scratchnn.errors import ConfigError
from scratchnn.io import load, read_metadata


@pytest.fixture
def digits_csv(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 300)
    images = (rng.random((300, 28, 28)) * 60 + labels[:, None, None] * 19).astype(np.uint8)
    return write_kaggle_csv(tmp_path / "digits.csv", images, labels)


def test_each_seed_trains_a_member_run_folder(tmp_path, digits_csv, capsys):
    out = tmp_path / "ensemble"
    code = main(["train", "--seeds", "0,3", "--hidden", "8", "--epochs", "1", "--batch-size", "64", "--dev-size", "50",
                 "--csv", str(digits_csv), "--out", str(out), "--no-report"])
    assert code == 0
    members = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert members == ["seed-0", "seed-3"] and (out / "ensemble.toml").read_text().startswith("seeds = [0, 3]\n")
    assert [read_metadata(out / m)["config"]["seed"] for m in members] == [0, 3]
    w0, w3 = (next(layer.params["W"] for layer in load(out / m).layers if layer.params) for m in members)
    assert not np.array_equal(w0, w3)
    assert f"scratchnn evaluate {out}" in capsys.readouterr().out
    assert [read_metadata(out / m)["config"]["split_seed"] for m in members] == [0, 0]  # one dev set
    assert main(["evaluate", str(out)]) == 0  # the folder is an ensemble; its members agree on the dev set
    assert "ensemble" in capsys.readouterr().out.lower()
    # the compatibility audit: explain, load and a resume of the folder said "no such model file" and
    # "not a run folder (no config.toml)" (the latter for a folder from before ensemble.toml)
    assert main(["explain", str(out), "--index", "0"]) == 1
    assert (f"{out} holds the runs seed-0, seed-3 (train --seeds), not one model: give one of them "
            f"({out / 'seed-0'}); evaluate, predict and serve also take the folder") in capsys.readouterr().err
    (out / "ensemble.toml").unlink()
    assert main(["train", "--resume", str(out)]) == 1
    assert "without the ensemble.toml that lists its seeds (an older version wrote it): each has finished, so " \
           "there is nothing to resume" in capsys.readouterr().err
    (out / "seed-3" / "model.safetensors").unlink()
    assert main(["train", "--resume", str(out)]) == 1
    assert f"resume each that stopped: scratchnn train --resume {out / 'seed-3'}" in capsys.readouterr().err


def test_the_data_notes_of_an_ensemble_are_said_once_not_once_a_member(tmp_path, capsys, monkeypatch):
    """The members share the data: a note on it (here dark digits on a light page) came once a member;
    and so on --resume of the ensemble."""
    from scratchnn.errors import RunInterrupted
    from scratchnn.training import ensemble_run

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 300)
    images = 255 - (rng.random((300, 28, 28)) * 60 + labels[:, None, None] * 19).astype(np.uint8)
    scans = write_kaggle_csv(tmp_path / "scans.csv", images, labels)
    flags = ["--hidden", "8", "--epochs", "1", "--batch-size", "64", "--dev-size", "50", "--csv", str(scans),
             "--no-report"]

    def said() -> list[str]:
        out, err = capsys.readouterr()
        return (out + err).splitlines()

    def light(lines):
        return [line for line in lines if line.startswith("Note: ") and "light" in line]

    assert main(["train", "--seeds", "0,1,2", "--out", str(tmp_path / "e"), *flags]) == 0
    lines = said()
    assert len(light(lines)) == 1 and sum(line.startswith("Ensemble member seed") for line in lines) == 3, lines
    real_train_run = ensemble_run.train_run

    def interrupted_at_the_first(config, run_dir, **kwargs):
        raise RunInterrupted(run_dir)

    monkeypatch.setattr(ensemble_run, "train_run", interrupted_at_the_first)
    assert main(["train", "--seeds", "0,1,2", "--out", str(tmp_path / "resumed"), *flags]) == 130
    monkeypatch.setattr(ensemble_run, "train_run", real_train_run)
    said()
    assert main(["train", "--resume", str(tmp_path / "resumed")]) == 0
    assert len(light(said())) == 1


def test_an_interrupted_ensemble_is_completed_by_resume_as_if_never_stopped(tmp_path, digits_csv, capsys,
                                                                             monkeypatch):
    """The CLI audit: Ctrl+C during seed-1 of --seeds 0,1,2 left an ensemble that could not be
    completed (--resume of the folder: 'not a run folder'), and evaluate scored 2 members as the ensemble."""
    from scratchnn.errors import RunInterrupted
    from scratchnn.io import read_tensors
    from scratchnn.training import ensemble_run

    flags = ["--hidden", "8", "--epochs", "2", "--batch-size", "64", "--dev-size", "50", "--csv", str(digits_csv),
             "--no-report", "--quiet"]
    assert main(["train", "--seeds", "0,1,2", "--out", str(tmp_path / "whole"), *flags]) == 0
    real_train_run, calls = ensemble_run.train_run, []

    def interrupted_at_the_second(config, run_dir, **kwargs):
        calls.append(run_dir)
        if len(calls) == 2:
            raise RunInterrupted(run_dir)
        return real_train_run(config, run_dir, **kwargs)

    monkeypatch.setattr(ensemble_run, "train_run", interrupted_at_the_second)
    stopped = tmp_path / "stopped"
    capsys.readouterr()
    assert main(["train", "--seeds", "0,1,2", "--out", str(stopped), *flags]) == 130
    assert f"continue with 'scratchnn train --resume {stopped} --no-report'" in capsys.readouterr().err  # as begun
    monkeypatch.setattr(ensemble_run, "train_run", real_train_run)
    assert main(["evaluate", str(stopped)]) == 1
    assert "the ensemble's members seed-1, seed-2 were never trained; complete it with 'scratchnn train --resume" \
           in capsys.readouterr().err
    assert main(["train", "--resume", str(stopped), "--quiet"]) == 0
    for seed in (0, 1, 2):
        made, whole = (read_tensors(folder / f"seed-{seed}" / "model.safetensors")[0]
                       for folder in (stopped, tmp_path / "whole"))
        assert made.keys() == whole.keys() and all(np.array_equal(made[k], whole[k]) for k in made)
    assert main(["train", "--resume", str(stopped), "--no-report"]) == 0  # all finished: nothing to do

    assert "Ensemble member seed 2: finished" in capsys.readouterr().out
    from scratchnn.insight import report  # a member stopped while its report was drawn gets it drawn, untrained

    drawn, real_write_report = [], report.write_report
    monkeypatch.setattr(report, "write_report", lambda run, log: drawn.append(run) or (run / "report.html").touch())
    for seed in (0, 2):
        (stopped / f"seed-{seed}" / "report.html").unlink()
    assert main(["train", "--resume", str(stopped)]) == 0
    said = capsys.readouterr().out
    assert drawn == [stopped / "seed-0", stopped / "seed-2"] and "Epoch" not in said
    assert "Ensemble member seed 1: finished" in said and "writing its missing report" in said
    assert main(["train", "--seeds", "0,1,2", "--out", str(stopped), *flags]) == 1
    # the advice audit: a finished one was told --resume, which trains nothing
    assert (f"{stopped} already holds a finished ensemble; choose another --out (a new one of its settings: scratchnn "
            f"train --config {stopped / 'seed-0' / 'config.toml'} --seeds 0,1,2 --out NEW)") in capsys.readouterr().err
    # the ensemble audit: Ctrl+C before the first member saved its config left a folder no command would continue
    monkeypatch.setattr(ensemble_run, "train_run", interrupted_at_the_second)
    calls[:] = [None]
    early = tmp_path / "early"
    assert main(["train", "--seeds", "0,1,2", "--out", str(early), *flags]) == 130
    monkeypatch.setattr(ensemble_run, "train_run", real_train_run)
    monkeypatch.setattr(report, "write_report", real_write_report)
    capsys.readouterr()
    for command in (["report", str(early)], ["explain", str(early), "--index", "0"]):  # the crash audit: "not a
        assert main(command) == 1  # run folder (no model.safetensors)", "no such model file"
        assert capsys.readouterr().err.endswith(f"{early}: an ensemble (train --seeds) none of whose members has "
                                                f"finished; complete it with 'scratchnn train --resume {early}'\n")
    assert main(["train", "--resume", str(early), "--quiet", "--no-report"]) == 0
    made, whole = (read_tensors(folder / "seed-2" / "model.safetensors")[0] for folder in (early, tmp_path / "whole"))
    assert all(np.array_equal(made[k], whole[k]) for k in whole)


def test_a_member_left_unfinished_is_finished_by_resuming_its_ensemble(tmp_path, capsys, monkeypatch):
    """evaluate and report of an interrupted member said to resume the member, which left the
    members after it untrained (the combinations audit, left open then)."""
    from scratchnn.insight.report import write_report

    member = tmp_path / "ens" / "seed-1"
    member.mkdir(parents=True)
    (tmp_path / "ens" / "ensemble.toml").write_text("seeds = [0, 1, 2]\n")
    (member / "config.toml").write_text("")
    (member / "checkpoint.safetensors").write_bytes(b"")
    assert main(["evaluate", str(member)]) == 1
    assert f"complete it with 'scratchnn train --resume {tmp_path / 'ens'}'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match=f"complete it with 'scratchnn train --resume {tmp_path / 'ens'}'"):
        write_report(member)
    monkeypatch.chdir(member)  # the member's folder given as "."
    with pytest.raises(ConfigError, match=f"complete it with 'scratchnn train --resume {tmp_path / 'ens'}'"):
        write_report(".")


def test_runs_and_ensembles_do_not_share_a_folder(tmp_path, digits_csv, capsys):
    """The ensemble and config audits: --seeds into a folder of other runs made evaluate average 4 'members' (an
    old cnn among them) where ensemble.toml said 2; a single run into an ensemble's folder became what evaluate
    read; and the report's figures wrote over a user's mistakes.png in --out."""
    flags = ["--hidden", "8", "--epochs", "1", "--batch-size", "64", "--dev-size", "50", "--csv", str(digits_csv),
             "--no-report", "--quiet"]
    single, ensemble = tmp_path / "single", tmp_path / "ensemble"
    assert main(["train", "--seed", "5", "--out", str(single), *flags]) == 0
    assert main(["train", "--seeds", "0,1", "--out", str(ensemble), *flags]) == 0
    capsys.readouterr()
    for argv, said in ((["--seeds", "0,1", "--out", str(single)], f"{single} already holds a run (the folder itself)"),
                       (["--seeds", "0,1", "--out", str(tmp_path)], "already holds a run (single)"),
                       (["--seed", "2", "--out", str(ensemble)], "already holds ensemble.toml"),
                       (["--seed", "5", "--out", str(single)], f"{single} already holds a finished run; choose another "
                        f"--out (a new run of its settings: scratchnn train --config {single / 'config.toml'} "
                        "--out NEW)")):
        assert main(["train", *argv, *flags]) == 1
        assert said in capsys.readouterr().err
    assert main(["train", "--config", str(single / "config.toml"), "--out", str(tmp_path / "new"), "--no-report"]) == 0
    assert main(["evaluate", str(ensemble / "ensemble.toml")]) == 1  # the review: read as a safetensors header
    assert f"ensemble.toml is a file of the run folder {ensemble}, not a model file" in capsys.readouterr().err
    (ensemble / "stray").mkdir()  # a run put beside the members is not one of them
    assert main(["train", "--seed", "9", "--out", str(ensemble / "stray"), *flags]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(ensemble), "--json"]) == 0
    assert "stray" not in capsys.readouterr().out
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "mistakes.png").write_bytes(b"my own")
    assert main(["train", "--out", str(mine), *flags]) == 1
    assert "already holds mistakes.png" in capsys.readouterr().err and (mine / "mistakes.png").read_bytes() == b"my own"


@pytest.mark.parametrize("seeds, message", [
    ("1", "two or more different seeds"),
    ("1,1", "two or more different seeds"),
    ("a,b", "comma-separated seeds"),
])
def test_bad_seeds_are_refused_by_the_parser(tmp_path, digits_csv, capsys, seeds, message):
    with pytest.raises(SystemExit):
        main(["train", "--seeds", seeds, "--csv", str(digits_csv), "--out", str(tmp_path / "x")])
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_print_config_with_seeds_is_refused_not_printed_as_seed_0(capsys):
    """The combinations audit: train --seeds 3,4 --print-config printed seed = 0, the seeds gone without a word."""
    assert main(["train", "--seeds", "3,4", "--print-config"]) == 1
    out, err = capsys.readouterr()
    assert not out and "--print-config prints one run's config, and --seeds is not a setting of it" in err


def test_seed_and_seeds_together_is_a_one_line_error(tmp_path, digits_csv, capsys):
    code = main(["train", "--seeds", "0,1", "--seed", "4", "--csv", str(digits_csv), "--out", str(tmp_path / "x")])
    assert code == 1 and "--seed for one run or --seeds for an ensemble, not both" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_train_size_trains_on_the_first_images_of_the_split_and_evaluate_replays_it(tmp_path, digits_csv, capsys):
    out = tmp_path / "small"
    assert main(["train", "--train-size", "120", "--hidden", "8", "--epochs", "1", "--batch-size", "64",
                 "--dev-size", "50", "--csv", str(digits_csv), "--out", str(out), "--no-report"]) == 0
    assert "(120 train / 50 dev)" in capsys.readouterr().out
    assert read_metadata(out)["metrics"]["train_samples"] == 120
    assert main(["evaluate", str(out), "--set", "train"]) == 0
    assert "120" in capsys.readouterr().out


def test_threads_limits_the_blas_threads_while_training_and_only_then(tmp_path, digits_csv):
    from threadpoolctl import threadpool_info

    from scratchnn.training.config import TrainConfig
    from scratchnn.training.run import train_run

    def blas_threads() -> set[int]:
        return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}

    before, seen = blas_threads(), []
    config = TrainConfig(hidden=[8], epochs=2, batch_size=64, dev_size=50, eval_every=1, csv=str(digits_csv),
                         threads=1)
    train_run(config, tmp_path / "run", log=lambda line: None, progress=False,
              on_evaluation=lambda result: seen.append(blas_threads()))
    assert seen == [{1}, {1}]
    assert blas_threads() == before
    assert "threads = 1\n" in (tmp_path / "run" / "config.toml").read_text()


def test_an_ensemble_without_dev_images_or_checkpoints_is_told_what_it_has(tmp_path, digits_csv, capsys, monkeypatch):
    """The combinations audit: --seeds with --dev-size 0 ended on 'scratchnn evaluate ENS' (an empty dev set)
    and --quiet printed 'dev accuracy nan'; Ctrl+C with --checkpoint-every 0 'kept its last checkpoint'."""
    from scratchnn.training import ensemble_run

    flags = ["--hidden", "8", "--epochs", "1", "--batch-size", "64", "--csv", str(digits_csv), "--no-report"]
    ensemble = tmp_path / "ensemble"
    assert main(["train", "--seeds", "0,1", "--dev-size", "0", "--out", str(ensemble), *flags]) == 0
    assert capsys.readouterr().out.endswith(f"scratchnn evaluate {ensemble} --set train\n")
    assert main(["train", "--resume", str(ensemble), "--no-report"]) == 0  # the review: all finished, no results
    assert capsys.readouterr().out.endswith(f"scratchnn evaluate {ensemble} --set train\n")
    quiet = ["--seeds", "0,1", "--dev-size", "0", "--out", str(tmp_path / "quiet"), "--quiet"]
    assert main(["train", *quiet, *flags]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all(line.startswith("no dev set (--dev-size 0), train accuracy 0.") for line in lines) and len(lines) == 2
    real_train_run = ensemble_run.train_run

    def interrupted_at_the_second(config, run_dir, **kwargs):
        if run_dir.name == "seed-1":
            raise KeyboardInterrupt
        return real_train_run(config, run_dir, **kwargs)

    monkeypatch.setattr(ensemble_run, "train_run", interrupted_at_the_second)
    stopped = tmp_path / "stopped"
    assert main(["train", "--seeds", "0,1", "--checkpoint-every", "0", "--dev-size", "50", "--out", str(stopped),
                 *flags]) == 130
    assert (f"the run folder {stopped} has no checkpoint to go on from (--checkpoint-every 0, or stopped in its "
            f"first epoch); 'scratchnn train --resume {stopped} --no-report' starts it over (its finished members are "
            "kept: seed-0)") in capsys.readouterr().err  # the review: not the whole ensemble over again


def test_a_sweep_without_a_dev_set_is_refused_before_any_trial(tmp_path, digits_csv, capsys):
    """The combinations audit: sweep --dev-size 0 trained every trial, then called each 'failed: unknown reason'."""
    assert main(["sweep", "--preset", "mlp", "--csv", str(digits_csv), "--dev-size", "0",
                 "--out", str(tmp_path / "sweep")]) == 1
    assert capsys.readouterr().err.endswith("a sweep scores each trial on the dev set, and --dev-size 0 holds none "
                                            "out; give --dev-size N (the default 1000), and train the best settings "
                                            "on every image after\n")
    assert not (tmp_path / "sweep").exists()


def test_members_never_started_train_with_the_ensembles_config_on_its_data(tmp_path, digits_csv, capsys):
    """The combinations audit: resumed, the members never started trained with a finished member's
    edited config.toml (784-64-10 beside 784-32-10), and on a data file changed since, unchecked."""
    import shutil

    flags = ["--hidden", "8", "--epochs", "1", "--batch-size", "64", "--dev-size", "50", "--csv", str(digits_csv),
             "--no-report", "--quiet"]
    whole, ensemble = tmp_path / "whole", tmp_path / "ensemble"
    assert main(["train", "--seeds", "0,1,2", "--out", str(whole), *flags]) == 0
    shutil.copytree(whole, ensemble)
    for seed in (1, 2):  # as an ensemble stopped between members leaves it
        shutil.rmtree(ensemble / f"seed-{seed}")
    config = ensemble / "seed-0" / "config.toml"
    config.write_text(config.read_text().replace("hidden = [8]", "hidden = [64]"))
    assert main(["train", "--resume", str(ensemble), "--quiet", "--no-report"]) == 0
    for seed in (1, 2):
        made, expected = (load(folder / f"seed-{seed}").state_dict() for folder in (ensemble, whole))
        assert all(np.array_equal(made[k], expected[k]) for k in expected)  # 8 units, as the ensemble began
    shutil.rmtree(ensemble / "seed-2")
    digits_csv.write_text(digits_csv.read_text().replace("\n1,", "\n2,", 1))  # one label changed
    capsys.readouterr()
    assert main(["train", "--resume", str(ensemble), "--quiet", "--no-report"]) == 1
    assert f"the run was trained on {digits_csv} (sha256 " in capsys.readouterr().err
    assert not (ensemble / "seed-2").exists()


def test_resuming_a_run_stopped_by_stop_or_a_time_limit_says_where_it_stopped(tmp_path, digits_csv, capsys):
    """The combinations audit: a page run the server's time limit stopped at epoch 10 of 60 was 'already
    finished' to train --resume, while the doctor said it stopped at epoch 10 of 60."""
    from scratchnn.training.config import TrainConfig
    from scratchnn.training.run import train_run

    asked = []
    config = TrainConfig(hidden=[8], epochs=5, batch_size=64, dev_size=50, csv=str(digits_csv))
    train_run(config, tmp_path / "run", log=lambda line: None, progress=False,
              stop_requested=lambda: asked.append(1) or len(asked) > 8)  # in its second epoch, or so
    assert main(["train", "--resume", str(tmp_path / "run"), "--no-report"]) == 0
    err = capsys.readouterr().err
    assert "the run had already finished (it stopped at epoch " in err and " of 5: Stop or a time limit; its model " \
           "keeps the weights it had then); nothing to train" in err, err


def test_a_sweeps_folder_given_for_a_run_points_into_it(tmp_path, capsys):
    """The combinations audit: evaluate and doctor of a sweep's folder said 'no such model file' and
    'not a run folder', with no word of its trials or best.toml."""
    sweep = tmp_path / "sweep"
    (sweep / "trials" / "0000").mkdir(parents=True)
    (sweep / "sweep.json").write_text("{}\n")
    for command in (["evaluate", str(sweep)], ["doctor", str(sweep)], ["predict", str(sweep), "--index", "0"]):
        assert main(command) == 1
        assert (f"{sweep} is a sweep's folder, not a run: its trials are run folders in {sweep}/trials/ (give one), "
                "best.toml their best settings") in capsys.readouterr().err, command


def test_an_ensemble_the_doctor_stopped_is_not_told_to_resume(tmp_path, digits_csv, capsys):
    """The combinations audit: evaluate, predict and serve of an ensemble --doctor strict stopped said
    'complete it with scratchnn train --resume', which stopped again with exit 3."""
    stopped = tmp_path / "stopped"
    assert main(["train", "--preset", "seed", "--csv", str(digits_csv), "--dev-size", "50", "--epochs", "60",
                 "--fault", "zero-init", "--doctor", "strict", "--seeds", "0,1", "--out", str(stopped)]) == 3
    capsys.readouterr()
    for command in (["evaluate", str(stopped)], ["predict", str(stopped), "--index", "0"]):
        assert main(command) == 1
        assert capsys.readouterr().err.endswith(
            f"{stopped}: --doctor strict stopped the ensemble's member seed-0, and would again on --resume: "
            f"'scratchnn doctor {stopped / 'seed-0'}' says what to change, then train anew\n"), command


def test_resuming_a_run_early_stopping_ended_says_its_best_weights_were_kept(tmp_path, digits_csv, capsys):
    """The review: 'its model keeps the weights it had then' for early stopping, which restores the best."""
    from scratchnn.training.config import TrainConfig
    from scratchnn.training.run import train_run

    config = TrainConfig(hidden=[8], epochs=40, batch_size=16, dev_size=50, patience=1, lr=0.3, csv=str(digits_csv))
    result = train_run(config, tmp_path / "run", log=lambda line: None, progress=False)
    assert result.metrics["epochs"] < 40, "the dev loss never rose: no early stopping to word"
    assert main(["train", "--resume", str(tmp_path / "run"), "--no-report"]) == 0
    err = capsys.readouterr().err
    assert f"already finished (early stopping at epoch {result.metrics['epochs']} of 40 kept the weights of its " \
           "best, " in err, err
    asked = []  # the review: Stop with --patience set was called early stopping (it keeps the best weights too)
    config = TrainConfig(hidden=[8], epochs=40, batch_size=16, dev_size=50, patience=100, csv=str(digits_csv))
    train_run(config, tmp_path / "stopped", log=lambda line: None, progress=False,
              stop_requested=lambda: asked.append(1) or len(asked) > 40)
    assert main(["train", "--resume", str(tmp_path / "stopped"), "--no-report"]) == 0
    err = capsys.readouterr().err
    assert ": Stop or a time limit; its model keeps the weights of its best, " in err, err
