"""Training from the page, in-process (TestClient), with real worker processes on 2,000 real digits:
validation like `scratchnn train` (422 naming the flag), one run at a time (409 naming it), the
event stream and its replay, Stop, the served model swapped, --no-train, and the Runs API."""
import base64
import gzip
import json
import os
import queue
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from web_support import MNIST_CSV, drawn_one, require

require("fastapi", "pip install 'scratchnn[web]'")
from fastapi.testclient import TestClient  # noqa: E402

from scratchnn.nn import Conv2D  # noqa: E402
from scratchnn.training.config import TrainConfig  # noqa: E402
from scratchnn.training.run import train_run  # noqa: E402
from scratchnn.web.app import create_app  # noqa: E402
from scratchnn.web.train_setup import TrainSetup  # noqa: E402
from scratchnn.training.checkpoint import CHECKPOINT_FILE, load_checkpoint  # noqa: E402
from scratchnn.training.run import resume_run  # noqa: E402
from scratchnn.web.train_worker import Watcher, _train_and_report, first_layer_images, without_folders  # noqa: E402
from scratchnn.web.training import TrainLimits  # noqa: E402

LOCAL = "http://localhost"
TERMINAL = ("finished", "stopped", "failed")


def small_csv(shared, folder, rows=2000):
    """The first ``rows`` digits of the shared MNIST test CSV, as a Kaggle CSV of their own."""
    path = folder / f"digits-{rows}.csv"
    if not path.exists():
        with gzip.open(shared / MNIST_CSV, "rt") as source:
            path.write_text("".join(next(source) for _ in range(rows + 1)))
    return path


def base_run(shared, runs):
    """A served run folder (seed, 20 iterations) whose config.toml names the 2,000-digit CSV."""
    folder = runs / "base"
    if not (folder / "model.safetensors").exists():
        config = TrainConfig(preset="seed", epochs=20, csv=str(small_csv(shared, runs.parent)), checkpoint_every=0)
        train_run(config, folder, log=lambda line: None, progress=False)
    return folder


@pytest.fixture(scope="module")
def runs(shared_dir, tmp_path_factory):
    runs = tmp_path_factory.mktemp("train") / "runs"
    base_run(shared_dir, runs)
    return runs


@pytest.fixture
def client(runs):
    with TestClient(create_app(runs / "base", train=TrainSetup(limits=TrainLimits(epochs=300))),
                    base_url=LOCAL) as client:
        yield client


def events_until_over(client, headers=None):
    """Every event of the stream, as (id, event), until the server ends it (the run is over)."""
    found = []
    with client.stream("GET", "/api/train/events", headers=headers or {}) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        last_id = None
        for line in stream.iter_lines():
            if line.startswith("id: "):
                last_id = line[4:]
            elif line.startswith("data: "):
                found.append((last_id, json.loads(line[6:])))
    return found


def last_status(events) -> dict:
    """The run's final status event: a finished run's report lines come after it, as the model
    is served before the figures are drawn."""
    return [e for e in (e[1] if isinstance(e, tuple) else e for e in events) if e["type"] == "status"][-1]


def assert_error(response, status, *words):
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert "\n" not in detail and len(detail) < 600, detail
    for word in words:
        assert word in detail, f"{word!r} not in {detail!r}"


def test_bad_settings_are_refused_naming_the_flag_before_anything_starts(client, runs):
    before = sorted(p.name for p in runs.iterdir())
    assert_error(client.post("/api/train", json={"preset": "seed", "lr": -1}), 422, "--lr", "in (0, ")
    assert_error(client.post("/api/train", json={"preset": "seed", "hidden": "128"}), 422, "--hidden", "list")
    assert_error(client.post("/api/train", json={"preset": "seed", "activation": "swish"}), 422, "activation", "relu")
    assert_error(client.post("/api/train", json={"preset": "seed", "dropout": 1.0}), 422, "--dropout")
    assert_error(client.post("/api/train", json={"preset": "seed", "batchnorm": "yes"}), 422, "--batchnorm")
    assert_error(client.post("/api/train", json={"preset": "seed", "fault": ["nope"]}), 422, "fault", "zero-init")
    assert_error(client.post("/api/train", json={"preset": "nope"}), 422, "--preset", "seed")
    for preset in ([], {"a": 1}, 3, None):  # found by the fuzzer: a list was looked up in a dict (a 500)
        assert_error(client.post("/api/train", json={"preset": preset}), 422, "--preset", "seed")
    assert_error(client.post("/api/train", json={"csv": "/etc/passwd"}), 422, "unknown setting", "'csv'")
    assert_error(client.post("/api/train", json={"preset": "seed", "epoch": 1}), 422,  # the advice audit: a list
                 "unknown setting 'epoch'; did you mean 'epochs'?")  # of 40 names, where a config file says it
    assert_error(client.post("/api/train", json=[1, 2]), 422, "JSON object")
    assert_error(client.post("/api/train", content=b"{not json", headers={"content-type": "application/json"}), 422)
    assert_error(client.post("/api/train", json={"preset": "cnn", "epochs": 1, "kernel_size": 1_000_000}), 422,
                 "cannot be built")  # the web audit: a 202, then a run folder that failed in the worker
    as_json = {"content-type": "application/json"}  # the web audit: each of these was a 500
    huge = b'{"preset": "seed", "epochs": 1' + b"0" * 400 + b"}"
    assert_error(client.post("/api/train", content=huge, headers=as_json), 422, "--epochs", "401-digit")
    assert_error(client.post("/api/train", content=b'{"lr": 1' + b"0" * 5000 + b"}", headers=as_json), 422,
                 "thousands of digits")  # the web fuzz audit: it blamed the body's shape, an object
    assert_error(client.post("/api/train", content=b"[" * 100_000, headers=as_json), 422, "JSON object")
    twice = b'{"preset": "seed", "epochs": 5, "epochs": 500}'  # the web fuzz audit: the last one was taken
    assert_error(client.post("/api/train", content=twice, headers=as_json), 422, '"epochs" is given twice')
    assert_error(client.post("/api/train", json={"preset": "seed"}), 422, "--epochs", "--max-train-epochs")
    assert_error(client.post("/api/train", json={"hidden": [5000], "epochs": 1}), 422, "--hidden", "--max-train-width")
    assert sorted(p.name for p in runs.iterdir()) == before, "a refused run left a folder"
    assert client.get("/api/train").json()["state"]["status"] == "idle"
    assert client.get("/api/train/state").json()["status"] == "idle"  # what an idle page polls


