"""The TOML search space: what it accepts, and errors that name the line of the mistake."""
import json
import subprocess
import sys

import pytest

from scratchnn.errors import ConfigError
from scratchnn.training.presets import PRESETS, get_preset
from scratchnn.tune.space import DEFAULT_SPACES, parse_space

from sweep_support import env
from web_support import require


@pytest.mark.parametrize("text, expected", [
    ("lr = {low = 1e-4, high = 1e-1}\nlearning_rate = {low = 0.1, high = 1}\n", "line 2: unknown option 'learning_rate'"),
    ("lr = {low = 1e-4, high = 1e-1}\ndropuot = {low = 0, high = 0.5}\n", "line 2: unknown option 'dropuot'; did you mean 'dropout'?"),
    ("\n\nlr = {low = 0.1, high = 0.01}\n", "line 3: lr low 0.1 is above high 0.01"),
    ("lr = {low = 0, high = 0.1, log = true}\n", "line 1: lr log = true needs low > 0, got 0"),
    ("dropout = {low = 0, high = 1.0}\n", "line 1: --dropout must be in [0, 0.9999], got 1"),
    ("lr = {low = 1e-4, hihg = 0.1}\n", "hihg; did you mean 'high'?"),
    ("epochs = {low = 2, high = 5.5}\n", "epochs is an integer option; high must be an integer"),
    ("hidden = {low = 1, high = 5}\n", "hidden is not a number; search it with choices"),
    ("optimizer = {choices = [\"adamw\", \"adamm\"]}\n", "line 1: unknown optimizer 'adamm'"),
    ("hidden = {choices = [\"512,,256\"]}\n", "line 1: expected comma-separated integers"),
    # data is fixed for the whole sweep (the advice audit: it was an "unknown option")
    ("dataset = {choices = [\"mnist\"]}\n", "line 1: dataset cannot be searched: only the network, the optimisation "
                                            "and the training loop can; give it as --dataset to the sweep"),
    ("lr = 0.1\n", "line 1: lr must be a table"),
    ("lr = {low = 1e-4, high = " + "1" * 400 + "}\n", "lr high must be a finite number, got a 400-digit number"),
    ("lr = {low = 1e-4 high = 0.1}\n", "not valid TOML"),
    ("", "the search space is empty"),
])
def test_mistakes_are_errors_that_name_the_line(text, expected):
    with pytest.raises(ConfigError) as error:
        parse_space(text, "space.toml")
    assert expected in str(error.value), str(error.value)
    assert str(error.value).startswith("space.toml")


def test_a_space_suggests_values_that_the_config_takes():
    space = parse_space('lr = {low = 1e-3, high = 1e-1, log = true}\nhidden = {choices = ["64", "128,64"]}\n'
                        'batch_size = {choices = [64, 128]}\nepochs = {low = 2, high = 6, step = 2}\n')
    config = space.apply(get_preset("mlp"), {"lr": 0.01, "hidden": "128,64", "batch_size": 64, "epochs": 4})
    assert (config.lr, config.hidden, config.batch_size, config.epochs) == (0.01, [128, 64], 64, 4)
    assert [d.kind for d in space.dimensions] == ["float", "choice", "choice", "int"]


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_has_a_default_space_its_config_accepts(preset):
    space = parse_space(DEFAULT_SPACES[preset])
    base = get_preset(preset)
    for dimension in space.dimensions:  # both ends of every range, and every choice, make a valid config
        values = dimension.choices or (dimension.low, dimension.high)
        for value in values:
            value = int(value) if dimension.kind == "int" else value
            space.apply(base, {dimension.name: value})


