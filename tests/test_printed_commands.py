"""Commands scratchnn prints for the user to paste, with awkward folder names (the paths audit:
98 of ~150 printed commands broke on a space, a quote, ';', '$', a backtick or a leading '-';
'scratchnn train --resume runs/a;b run' ran b). Each is checked the way a shell reads it."""
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scratchnn.cli.main import main
from scratchnn.data.kaggle_write import write_kaggle_csv
from scratchnn.doctor.findings import Finding
from scratchnn.doctor.show import finding_lines
from scratchnn.errors import RunInterrupted, RunNotSaved, one_line, os_error_message, shell_word

AWKWARD = ["run one", "it's run", 'say "hi" run', "$HOME run", "a;b run", "star* run", "-dash run", "café 中文 🙂",
           "tick`id`run", "p(a)r&n", "new\nline run", "line\u2028sep\x85next"]


@pytest.mark.parametrize("name", AWKWARD)
def test_a_quoted_word_reads_back_as_itself_in_a_shell(name, tmp_path):
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash here")
    word = shell_word(f"runs/{name}")
    said = subprocess.run([bash, "-c", f"printf '%s' {word}"], capture_output=True, cwd=tmp_path)
    assert said.returncode == 0 and said.stdout.decode("utf-8") == f"runs/{name}", (word, said)
    assert "\n" not in word  # one line, even for a newline in the name
    assert shell_word("-d") == "./-d" and shell_word(name).lstrip("'$").startswith("./") == name.startswith("-")


@pytest.mark.parametrize("name", ["run one", "a;b run", "it's run", "$HOME run"])
def test_the_resume_command_of_a_stopped_run_reads_back_as_its_folder(name):
    folder = Path("runs") / name
    for message in (str(RunInterrupted(folder, flags=" --no-report")),
                    str(RunNotSaved(OSError(28, "No space left on device", str(folder / "x")), folder))):
        command = message[message.index("'scratchnn train") + 1:message.rindex("'")]
        assert shlex.split(command)[:4] == ["scratchnn", "train", "--resume", str(folder)], message


def test_a_dumb_terminal_gets_no_colours(monkeypatch):
    """TERM=dumb (Emacs' shell, some CI logs) showed '^[[31m[symmetric-units] error^[[0m' (the locale audit)."""
    finding = Finding("lr-too-high", "warning", 3, "steps too big", "why", "--lr 0.01")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert "\033[" in finding_lines(finding, color=True)[0]
    monkeypatch.setenv("TERM", "dumb")
    assert finding_lines(finding, color=True)[0] == finding.line()


def test_a_message_names_a_file_as_it_is_on_one_line():
    """The paths audit: 'runs/two  spaces<newline>nl' was printed as 'runs/two spaces nl', a path that does
    not exist."""
    name = "runs/two  spaces\nnl's/checkpoint.safetensors"
    said = os_error_message(OSError(27, "File too large", name))
    assert said == "runs/two  spaces\\nnl's/checkpoint.safetensors: File too large" and "\n" not in said
    assert one_line("a\tb") == "a\\tb"