def test_the_operators_console_says_who_started_what_and_what_was_refused(client, runs, caplog, monkeypatch):
    """The deployment audit: the console showed nothing of runs or of the 403s students met."""
    import logging

    from scratchnn.web import operator_log

    monkeypatch.setattr(operator_log, "_last", {})
    with caplog.at_level(logging.INFO, logger="scratchnn.serve"):
        assert client.post("/api/train/stop", headers={"sec-fetch-site": "cross-site"}).status_code == 403
        assert client.post("/api/train/stop", headers={"sec-fetch-site": "cross-site"}).status_code == 403
        assert client.post("/api/runs/base/load").status_code == 200
    lines = [record.getMessage() for record in caplog.records if record.name == "scratchnn.serve"]
    assert len([line for line in lines if "refused POST /api/train/stop (403): another site's page" in line]) == 1
    assert any(line.startswith("run base loaded from the Runs tab by ") for line in lines), lines


def test_another_sites_page_cannot_start_stop_or_swap_a_run(client, runs):
    """A page on another site can POST from a visitor's browser without asking first (a form, or
    fetch with text/plain): the audit started a run that way and it became the served model."""
    before = sorted(p.name for p in runs.iterdir())
    plain = '{"preset": "seed", "epochs": 5}'
    assert_error(client.post("/api/train", content=plain, headers={"content-type": "text/plain"}), 415,
                 "Content-Type: application/json")
    for headers in ({"origin": "http://evil.example"}, {"sec-fetch-site": "cross-site"}, {"origin": "null"},
                    {"origin": "http://localhost:9999"},  # another port is another origin
                    {"sec-fetch-site": "same-site"},  # ... which the browser calls the same site
                    {"origin": "http://evil.example", "x-forwarded-host": "digits.school.lan"}):
        for path in ("/api/train", "/api/train/stop", "/api/train/pause", f"/api/runs/{before[0]}/load"):
            assert_error(client.post(path, json={"preset": "seed", "epochs": 5}, headers=headers), 403,
                         "another site's page")
    assert sorted(p.name for p in runs.iterdir()) == before
    same = {"origin": str(client.base_url).rstrip("/"), "sec-fetch-site": "same-origin"}  # what the page sends
    assert client.post("/api/train/stop", headers=same).status_code == 200
    # behind a reverse proxy (the deployment audit: every write was 403 behind nginx's usual block): the
    # browser says same-origin whatever Host the proxy passes; an older one's Origin is the proxy's name
    for proxied in ({"origin": "https://digits.school.lan", "sec-fetch-site": "same-origin"},
                    {"origin": "https://digits.school.lan", "x-forwarded-host": "digits.school.lan"}):
        assert client.post("/api/train/stop", headers=proxied).status_code == 200, proxied