def test_a_flag_that_fixes_a_searched_option_is_refused(tmp_path, capsys):
    (tmp_path / "space.toml").write_text("lr = {low = 1e-4, high = 1e-1, log = true}\n")
    from scratchnn.cli.main import main

    code = main(["sweep", "--space", str(tmp_path / "space.toml"), "--lr", "0.01", "--out", str(tmp_path / "s")])
    assert code == 1
    assert "--lr fixes what the search space searches (lr)" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("flag, value, words", [
    ("--trials", "0", "must be a whole number >= 1, got 0"), ("--trials", "-3", "must be a whole number >= 1"),
    ("--workers", "0", "must be a whole number >= 1, got 0"),
    # the fuzz audit: 10**30 went straight to LocalCluster(n_workers=10**30)
    ("--workers", "1" + "0" * 30, "must be at most"), ("--trials", "10000000", "must be at most 100,000"),
])
def test_a_sweep_of_no_trials_or_workers_is_refused_before_anything_is_made(tmp_path, capsys, flag, value, words):
    """--trials 0 fell through to the default and ran 20 trials (--workers 0: every core)."""
    require("optuna", "pip install -e '.[tune]'")
    from scratchnn.cli.main import main

    assert main(["sweep", flag, value, "--out", str(tmp_path / "s")]) == 1
    assert f"{flag} {words}" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_without_the_tune_extra_sweep_says_how_to_install_it(tmp_path):
    """The NumPy core and tune/ import without Optuna; the command names the extra to install."""
    code = ("import sys; sys.modules['optuna'] = None\n"
            "import scratchnn, scratchnn.tune, scratchnn.tune.space, scratchnn.cli.main as m\n"
            f"sys.exit(m.main(['sweep', '--out', {str(tmp_path / 's')!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env(), timeout=60)
    assert done.returncode == 1, done.stderr
    assert "install the tune extra: pip install 'scratchnn[tune]'" in done.stderr
    assert "optuna" in done.stderr


@pytest.mark.parametrize("name, content, message", [
    ("space.toml", b"lr = {low = 1e-4, high = 0.1}\n# \xe9\n", r"space.toml: not UTF-8 text \(byte 32\)"),
    ("space.toml", "folder", "space.toml: a folder, not a file; give a search space"),
    ("sweep.json", b"{" * (70 * 1024), "sweep.json: over 64 KiB, too big for the sweep's settings"),
])
def test_a_damaged_sweep_folder_is_one_line(tmp_path, name, content, message):
    """read_sweep_folder reads its files bounded, and a folder or bad bytes where a file should
    be is a ConfigError naming it (before: a traceback from read_text)."""
    require("optuna", "pip install -e '.[tune]'")
    from scratchnn.tune.study import read_sweep_folder

    (tmp_path / "sweep.json").write_text('{"trials": 2, "storage": "study.log", "seed": 0}')
    (tmp_path / "space.toml").write_text("lr = {low = 1e-4, high = 0.1}\n")
    if content == "folder":
        (tmp_path / name).unlink()
        (tmp_path / name).mkdir()
    else:
        (tmp_path / name).write_bytes(content)
    with pytest.raises(ConfigError, match=message) as raised:
        read_sweep_folder(tmp_path)
    assert "\n" not in str(raised.value)


def test_a_seed_the_sampler_cannot_take_is_refused_before_anything_is_made(tmp_path, capsys):
    """--seed 5000000000 crashed in Optuna (ValueError: Seed must be between 0 and 2**32 - 1) after the
    sweep folder was made."""
    require("optuna", "pip install -e '.[tune]'")
    from scratchnn.cli.main import main

    assert main(["sweep", "--seed", "5000000000", "--out", str(tmp_path / "s")]) == 1
    error = capsys.readouterr().err
    assert "--seed must be between 0 and 2**32 - 1 (4294967295) for a sweep, got 5000000000" in error
    assert not (tmp_path / "s").exists()


def test_the_sampler_seed_stays_in_range_so_a_sweep_of_the_highest_seed_resumes(tmp_path):
    """A resumed sweep seeds TPE with seed + trials asked: 4294967295 + 1 was out of NumPy's range."""
    require("optuna", "pip install -e '.[tune]'")
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from scratchnn.tune.study import MAX_SEED, open_study, sampler_seed

    storage = JournalStorage(JournalFileBackend(str(tmp_path / "study.log")))
    open_study(storage, MAX_SEED, create=True).ask()
    open_study(storage, MAX_SEED).ask()  # raised ValueError: Seed must be between 0 and 2**32 - 1
    assert sampler_seed(MAX_SEED, 1) == 0 and sampler_seed(5, 2) == 7


def test_a_sweep_cut_short_and_resumed_proposes_what_it_would_have_proposed_uninterrupted(tmp_path):
    """The resume audit: seeded once at the start, a resumed sweep (seed + trials asked) repeated
    the lost trial and then went its own way: another best, even with one worker."""
    require("optuna", "pip install -e '.[tune]'")
    import math

    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from optuna.trial import TrialState

    from scratchnn.tune.study import INTERRUPTED, open_study, recover_interrupted, reseed_for_next_trial

    def score(params):  # a smooth landscape: TPE's proposals follow what it was told
        return -(math.log10(params["lr"]) + 2) ** 2 - (params["momentum"] - 0.5) ** 2

    def run(study, trials, cut_at=None):
        for _ in range(trials):
            reseed_for_next_trial(study, 7)
            trial = study.ask({"lr": optuna.distributions.FloatDistribution(1e-4, 1, log=True),
                               "momentum": optuna.distributions.FloatDistribution(0, 0.99)})
            if trial.number == cut_at:
                return  # killed while it ran: left RUNNING
            study.tell(trial, score(trial.params))

    import optuna

    def storage(name):
        return JournalStorage(JournalFileBackend(str(tmp_path / name)))

    whole = open_study(storage("whole.log"), 7, create=True)
    run(whole, 14)
    cut = open_study(storage("cut.log"), 7, create=True)
    run(cut, 14, cut_at=11)  # past TPE's 10 random start-up trials: its model's proposals are compared too
    resumed = open_study(storage("cut.log"), 7)
    assert recover_interrupted(resumed) == [11]
    run(resumed, 14 - 11)
    kept = [t.params for t in resumed.get_trials() if not t.user_attrs.get(INTERRUPTED)]
    assert kept == [t.params for t in whole.get_trials()]
    assert [t.state for t in resumed.get_trials()].count(TrialState.FAIL) == 1


def test_a_resumed_sweep_runs_as_many_workers_as_it_started_with(tmp_path, monkeypatch, capsys):
    """The resume audit: a sweep started with --workers 1 resumed with the core count, which the
    README says no longer repeats its trials."""
    require("optuna", "pip install -e '.[tune]'")
    import contextlib

    from scratchnn.cli.main import main
    from scratchnn.host.resources import usable_cores
    from scratchnn.tune import parallel, sweep
    from scratchnn.tune.study import read_sweep_folder
    from scratchnn.tune.sweep import start_sweep

    base = get_preset("seed")
    base.csv = str(tmp_path / "digits.csv")
    (tmp_path / "digits.csv").write_text("label," + ",".join(f"pixel{i}" for i in range(784)) + "\n"
                                         + "".join(f"{k % 10}," + ",".join(["0"] * 784) + "\n" for k in range(20)))
    space = parse_space("lr = {low = 1e-4, high = 0.1}\n")
    (tmp_path / "space.toml").write_text("lr = {low = 1e-4, high = 0.1}\n")
    for given in (1, None):  # None: a sweep.json an older scratchnn wrote
        folder = tmp_path / f"sweep-{given}"
        start_sweep(folder, space, base, 4, workers=given)
        assert read_sweep_folder(folder).workers == given
        asked = []

        @contextlib.contextmanager
        def client(workers, scheduler, log):
            asked.append(workers)
            raise ConfigError("no cluster in this test")
            yield

        monkeypatch.setattr(parallel, "dask_client", client)
        assert main(["sweep", "--resume", str(folder)]) == 1
        assert main(["sweep", "--resume", str(folder), "--workers", "2"]) == 1
        assert asked == [1 if given else usable_cores(), 2]
        older = "Note: sweep.json does not say how many trials ran at once (an older scratchnn wrote it)"
        assert (older in capsys.readouterr().out) == (given is None)
    started = []
    monkeypatch.setattr(sweep, "start_sweep", lambda *args: started.append(args[-1]) or start_sweep(*args))
    assert main(["sweep", "--out", str(tmp_path / "new"), "--csv", base.csv, "--preset", "seed", "--trials", "2",
                 "--space", str(tmp_path / "space.toml")]) == 1  # no cluster here either
    assert started == [usable_cores()]  # the count it runs: a resume runs it again


def _sweep_folder(path, **settings):
    path.mkdir(exist_ok=True)
    (path / "sweep.json").write_text(json.dumps({"trials": 2, "storage": "", "seed": 0, **settings}))
    (path / "space.toml").write_text("lr = {low = 1e-4, high = 0.1}\n")
    get_preset("seed").save(path / "base.toml")
    return path


@pytest.mark.parametrize("settings, message", [
    ({"trials": 2.9}, "trials must be a whole number >= 1, got 2.9"),  # was read as 2
    ({"trials": True}, "trials must be a whole number >= 1, got True"),
    ({"trials": 0}, "trials must be a whole number >= 1, got 0"),
    ({"workers": 0}, "workers must be a whole number >= 1 or null, got 0"),
    ({"workers": "2"}, "workers must be a whole number >= 1 or null, got 2"),
    ({"seed": 10**30}, "seed must be a whole number from 0 to 2**32 - 1, got 1000000000000000000000000000000"),
    ({"seed": 1e30}, "seed must be a whole number from 0 to 2**32 - 1, got 1e+30"),
    ({"seed": -1}, "seed must be a whole number from 0 to 2**32 - 1, got -1"),
    ({"storage": 5}, "storage and study must be text"),
])
def test_a_sweep_json_value_of_the_wrong_kind_is_a_damaged_file(tmp_path, settings, message):
    require("optuna", "pip install -e '.[tune]'")
    from scratchnn.tune.study import read_sweep_folder

    folder = _sweep_folder(tmp_path / "s", **settings)
    with pytest.raises(ConfigError) as raised:
        read_sweep_folder(folder)
    assert str(raised.value) == f"{folder / 'sweep.json'}: unreadable sweep settings ({message}); start a new sweep"


def test_a_sqlite_storage_read_from_sweep_json_is_never_created(tmp_path):
    """A sweep.json naming sqlite:////any/path/x.db made --resume create (or fill an empty) database there."""
    require("optuna", "pip install -e '.[tune]'")
    import optuna

    from scratchnn.tune.study import read_sweep_folder

    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    for database in (tmp_path / "none.db", empty):
        folder = _sweep_folder(tmp_path / "s", storage=f"sqlite:///{database}")
        with pytest.raises(ConfigError, match=rf"the sweep's storage sqlite:///{database} does not exist or is "
                                              "empty, so it holds no study: put its database back there"):
            read_sweep_folder(folder)
    assert not (tmp_path / "none.db").exists() and empty.stat().st_size == 0
    remote = read_sweep_folder(folder, storage_here=False)  # --scheduler: the file is on the scheduler's machine
    assert remote.storage_url == f"sqlite:///{empty}"
    made = f"sqlite:///{tmp_path / 'made.db'}"
    optuna.create_study(study_name="sweep", storage=made)  # a database the sweep made: resumed as before
    assert read_sweep_folder(_sweep_folder(tmp_path / "s", storage=made)).storage_url == made
    for url in ("postgresql://sweeps@db.example/optuna", "not a url"):  # servers' databases; Optuna refuses the rest
        assert read_sweep_folder(_sweep_folder(tmp_path / "s", storage=url)).storage_url == url


def test_a_resumed_sweep_removes_only_half_trained_folders_no_one_holds(tmp_path):
    """The disk audit and the reviews: a re-asked trial's half-trained folder stayed for good; one with a
    model, or one a live worker of a cluster that outlived the sweep still trains, must stay."""
    import os
    import socket

    from scratchnn.tune.sweep import remove_half_trained

    half, done, held = (tmp_path / name for name in ("0003", "0004", "0005"))
    for trial in (half, done, held):
        trial.mkdir()
        (trial / "checkpoint.safetensors").write_bytes(b"x")
    (done / "model.safetensors").write_bytes(b"x")
    (held / "run.lock").write_text(f"{os.getppid()} {socket.gethostname()}\n")
    remove_half_trained([half, done, held, tmp_path / "0009"])
    assert not half.exists() and done.exists() and held.exists()