def test_a_finished_run_and_an_ensembles_commands_read_back_in_a_shell(tmp_path, capsys):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 200)
    images = (rng.random((200, 28, 28)) * 60 + labels[:, None, None] * 19).astype(np.uint8)
    csv = write_kaggle_csv(tmp_path / "digits.csv", images, labels)
    flags = ["--hidden", "8", "--epochs", "1", "--batch-size", "64", "--dev-size", "50", "--csv", str(csv),
             "--no-report", "--quiet"]
    run = tmp_path / "a;b run"
    assert main(["train", "--out", str(run), *flags]) == 0
    capsys.readouterr()
    assert main(["train", "--out", str(run), *flags]) == 1
    err = capsys.readouterr().err
    words = shlex.split(err[err.index("scratchnn train --config"):].split(" --out NEW")[0])
    assert words == ["scratchnn", "train", "--config", str(run / "config.toml")], err
    ensemble = tmp_path / "it's ens"
    assert main(["train", "--seeds", "0,1", "--out", str(ensemble), *flags[:-1]]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert shlex.split(last.split(": ", 1)[1]) == ["scratchnn", "evaluate", str(ensemble)], last


def test_a_doctors_fix_keeps_a_quoted_path_on_one_line():
    """The paths audit: the fix's lr-find command was wrapped inside 'runs/café 中文 run/config.toml'."""
    config = shell_word("runs/café 中文 🙂 run one two three/config.toml")
    fix = f"lower --lr from 10 to 0.1 or find one: scratchnn lr-find --config {config} measures one in seconds"
    lines = finding_lines(Finding("lr-too-high", "warning", 3, "steps too big", "why", fix), width=60)
    assert any(config in line for line in lines), lines
    longer = shell_word("runs/" + "a very long run name " * 5 + "/config.toml")  # past the width: runs past, uncut
    finding = Finding("lr-too-high", "warning", 3, "m", "why", f"scratchnn lr-find --config {longer}")
    lines = finding_lines(finding, width=60)
    assert any(longer in line for line in lines), lines


def test_the_page_names_a_runs_config_whatever_the_servers_folder_is_called():
    """The paths audit: a runs folder named "web dir; it's" left "web dir; it'config.toml" on the page."""
    from scratchnn.web.train_worker import page_finding

    run_dir = Path("/srv/web dir; it's/20261207-235048-seed")
    fix = f"lower --lr; scratchnn lr-find --config {shell_word(run_dir / 'config.toml')} --batch-size 128 measures one"
    shown = page_finding(Finding("lr-too-high", "warning", 3, "steps too big", "...", fix), run_dir.name, run_dir)
    assert shown["fix"] == ("lower --lr; scratchnn lr-find --config 20261207-235048-seed/config.toml --batch-size 128 "
                            "(in the server's runs folder) measures one"), shown
    mine = Path("/srv/runs/my run")  # a run folder of one's own beside them (the review: unquoted on the page)
    fix = f"lower --lr; scratchnn lr-find --config {shell_word(mine / 'config.toml')} measures one"
    shown = page_finding(Finding("lr-too-high", "warning", 3, "steps too big", "...", fix), mine.name, mine)
    assert shown["fix"] == ("lower --lr; scratchnn lr-find --config 'my run/config.toml' (in the server's runs "
                            "folder) measures one"), shown


def test_a_stopped_runs_command_keeps_the_flags_it_began_with_after_a_full_disk_too():
    """The review: RunNotSaved.with_flags had no test of its own."""
    stopped = RunNotSaved(OSError(28, "No space left on device", "runs/x/checkpoint.safetensors"), Path("runs/x"))
    assert "'scratchnn train --resume runs/x --no-report' goes on from it" in str(stopped.with_flags(" --no-report"))


def test_every_error_the_command_line_prints_is_one_line(tmp_path, capsys):
    """The review: a folder named with a newline split evaluate's and doctor's errors over two lines."""
    folder = tmp_path / "nl\nrun"
    folder.mkdir()
    for command in (["evaluate", str(folder)], ["doctor", str(folder)]):
        assert main(command) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "nl\\nrun" in err, err


@pytest.mark.skipif(not hasattr(os, "fsencode") or os.name != "posix", reason="a POSIX name of any bytes")
def test_a_name_that_is_not_utf8_text_is_refused_before_a_run_folder_or_drawn_as_it_can_be(tmp_path):
    """The locale audit: data in a folder named with a Latin-1 byte trained into a config.toml that
    TOML cannot read back ("Escaped character is not a Unicode scalar value"), so --resume and
    --config failed; a run folder so named trained, then its report died on a UTF-8 encode, and
    a UTF-8 terminal's strict output raised on every message naming it."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 200)
    images = (rng.random((200, 28, 28)) * 60 + labels[:, None, None] * 19).astype(np.uint8)
    latin = Path(os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9"))
    latin.mkdir()
    csv = write_kaggle_csv(latin / "digits.csv", images, labels)
    flags = ["--hidden", "8", "--epochs", "1", "--batch-size", "64", "--dev-size", "50"]
    strict = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}  # as en_US.UTF-8's terminal (C.UTF-8's escapes)

    def scratchnn(*args):
        return subprocess.run([sys.executable, "-m", "scratchnn", *map(str, args)], capture_output=True, env=strict,
                              timeout=300)

    refused = scratchnn("train", "--csv", csv, "--out", tmp_path / "run", *flags, "--no-report")
    assert refused.returncode == 1 and b"config.toml cannot record '" + os.fsencode(tmp_path) + \
        b"/caf\\\\xe9/digits.csv' holds bytes that are not UTF-8 text: rename it" in refused.stderr, refused.stderr
    assert not (tmp_path / "run").exists()
    csv.rename(tmp_path / "digits.csv")
    trained = scratchnn("train", "--csv", tmp_path / "digits.csv", "--out", latin / "run", *flags)
    assert trained.returncode == 0, trained.stderr
    assert os.fsencode(latin / "run" / "model.safetensors") in trained.stdout  # the name's bytes, as ls shows them
    assert f"{tmp_path}/caf\\xe9/run" in (latin / "run" / "report.html").read_text("utf-8")
    utf8 = tmp_path / "café"  # in a C locale without UTF-8 mode, Python reads its é as two undecodable bytes
    utf8.mkdir()
    (tmp_path / "digits.csv").rename(utf8 / "digits.csv")
    strict.update(LC_ALL="C", PYTHONUTF8="0")
    refused = scratchnn("train", "--csv", utf8 / "digits.csv", "--out", tmp_path / "run", *flags, "--no-report")
    assert refused.returncode == 1 and b"is read as ascii here (a C locale): run scratchnn with PYTHONUTF8=1, or " \
        b"in a UTF-8 locale (LANG=C.UTF-8)" in refused.stderr, refused.stderr