def test_a_run_streams_its_story_refuses_a_second_and_is_not_served_when_the_doctor_found_an_error(client, runs):
    info = client.get("/api/train").json()
    assert info["enabled"] and {"lr", "hidden", "fault", "doctor"} <= {o["name"] for o in info["options"]}
    assert "csv" not in {o["name"] for o in info["options"]}

    started = client.post("/api/train", json={"preset": "seed", "epochs": 40, "fault": ["zero-init"]})
    assert started.status_code == 202, started.text
    name = started.json()["run"]
    assert_error(client.post("/api/train", json={"preset": "seed", "epochs": 10}), 409, name, "wait for it to finish")
    events = events_until_over(client)
    kinds = [event["type"] for _, event in events]
    assert kinds[0] == "status" and last_status(events)["status"] == "finished", kinds
    assert kinds.index("done") < len(kinds) - 1 - kinds[::-1].index("status") < kinds.index("log", kinds.index("done"))
    assert kinds.index("setup") < kinds.index("batch") < kinds.index("evaluation") < kinds.index("done")
    setup = next(e for _, e in events if e["type"] == "setup")  # the page names the confusion table's classes
    assert setup["classes"] == 10 and setup["class_names"] == list("0123456789"), setup
    evaluations = [e for _, e in events if e["type"] == "evaluation"]
    assert [e["epoch"] for e in evaluations] == [10, 20, 30, 40]  # the seed preset measures every 10
    pictured = [e for _, e in events_until_over(client) if e["type"] in ("evaluation", "pictures") and e["weights"]]
    assert len(pictured) == 1, "superseded weight images stay in the log a reconnecting page replays"
    weights = pictured[0]["weights"]
    assert (weights["kind"], weights["count"], weights["height"], weights["width"]) == ("dense", 10, 28, 28)
    assert len(base64.b64decode(weights["data"])) == 10 * 28 * 28
    confusion = np.array(pictured[0]["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == 1000
    findings = [e for _, e in events if e["type"] == "finding"]
    assert "symmetric-units" in {f["id"] for f in findings}, findings
    assert all(f["explanation"] and f["fix"] for f in findings)
    logs = " ".join(e["line"] for _, e in events if e["type"] == "log")
    assert str(runs) not in logs and "digits-2000.csv" in logs, "server folders leak into the log"
    done = next(e for _, e in events if e["type"] == "done")
    assert not done["loaded"] and done["stopped"] == ""  # one learner's broken run is not the class's model
    # the web audit: a run the doctor kept from serving sent the server's absolute path to every page
    assert done["model_path"] == "model.safetensors" and last_status(events)["model"] == "model.safetensors"
    final = last_status(events)
    assert final["served"] is False and final["detail"] == ("not served, because the doctor found [symmetric-units] "
                                                            "error; the Runs tab can load it anyway"), final
    assert client.get("/api/model").json()["name"] == "base"
    assert client.post(f"/api/runs/{name}/load").status_code == 200  # asked for, it is served
    assert client.get("/api/model").json()["name"] == name
    for file in ("model.safetensors", "config.toml", "metrics.csv", "health.csv", "report.html"):
        assert (runs / name / file).is_file(), file  # the run folder `scratchnn train` leaves
    assert "Drawing the run's figures (report.html)" in logs

    # a reconnecting browser: everything again (same ids), or only what came after Last-Event-ID
    replay = events_until_over(client)
    assert [i for i, _ in replay] == [i for i, _ in events]
    after = events_until_over(client, headers={"Last-Event-ID": events[5][0]})
    assert [i for i, _ in after] == [i for i, _ in events[6:]]
    run_id, _, last = events[-1][0].partition(":")  # one past the last sent: only a forged id; everything again
    forged = events_until_over(client, headers={"Last-Event-ID": f"{run_id}:{int(last) + 1}"})
    assert [i for i, _ in forged] == [i for i, _ in events]


def test_notes_scratchnn_train_would_print_reach_the_page_not_the_servers_terminal(client, runs, capsys):
    started = client.post("/api/train", json={"preset": "mlp", "epochs": 1, "kernel_size": 5})
    assert started.status_code == 202, started.text
    events = [event for _, event in events_until_over(client)]
    assert last_status(events)["status"] == "finished", events[-1]
    notes = [event["text"] for event in events if event["type"] == "note"]
    assert notes[:2] == [
        "the mlp recipe's 1-epoch warm-up is as long as --epochs 1; using 0.025 epochs, the same share of the run",
        "--kernel-size 5 does nothing here; it applies only to networks with convolutions (--conv)"], notes
    kinds = [event["type"] for event in events]
    assert kinds.index("note") < kinds.index("batch"), "the notes come before training, as in a terminal"
    assert "Note:" not in capsys.readouterr().out


def test_a_note_from_the_training_process_is_a_note_event_without_server_folders():
    events = queue.Queue()
    watcher = Watcher(events, threading.Event(), threading.Event(), max_seconds=60)
    watcher.log("Note: this machine is busy (load average 3.0 on 2 cores); see /srv/scratchnn/runs/x/health.csv")
    watcher.log("Data: csv /srv/data/digits.csv (1,000 train / 1,000 dev)")
    assert events.get_nowait() == {"type": "note", "text": "this machine is busy (load average 3.0 on 2 cores); "
                                                           "see health.csv"}
    assert events.get_nowait() == {"type": "log", "line": "Data: csv digits.csv (1,000 train / 1,000 dev)"}


def started_long_run(client, until="batch"):
    """A seed run of 300 epochs of 10-image batches, once its first batch has trained (``until``
    "evaluation": its first epoch): the response."""
    started = client.post("/api/train", json={"preset": "seed", "epochs": 300, "batch_size": 10, "eval_every": 1})
    assert started.status_code == 202, started.text
    with client.stream("GET", "/api/train/events") as stream:
        for line in stream.iter_lines():
            if line.startswith("data: ") and json.loads(line[6:])["type"] == until:
                break
    return started


@pytest.mark.parametrize("epochs", [5, 1])
def test_a_run_stopped_in_its_first_epoch_is_saved_but_not_served(client, runs, epochs):
    """The web audit: Start then Stop a few batches in, and every page answered with a network
    that had barely trained, in place of the one it served. With one epoch, its first is its last:
    the second review found the verdict of a run stopped in its last epoch tested on doctor_verdict
    alone, and the worker could pass it stopped=False unnoticed (it then asked for more --epochs)."""
    served = client.get("/api/model").json()["name"]
    started = client.post("/api/train", json={"preset": "mlp", "epochs": epochs, "batch_size": 1,  # ~1 s an epoch
                                              "batchnorm": False})
    assert started.status_code == 202, started.text
    with client.stream("GET", "/api/train/events") as stream:
        next(line for line in stream.iter_lines()
             if line.startswith("data: ") and json.loads(line[6:])["type"] == "batch")
    assert client.post("/api/train/stop").json()["status"] == "stopping"
    events = [e for _, e in events_until_over(client)]
    done = next(e for e in events if e["type"] == "done")
    assert done["stopped"] == "asked" and not done["loaded"], done
    assert done["verdict"].endswith("(the doctor needs 5)"), done  # not "more --epochs": it was stopped
    last = last_status(events)
    assert last["status"] == "stopped" and last["detail"] == ("not served: stopped before its first epoch ended, it "
                                                              "has barely trained; the Runs tab can load it anyway")
    assert client.get("/api/model").json()["name"] == served
    assert (runs / started.json()["run"] / "model.safetensors").is_file()
    assert client.post(f"/api/runs/{started.json()['run']}/load").status_code == 200  # asked for, it is served


def test_stop_ends_the_run_after_a_batch_and_serves_what_it_learnt(client, runs):
    started = started_long_run(client, until="evaluation")
    assert client.post("/api/train/pause").json()["status"] == "paused"
    assert client.post("/api/train/stop").json()["status"] == "stopping"
    events = [e for _, e in events_until_over(client)]
    assert last_status(events)["status"] == "stopped"
    done = next(e for e in events if e["type"] == "done")
    assert done["stopped"] == "asked" and 1 <= done["metrics"]["epochs"] < 300
    assert client.get("/api/model").json()["name"] == started.json()["run"]
    # it trained on one BLAS thread, and its config says so: 'train --config' of the folder repeats it
    assert TrainConfig.load(runs / started.json()["run"] / "config.toml").threads == 1


def test_a_run_over_its_time_is_stopped_and_saved(runs):
    setup = TrainSetup(limits=TrainLimits(seconds=1.0))
    with TestClient(create_app(runs / "base", train=setup), base_url=LOCAL) as client:
        assert client.post("/api/train", json={"preset": "seed", "epochs": 500, "batch_size": 1}).status_code == 202
        events = [e for _, e in events_until_over(client)]
    assert next(e for e in events if e["type"] == "done")["stopped"] == "time"
    assert any("--max-train-seconds" in e.get("line", "") for e in events)
    last = last_status(events)  # the page's final line says why it stopped: no one pressed Stop
    assert last["status"] == "stopped" and "limit of 1 s a run (serve --max-train-seconds)" in last["detail"]


@pytest.mark.parametrize("error, said", [
    (BlockingIOError(11, "Resource temporarily unavailable"),
     "no process could be started (a process limit: ulimit -u)"),
    (OSError(28, "No space left on device"), "no semaphore could be made (/dev/shm is full)"),
    (OSError(24, "Too many open files"), "no file could be opened (too many open: ulimit -n)"),
    (RuntimeError("can't start new thread"), "can't start new thread"),
], ids=["nproc", "shm", "nofile", "thread"])
def test_a_worker_that_cannot_start_is_a_503_naming_the_limit_and_leaves_no_folder(runs, monkeypatch, tmp_path,
                                                                                     error, said):
    """The resource audit: short of a process, a semaphore or a file descriptor, Start answered a
    bare 500 and left an empty run folder at every try."""
    from scratchnn.web import training

    shutil.copytree(runs / "base", tmp_path / "runs" / "base")
    monkeypatch.setattr(training, "spawn_with_threads", lambda process, threads: (_ for _ in ()).throw(error))
    with TestClient(create_app(tmp_path / "runs" / "base", train=TrainSetup(limits=TrainLimits(epochs=300))),
                    base_url=LOCAL) as client:
        refused = client.post("/api/train", json={"preset": "seed", "epochs": 2})
        assert_error(refused, 503, f"the server could not start the run: {said}; try again later")
        assert sorted(path.name for path in (tmp_path / "runs").iterdir()) == ["base"]
        assert client.get("/api/train/state").json()["status"] == "idle"


def test_runs_past_the_servers_disk_limit_are_refused_and_nothing_saved_is_deleted(runs, monkeypatch, tmp_path):
    """The soak audit: one client looping Start wrote 13 GB an hour, and no limit counted runs."""
    from scratchnn.web import disk_budget

    shutil.copytree(runs / "base", tmp_path / "runs" / "base")  # the other tests' page runs count too
    runs = tmp_path / "runs"

    setup = TrainSetup(limits=TrainLimits(disk=1e-6))  # 1 kB: the first run's folder is over it
    with TestClient(create_app(runs / "base", train=setup), base_url=LOCAL) as client:
        assert client.get("/api/train").json()["limits"]["disk_gb"] == 1e-6
        first = client.post("/api/train", json={"preset": "seed", "epochs": 2})
        assert first.status_code == 202
        events_until_over(client)
        folder = runs / first.json()["run"]
        kept = sorted(p.name for p in folder.iterdir())
        refused = client.post("/api/train", json={"preset": "seed", "epochs": 2})
        assert refused.status_code == 507, refused.text
        assert re.match(r"the runs trained from this page \(1 run\) take \d+ MB, the most this server keeps "
                        r"\(scratchnn serve --max-train-disk 1e-06\)", refused.json()["detail"])  # not '0.0 GB'
        assert sorted(p.name for p in folder.iterdir()) == kept and "model.safetensors" in kept
        with TestClient(create_app(runs / "base", train=setup), base_url=LOCAL) as restarted:  # the disk audit:
            again = restarted.post("/api/train", json={"preset": "seed", "epochs": 2})  # a restart forgot its runs
            assert again.status_code == 507 and "(1 run)" in again.json()["detail"], again.text
        shutil.rmtree(folder)  # the operator deletes it: room again, but the machine's disk is nearly full
        monkeypatch.setattr(disk_budget.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**12, 0, 5e8))
        refused = client.post("/api/train", json={"preset": "seed", "epochs": 2})
        assert refused.status_code == 507 and "the server's disk has 0.50 GB free" in refused.json()["detail"]
    from scratchnn.cli.main import build_parser
    from scratchnn.cli.serve_cmd import train_setup

    assert train_setup(build_parser().parse_args(["serve", "--max-train-disk", "2.5"])).limits.disk == 2.5


def test_a_run_needing_more_memory_than_the_server_allows_fails_before_training(runs):
    setup = TrainSetup(limits=TrainLimits(memory=0.1))  # 100 MB; cnn-best's batches of 128 need 143 MB at least
    with TestClient(create_app(runs / "base", train=setup), base_url=LOCAL) as client:
        assert client.get("/api/train").json()["limits"]["memory_gb"] == 0.1
        before = sorted(p.name for p in runs.iterdir())
        assert client.post("/api/train", json={"preset": "cnn-best", "epochs": 1}).status_code == 202
        events = [e for _, e in events_until_over(client)]
    assert events[-1]["status"] == "failed", events[-1]
    detail = events[-1]["detail"]
    assert detail.startswith("training needs at least ") and "a run may use 100.0 MB here (scratchnn serve " \
        "--max-train-memory)" in detail and "try --batch-size " in detail, detail
    assert not any(e["type"] == "batch" for e in events)
    assert sorted(p.name for p in runs.iterdir()) == before, "a refused run left a folder"


def test_data_of_another_image_size_is_refused_before_training(runs, tmp_path):
    """A model of 12x12 images could not be drawn for or served by the page: no run starts."""
    from scratchnn.data import DataSource, write_kaggle_csv

    images = np.zeros((200, 12, 12), np.uint8)
    images[:, 2:10, 5] = 255
    small = write_kaggle_csv(tmp_path / "small.csv", images, np.arange(200, dtype=np.uint8) % 10)
    with TestClient(create_app(runs / "base", data=DataSource(csv=str(small))), base_url=LOCAL) as client:
        before = sorted(p.name for p in runs.iterdir())
        assert client.post("/api/train", json={"preset": "mlp", "epochs": 1}).status_code == 202
        events = [e for _, e in events_until_over(client)]
    assert events[-1]["status"] == "failed", events[-1]
    assert "small.csv holds 12x12 images, but the page draws and serves 28x28 images only; give data of 28x28 " \
           "images" in events[-1]["detail"], events[-1]["detail"]
    assert not any(e["type"] == "batch" for e in events)
    assert sorted(p.name for p in runs.iterdir()) == before, "a refused run left a folder"


def test_serve_refuses_a_memory_limit_that_is_not_a_positive_number():
    from scratchnn.cli.main import build_parser
    from scratchnn.cli.serve_cmd import train_setup
    from scratchnn.errors import ConfigError

    assert train_setup(build_parser().parse_args(["serve", "--max-train-memory", "0.5"])).limits.memory == 0.5
    for value in ("0", "-1", "nan", "inf"):
        with pytest.raises(ConfigError, match="--max-train-memory must be a number > 0"):
            train_setup(build_parser().parse_args(["serve", "--max-train-memory", value]))


def test_a_paused_run_still_ends_at_its_time_limit():
    """Paused time counts: the page trains one run at a time, so a forgotten pause must not hold
    the slot (and the run's memory) for ever."""
    stop, pause = threading.Event(), threading.Event()
    pause.set()
    watcher = Watcher(queue.Queue(), stop, pause, max_seconds=0.3)
    started = time.monotonic()
    assert watcher.stop_requested()
    assert watcher.stopped == "time" and time.monotonic() - started < 5


def test_a_batch_counts_training_time_not_paused_time():
    """The page estimates the time left from a batch's seconds: a pause must not inflate it."""
    stop, pause, events = threading.Event(), threading.Event(), queue.Queue()
    watcher = Watcher(events, stop, pause, max_seconds=60)
    pause.set()
    threading.Timer(0.5, pause.clear).start()
    assert not watcher.stop_requested()  # returns once resumed, 0.5 s later
    watcher.batch(1, 1, 1, loss=2.3, accuracy=0.1)
    assert watcher.paused >= 0.45 and events.get_nowait()["seconds"] < 0.3


def test_keep_model_trains_but_never_swaps_the_served_model(runs):
    """The deployment audit: in a class, any student's finished run became every page's model (a "1"
    read at 99.9% came back as a 9 at 51%); --keep-model trains and compares, and serves what it started with."""
    with TestClient(create_app(runs / "base", train=TrainSetup(keep_model=True)), base_url=LOCAL) as client:
        served = client.get("/api/model").json()
        started = client.post("/api/train", json={"preset": "seed", "epochs": 10})
        assert started.status_code == 202, started.text
        events_until_over(client)
        state = client.get("/api/train/state").json()
        assert state["status"] == "finished" and not state["served"], state
        assert state["detail"].startswith("not served: this server keeps the model it started with")
        assert client.get("/api/model").json() == served
        assert_error(client.post("/api/runs/base/load"), 409, "serves one model", "--keep-model")
        shutil.rmtree(runs / state["run"])


def test_the_runs_tab_shows_the_fixes_the_train_tab_showed_and_an_lr_find_it_can_find(client, runs):
    """The web-doctor audit: the Runs tab showed the rules' general fixes (a seed run at lr 10 was
    told "by 10x" and a warm-up, where the Train tab said "from 10 to 0.1"), and both named
    'scratchnn lr-find --config config.toml', a file the page user cannot find."""
    started = client.post("/api/train", json={"preset": "seed", "epochs": 30, "lr": 10})
    assert started.status_code == 202, started.text
    name = started.json()["run"]
    events = events_until_over(client)
    live = {e["id"]: e["fix"] for _, e in events if e["type"] == "finding"}
    done = next(e for _, e in events if e["type"] == "done")  # named by its cause, not by a symptom of it
    assert done["load_error"].startswith("not served, because the doctor found [one-class] error (from "
                                         "[lr-too-high]);"), done
    assert live["lr-too-high"].startswith("lower --lr from 10 to 0.1; scratchnn lr-find --config "
                                          f"{name}/config.toml --batch-size 128 (in the server's runs folder)"), live
    listed = next(r for r in client.get("/api/runs").json()["runs"] if r["name"] == name)
    assert {f["id"]: f["fix"] for f in listed["findings"]} == live, listed
    config = runs / name / "config.toml"  # its settings edited: the fixes quote the new ones, not a cached listing
    config.write_text(config.read_text().replace("lr = 10", "lr = 20"))
    listed = next(r for r in client.get("/api/runs").json()["runs"] if r["name"] == name)
    fix = next(f["fix"] for f in listed["findings"] if f["id"] == "lr-too-high")
    assert fix.startswith("lower --lr from 20 to 0.2"), fix
    shutil.rmtree(runs / name)


@pytest.mark.parametrize("config_file", ["/srv/runs/lr10/config.toml", "lr10/config.toml", "config.toml"])
def test_an_lr_find_fix_names_the_run_wherever_the_server_was_started(config_file):
    """A server started inside its runs folder writes the fix's config as 'lr10/config.toml' (one
    folder: no path to cut), which the page's rewriting missed, leaving out where the file is."""
    from scratchnn.doctor.findings import Finding
    from scratchnn.web.train_worker import page_finding
    fix = f"lower --lr from 10 to 0.1; scratchnn lr-find --config {config_file} --batch-size 128 measures one"
    shown = page_finding(Finding("lr-too-high", "warning", 3, "steps too big", "...", fix), "lr10")
    assert shown["fix"] == ("lower --lr from 10 to 0.1; scratchnn lr-find --config lr10/config.toml --batch-size 128 "
                            "(in the server's runs folder) measures one"), shown


def test_the_runs_tab_lists_and_loads_ensemble_members_and_sweep_trials(runs, tmp_path):
    """A --seeds ensemble's members and a sweep's trials in the runs folder went unlisted: a sweep's
    trials are the runs one most wants to compare. They are named by their path from the runs folder;
    a folder that only looks like one (no ensemble.toml, no sweep.json) is not read."""
    here = tmp_path / "runs"
    for name in ("solo", "ens/seed-0", "ens/seed-1", "sw/trials/0000", "lookalike/seed-0", "sw/other/0001"):
        shutil.copytree(runs / "base", here / name)
    (here / "ens" / "ensemble.toml").write_text("seeds = [0, 1]\n")
    (here / "sw" / "sweep.json").write_text("{}\n")
    (here / "elsewhere").mkdir()
    (here / "linked").symlink_to(here / "ens")  # a link to an ensemble: not followed
    with TestClient(create_app(here / "solo", train=TrainSetup(limits=TrainLimits(epochs=300))),
                    base_url=LOCAL) as client:
        listed = client.get("/api/runs").json()
        assert sorted(run["name"] for run in listed["runs"]) == ["ens/seed-0", "ens/seed-1", "solo", "sw/trials/0000"]
        assert all(run["has_model"] and not run["problem"] for run in listed["runs"]), listed
        assert client.get("/api/runs/sw%2Ftrials%2F0000/curves").json()["rows"]
        assert client.post("/api/runs/ens%2Fseed-1/load").status_code == 200
        assert client.get("/api/runs").json()["current"] == "ens/seed-1"  # the list marks it as served
        for name in ("lookalike/seed-0", "sw/other/0001", "linked/seed-0", "ens/seed-0/..", "../runs/solo",
                     "ens/seed-0/x", "a/b/c/d", "sw/trials", "/etc"):
            assert_error(client.get(f"/api/runs/{quote(name, safe='')}/curves"), 404, "no run named")


def test_a_run_without_findings_gets_the_doctors_own_words(client, runs):
    """The page repeated the doctor's rule (5 evaluations) and its wording, and read --doctor off
    from its form, which a visitor may change while the run trains: the done event carries them."""
    said = {}
    for doctor in ("on", "off"):
        started = client.post("/api/train", json={"preset": "seed", "epochs": 30, "doctor": doctor})
        assert started.status_code == 202, started.text
        done = next(e for _, e in events_until_over(client) if e["type"] == "done")
        said[doctor] = done["verdict"]
        shutil.rmtree(runs / started.json()["run"])
    assert said == {"on": "no findings in 3 evaluations, too few to judge a plateau or a gap (the doctor needs 5: "
                            "more --epochs, or a smaller --eval-every)",
                    "off": "the doctor was off for this run (--doctor off)"}, said


def test_the_verdict_of_a_short_run_asks_for_more_epochs_only_if_it_ran_them_all():
    from types import SimpleNamespace

    from scratchnn.web.train_worker import doctor_verdict

    def run(*epochs):
        return SimpleNamespace(findings=[], examined=True, history=[SimpleNamespace(epoch=e) for e in epochs])

    assert doctor_verdict(run(1, 2, 3), 3).endswith("(the doctor needs 5: more --epochs, or a smaller --eval-every)")
    assert doctor_verdict(run(1, 2), 3).endswith("(the doctor needs 5)")  # stopped before its last epoch
    assert doctor_verdict(run(1, 2, 3), 3, stopped=True).endswith("(the doctor needs 5)")  # Stop in the last one
    assert doctor_verdict(SimpleNamespace(findings=["x"], examined=True, history=[]), 3) == ""


def test_no_train_turns_training_off(runs):
    with TestClient(create_app(runs / "base", train=TrainSetup(enabled=False)), base_url=LOCAL) as client:
        info = client.get("/api/train").json()
        assert not info["enabled"] and "--no-train" in info["reason"]
        assert_error(client.post("/api/train", json={"preset": "seed", "epochs": 5}), 409, "--no-train")
        assert client.get("/api/runs").status_code == 200  # comparing runs is still allowed
        # but not switching the model every visitor gets
        assert_error(client.post("/api/runs/base/load"), 409, "serves one model", "--no-train")


def test_runs_are_listed_with_findings_and_only_by_safe_names(client, runs, tmp_path):
    (runs / "not-a-run").mkdir(exist_ok=True)  # no config.toml: not listed
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "config.toml").write_text("")
    if not (runs / "linked").exists():
        os.symlink(outside, runs / "linked")
    listed = client.get("/api/runs").json()
    names = [r["name"] for r in listed["runs"]]
    assert "base" in names and "not-a-run" not in names and "linked" not in names
    base = next(r for r in listed["runs"] if r["name"] == "base")
    assert base["preset"] == "seed" and base["settings"]["hidden"] == [10] and 0 < base["dev_accuracy"] < 1
    assert base["config"]["csv"] == "digits-2000.csv" and "csv_sha256" not in base["config"]
    rows = client.get("/api/runs/base/curves").json()["rows"]
    assert [r["epoch"] for r in rows] == [10, 20]
    for bad in ("..", "linked", "not-a-run", "%2e%2e", "a%2Fb", ".hidden", "x" * 101):
        assert client.get(f"/api/runs/{bad}/curves").status_code in (404, 422), bad
    assert client.post("/api/runs/base/load").json()["name"] == "base"
    assert client.get("/api/model").json()["name"] == "base"


def test_a_run_named_as_people_name_folders_is_listed_and_loads(client, runs):
    """--out "runs/my run (2)" or "étude_3" is a run too (the audit saw only [A-Za-z0-9._-] listed)."""
    from urllib.parse import quote
    for name in ("my run (2)", "étude_3", "_draft"):
        shutil.copytree(runs / "base", runs / name)
        try:
            assert name in [r["name"] for r in client.get("/api/runs").json()["runs"]], name
            assert [r["epoch"] for r in client.get(f"/api/runs/{quote(name)}/curves").json()["rows"]] == [10, 20]
            assert client.post(f"/api/runs/{quote(name)}/load").json()["name"] == name
        finally:
            shutil.rmtree(runs / name)
    assert client.post("/api/runs/base/load").json()["name"] == "base"


def test_names_that_cannot_be_shown_are_left_out_and_do_not_break_the_list(client, runs):
    """The review: a folder named in another encoding (a lone surrogate in Python) made GET /api/runs
    a 500; a right-to-left override would reorder what the page shows; 150 characters were listed but
    their curves refused (the path limit was 100)."""
    odd = [os.fsdecode(b"run\xe9"), "run\u202egpj.exe", "x" * 150]
    for name in odd:
        shutil.copytree(runs / "base", runs / name)
    try:
        listed = client.get("/api/runs")
        assert listed.status_code == 200, listed.text
        names = [r["name"] for r in listed.json()["runs"]]
        assert odd[0] not in names and odd[1] not in names and odd[2] in names
        assert client.get(f"/api/runs/{odd[2]}/curves").status_code == 200
    finally:
        for name in odd:
            shutil.rmtree(runs / name)


def test_a_run_without_a_model_does_not_look_healthy_in_the_list(client, runs):
    failed = runs / "failed-early"  # what a run that failed before its first evaluation leaves
    failed.mkdir()
    shutil.copy(runs / "base" / "config.toml", failed / "config.toml")
    try:
        entry = next(r for r in client.get("/api/runs").json()["runs"] if r["name"] == "failed-early")
        assert not entry["has_model"] and entry["findings"] == []
        assert entry["problem"].startswith("no model: still training, or it failed")
        base = next(r for r in client.get("/api/runs").json()["runs"] if r["name"] == "base")
        assert base["has_model"] and base["problem"] == ""
        # one that diverged says so: the server knows from its tables (the audit saw "still training, or...")
        (failed / "metrics.csv").write_text("epoch,train_loss,train_accuracy,dev_loss,dev_accuracy,lr,seconds\n")
        (failed / "health.csv").write_text("epoch,layer,signal,value\n0,model,classes,10\n1,model,diverged_loss,inf\n")
        entry = next(r for r in client.get("/api/runs").json()["runs"] if r["name"] == "failed-early")
        assert entry["problem"] == "no model: training diverged (the loss or the weights became infinite)", entry
    finally:
        shutil.rmtree(failed)


def test_every_answer_names_the_model_that_gave_it(client, runs):
    """A page opened before a run ended (or another page loaded one) learns of it from its next answer."""
    canvas = {"pixels": drawn_one().tolist()}
    assert client.post("/api/predict", json=canvas).json()["model"] == client.get("/api/model").json()["name"]
    other = runs / "base-again"
    shutil.copytree(runs / "base", other)
    try:
        assert client.post("/api/runs/base-again/load").json()["name"] == "base-again"
        assert client.post("/api/predict", json=canvas).json()["model"] == "base-again"
    finally:
        shutil.rmtree(other)


def test_a_run_loaded_from_the_runs_tab_predicts_on_the_layers_the_server_started_with(runs):
    app = create_app(runs / "base", fast=False)
    with TestClient(app, base_url=LOCAL) as client:
        first = app.state.service
        assert client.post("/api/runs/base/load").json()["name"] == "base"
    assert app.state.service is not first and not app.state.service.fast
    assert app.state.service.ensemble.nets == app.state.service.ensemble.models  # serve --textbook's


def test_first_layer_images_show_kernels_and_feature_maps_of_a_cnn():
    rng = np.random.default_rng(0)
    config = TrainConfig(conv=[4], hidden=[8], init="he_normal")
    model = config.build_model(rng)
    picture = first_layer_images(model, rng.random((1, 1, 28, 28)).astype(np.float32))
    conv = next(layer for layer in model.layers if isinstance(layer, Conv2D))
    tiles = np.frombuffer(base64.b64decode(picture["data"]), np.uint8).reshape(4, 3, 3)
    weights = conv.params["W"][:, 0]
    strongest = np.abs(weights).reshape(4, -1).argmax(axis=1)
    assert np.all(np.isin(tiles.reshape(4, -1)[np.arange(4), strongest], (0, 255)))  # each tile its own scale
    assert np.array_equal(tiles > 128, weights > 0.5 / 127.5 * np.abs(weights).max(axis=(1, 2), keepdims=True))
    assert (picture["maps"]["count"], picture["maps"]["height"]) == (4, 26)


def test_server_folders_are_cut_from_text():
    assert without_folders("Data: csv /srv/data/d.csv (1,000 train)") == "Data: csv d.csv (1,000 train)"
    assert without_folders("details: scratchnn doctor /srv/runs/x") == "details: scratchnn doctor x"
    # a relative path was cut after its first folder: 'web/leak/metrics.csv' became 'webmetrics.csv'
    assert without_folders("web/leak/metrics.csv: empty") == "metrics.csv: empty"
    assert without_folders("saved ./runs/x/model.safetensors") == "saved model.safetensors"
    assert without_folders("Epoch 3/10, T-shirt/top") == "Epoch 3/10, T-shirt/top"  # no folders there
    # Windows: backslashes, drive letters, shares
    assert without_folders(r"saved to C:\Users\alice\runs\x\model.safetensors") == "saved to model.safetensors"
    assert without_folders(r"csv D:\d.csv, runs\x\health.csv (E:/data/a.csv)") == "csv d.csv, health.csv (a.csv)"
    assert without_folders(r"from \\server\share\runs\x: no model") == "from x: no model"


def test_each_server_limit_is_named_by_its_own_flag():
    from scratchnn.cli.main import build_parser
    from scratchnn.cli.serve_cmd import train_setup
    from scratchnn.errors import ConfigError
    from scratchnn.training.presets import get_preset

    limits = train_setup(build_parser().parse_args(["serve", "--max-train-channels", "16", "--max-train-layers", "2",
                                                    "--max-train-width", "64"])).limits
    assert (limits.channels, limits.layers, limits.width) == (16, 2, 64)
    for changes, flag in (({"conv": [32, 64], "hidden": [32]}, "--max-train-channels"),
                          ({"conv": [8, 8, 8], "hidden": [32]}, "--max-train-layers"),
                          ({"hidden": [128]}, "--max-train-width"), ({"hidden": [8, 8, 8]}, "--max-train-layers")):
        config = get_preset("cnn" if "conv" in changes else "mlp")
        for name, value in changes.items():
            setattr(config, name, value)
        with pytest.raises(ConfigError, match=f"\\(scratchnn serve {flag}\\)$"):
            limits.check(config)
    with pytest.raises(ConfigError, match="--max-train-layers must be a number > 0"):
        train_setup(build_parser().parse_args(["serve", "--max-train-layers", "0"]))
    for seconds in ("1e-320", "0.5"):  # the fuzz audit: 1e-320 passed "> 0", and every run stopped at once
        with pytest.raises(ConfigError, match="^--max-train-seconds must be at least 1, got [0-9.e-]+$"):
            train_setup(build_parser().parse_args(["serve", "--max-train-seconds", seconds]))


def test_a_server_asked_to_exit_stops_the_run_and_ends_the_event_streams(client, runs):
    """The re-audit: SIGTERM with a page watching took 8 s, the run training on, while the open
    event stream held the shutdown; serve's server now tells the manager first."""
    manager = client.app.state.training
    started = started_long_run(client)
    manager.closing()  # what handle_exit calls
    run_id, _, over = manager.events_after(manager.run_id, 0)
    assert over, "a page's event stream would keep the server open"
    kinds = [event["type"] for _, event in events_until_over(client)]  # ends, however far the run got
    assert kinds and kinds[0] == "status"
    deadline = time.monotonic() + 60  # a hang guard only: the run stops after its batch and saves its model
    while manager.state["status"] in ("starting", "running", "paused", "stopping") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert manager.state["status"] == "stopped", manager.state
    assert (runs / started.json()["run"] / "model.safetensors").is_file()
    # and its report is left for `scratchnn report` (the soak audit: drawing it took the shutdown to 12 s)
    manager._process.join(60)
    assert not manager._process.is_alive() and not (runs / started.json()["run"] / "report.html").exists()


def serving_a_run(runs, tmp_path, **popen):
    """(the `scratchnn serve` process, the run it trains): a server of a copy of the base run on a
    free port, started in ``tmp_path`` with ``popen``'s arguments, once its page's run is well into
    training (a checkpoint, then its first evaluation)."""
    import socket
    import sys
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder = tmp_path / "served"
    shutil.copytree(runs / "base", folder)
    serve = subprocess.Popen([sys.executable, "-m", "scratchnn", "serve", str(folder), "--port", str(port)],
                             cwd=tmp_path, **popen)
    deadline = time.monotonic() + 60
    body = json.dumps({"preset": "seed", "epochs": 300, "batch_size": 10}).encode()
    while time.monotonic() < deadline:  # until the server answers
        try:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/api/train", data=body, headers={
                "Content-Type": "application/json", "Sec-Fetch-Site": "same-origin"})
            run = json.loads(urllib.request.urlopen(request, timeout=10).read())["run"]
            break
        except OSError:
            time.sleep(0.2)
    while not (tmp_path / run / "health.csv").exists() and time.monotonic() < deadline + 60:
        time.sleep(0.2)
    return serve, run


def test_ctrl_c_in_the_servers_terminal_stops_the_run_saves_its_model_and_says_so(shared_dir, runs, tmp_path):
    """The terminal sends SIGINT to the whole process group: the training process printed a
    KeyboardInterrupt traceback and lost the model, and the console named no run. It now ignores
    SIGINT (the server stops it after its batch), and the console names the run and its folder."""
    import signal

    serve, run = serving_a_run(runs, tmp_path, start_new_session=True, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        os.killpg(serve.pid, signal.SIGINT)
        _, stderr = serve.communicate(timeout=120)
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
    assert "Traceback" not in stderr, stderr
    assert f"run {run} stopped with the server; its model is saved in {tmp_path / run}" in stderr, stderr
    assert "leaked semaphore" not in stderr, stderr  # the run's queue and events, let go of before the exit
    assert (tmp_path / run / "model.safetensors").is_file()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the training process in /proc (Linux)")
def test_a_server_killed_outright_leaves_no_training_process_behind(runs, tmp_path):
    """The web audit: after kill -9 of the server (or the out-of-memory killer), its training process
    trained on to the end for nobody, then hung forever on the queue nobody read. `train --resume`
    completes its run."""
    import signal

    serve, run = serving_a_run(runs, tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = None
    try:
        children = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
                    and _parent(int(p.name)) == serve.pid]
        worker = next(pid for pid in children if b"spawn" in Path(f"/proc/{pid}/cmdline").read_bytes())
        serve.kill()
        serve.wait(timeout=30)
        ended = time.monotonic() + 30  # a batch, then the next look at its parent
        while _running(worker) and time.monotonic() < ended:
            time.sleep(0.2)
        assert not _running(worker), "the training process outlived its server"
        # stopped as Ctrl+C stops `scratchnn train` (the crash audit: saved as with Stop, it was marked finished
        # part-way, and --resume could not complete it): its last checkpoint kept, to go on from
        assert not load_checkpoint(tmp_path / run / CHECKPOINT_FILE).metadata.get("finished")
        assert resume_run(tmp_path / run, log=lambda line: None, progress=False).model_path.is_file()
    finally:
        if serve.poll() is None:
            serve.kill()
        if worker is not None and _running(worker):
            os.kill(worker, signal.SIGKILL)


def _stat(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def _parent(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if len(fields) > 1 else None


def _running(pid: int) -> bool:
    """Alive and not a zombie (an exited orphan stays one until init, which may not reap, waits for it)."""
    fields = _stat(pid)
    return bool(fields) and fields[0] != "Z"


def test_a_new_run_ends_the_last_ones_report_drawing_so_one_process_trains_or_draws(client, runs, caplog):
    """The web audit: a Start right after each run kept the finished runs' processes drawing their
    reports beside the new one (7 at once, 759 MB, from one client in 25 s)."""
    manager = client.app.state.training
    started = client.post("/api/train", json={"preset": "seed", "epochs": 10})
    assert started.status_code == 202, started.text
    deadline = time.monotonic() + 120
    while manager.state["status"] in ("starting", "running", "stopping") and time.monotonic() < deadline:
        time.sleep(0.05)
    drawing = manager._process
    assert drawing.is_alive(), "the run ended before its report: nothing to test"  # the report takes seconds
    with caplog.at_level("WARNING", logger="scratchnn.serve"):
        again = client.post("/api/train", json={"preset": "seed", "epochs": 10})
    assert again.status_code == 202, again.text
    drawing.join(10)
    assert not drawing.is_alive() and manager._process is not drawing
    assert f"run {started.json()['run']}: its report was not finished, a new run started" in caplog.text
    client.post("/api/train/stop")
    while manager.state["status"] in ("starting", "running", "stopping") and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_restarted_servers_runs_do_not_reuse_the_run_ids_of_the_last_one(runs):
    """The web audit: run ids restarted at 1, so a page reconnecting with the Last-Event-ID "1:50" of
    the old server's run 1 got the new run 1's events after the 50th."""
    ids = []
    for _ in range(2):
        with TestClient(create_app(runs / "base", train=TrainSetup()), base_url=LOCAL) as served:
            ids.append(served.app.state.training.run_id)
        time.sleep(0.002)
    assert ids[1] > ids[0] > 1_000_000


def test_a_worker_whose_server_is_gone_stops_as_ctrl_c_does_and_leaves_the_run_to_resume(shared_dir, runs, tmp_path):
    """The crash audit: a server killed while its worker started left a worker that took init for
    its server, trained every epoch for nobody and then hung; one killed mid-run had its run
    marked finished at epoch 22 of 30, which --resume could not complete. The worker is given the
    server's id, and a gone server ends the run as Ctrl+C does: its last checkpoint kept."""
    assert Watcher(queue.Queue(), threading.Event(), threading.Event(), 600, server=os.getppid()).server_gone() is False
    gone = Watcher(queue.Queue(), threading.Event(), threading.Event(), 600, server=-1)  # not this process's parent
    assert gone.server_gone()
    config = TrainConfig(preset="mlp", epochs=3, train_size=300, csv=str(small_csv(shared_dir, runs.parent)))
    _train_and_report(gone, config.to_dict(), str(tmp_path / "run"), 4.0)
    kinds = {gone.events.get()["type"] for _ in range(gone.events.qsize())}
    assert "done" not in kinds and "error" not in kinds, kinds
    assert not load_checkpoint(tmp_path / "run" / CHECKPOINT_FILE).metadata.get("finished")
    assert not (tmp_path / "run" / "model.safetensors").exists()
    result = resume_run(tmp_path / "run", log=lambda line: None, progress=False)
    assert result.history[-1].epoch == 3 and load_checkpoint(tmp_path / "run" / CHECKPOINT_FILE).metadata["finished"]


def test_a_server_gone_after_the_last_epoch_still_leaves_the_trained_model(shared_dir, runs, tmp_path):
    """The review: ServerGone raised from stop_requested, which the run's end asked again, so a
    server dying after the last evaluation left every epoch trained and no model saved."""
    class DiesAtTheEnd(Watcher):
        def evaluation(self, result):
            super().evaluation(result)
            if result.epoch == 2:
                self.server = -1  # not this process's parent: gone

    watcher = DiesAtTheEnd(queue.Queue(), threading.Event(), threading.Event(), 600, server=os.getppid())
    config = TrainConfig(preset="mlp", epochs=2, train_size=300, csv=str(small_csv(shared_dir, runs.parent)))
    _train_and_report(watcher, config.to_dict(), str(tmp_path / "run"), 4.0)
    assert (tmp_path / "run" / "model.safetensors").is_file()
    assert load_checkpoint(tmp_path / "run" / CHECKPOINT_FILE).metadata["finished"]


APPLIED = {  # a fix's text -> what the page's Apply button sets ({} : no button)
    "lower --lr from 10 to 0.1; scratchnn lr-find --config r/config.toml --batch-size 128 (in the server's runs "
    "folder) measures one for this network in seconds": {"lr": 0.1},
    "lower --lr from 10 to 1 (or keep it and add --warmup 1)": {"lr": 1},
    "raise --lr from 1e-05 to 0.1 (each step changes the weights by 4.2e-06 of their size)": {"lr": 0.1},
    "--init he_normal (now zeros)": {"init": "he_normal"},
    "--activation relu --init he_normal or --batchnorm or fewer layers than 5 (--hidden 256,128)":
        {"activation": "relu", "init": "he_normal"},
    "--dropout 0.3 (now 0.95: it switches off 95% of the units)": {"dropout": 0.3},
    "--schedule cosine --warmup 1": {"schedule": "cosine", "warmup": 1},
    "--no-augment": {"augment": False},
    "--batchnorm": {"batchnorm": True},
    "--hidden 512,256; now 10": {"hidden": [512, 256]},
    "--epochs 12": {"epochs": 12},
    "more epochs (--epochs 1000, now 500)": {},  # named in passing, and past the server's 300
    "--epochs 1000": {},
    "more training images (--train-size 400, or 0 for all; now 200), --dropout 0.5 (now 0.3) or --augment": {},
    "this follows from [lr-too-high] (epoch 0): fix that first": {},
    "lower --lr by 10x (or use --schedule cosine --warmup 1)": {},
    "--class-names zero,one (one name a label)": {},
    "--input-dropout 0.2: lower the dropout": {},
    "scratchnn lr-find --config r/config.toml measures one": {},
    "--lr fast": {},
    "--init nonsense": {},
}


def test_the_apply_button_sets_a_fixs_first_choice_and_nothing_else(client):
    """The review of the page's Apply button: the first choice of each fix, in the form's own types;
    no button for a choice that names settings only in passing, past the server's limits, or
    without a field (node runs the page's own settings.js on the server's own option list)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the page's Apply button is tested in the browser tests only")
    settings = (Path(__file__).resolve().parents[1] / "src/scratchnn/web/static/settings.js").as_uri()
    info = client.get("/api/train").json()
    script = "\n".join([f"import {{ formChanges }} from {json.dumps(settings)};", f"const info = {json.dumps(info)};",
                        f"const fixes = {json.dumps(list(APPLIED))};",
                        "console.log(JSON.stringify(fixes.map((fix) => Object.fromEntries((formChanges(fix, info, "
                        "() => true) || []).map(([option, value]) => [option.name, value])))));"])
    ran = subprocess.run([node, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert dict(zip(APPLIED, json.loads(ran.stdout))) == APPLIED


def test_the_page_trains_beside_a_served_ensembles_folder_not_among_its_members(tmp_path):
    """The combinations audit: serving ens/ (train --seeds), the page's runs landed in ens/ beside seed-0."""
    from scratchnn.web.train_setup import runs_folder

    for run in (tmp_path / "ens" / "seed-0", tmp_path / "single"):
        run.mkdir(parents=True)
        (run / "model.safetensors").touch()
        (run / "config.toml").touch()
    (tmp_path / "ens" / "ensemble.toml").write_text("seeds = [0, 1]\n")
    assert runs_folder(tmp_path / "ens" / "seed-0" / "model.safetensors") == tmp_path
    assert runs_folder(tmp_path / "single" / "model.safetensors") == tmp_path


def test_two_servers_on_one_runs_folder_count_each_others_page_runs(tmp_path):
    """The many-runs audit: the marked folders were found once, when a server started, so a second
    server on the same runs folder (two classes) did not count the first one's new runs."""
    from scratchnn.web.disk_budget import DiskBudget

    first, second = DiskBudget(tmp_path, 5.0), DiskBudget(tmp_path, 5.0)
    run = tmp_path / "20261208-001500-seed"
    run.mkdir()
    first.add(run)
    (run / "model.safetensors").write_bytes(b"x" * 1000)
    assert second.used() == first.used() >= 1000 and second.folders == [run]
