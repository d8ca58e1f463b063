"""The server against a hostile visitor or a hostile model file: DNS rebinding, files named inside a
model, paths leaked, bodies refused before they are read, and the page's numbers in eval mode."""
import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
from web_support import require

require("fastapi", "pip install 'scratchnn[web]'")
from fastapi.testclient import TestClient  # noqa: E402
from web_support import LOCAL_BASE_URL, client, drawn_one, model_path  # noqa: E402,F401 (fixtures)

from scratchnn.io import load, read_metadata, save  # noqa: E402
from scratchnn.training.config import TrainConfig  # noqa: E402
from scratchnn.web.app import create_app  # noqa: E402

SECRET = "TOPSECRET-7f3a"  # a line that must never travel back to a visitor


# --- Host allow-list (DNS rebinding) -----------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/model", "/api/model/", "/", "/api/gallery"])
def test_a_foreign_host_is_refused_and_never_reflected(client, path):
    response = client.get(path, headers={"host": "evil.example"}, follow_redirects=False)
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert "--allowed-host" in detail and "\n" not in detail
    assert "evil" not in response.text and "location" not in response.headers


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST:8000", "127.0.0.1:8000", "[::1]:8000", "[::1]"])
def test_local_names_are_answered_on_any_port(client, host):
    assert client.get("/api/model", headers={"host": host}).status_code == 200
    redirect = client.get("/api/model/", headers={"host": host}, follow_redirects=False)
    assert redirect.status_code == 307 and redirect.headers["location"] == f"http://{host}/api/model"


@pytest.mark.parametrize("host", ["", "localhost:", "localhost:80x", "[::1", "[::1]x", "localhost.evil.example",
                                  "127.0.0.1.nip.io", "::1"])
def test_malformed_or_lookalike_hosts_are_refused(client, host):
    assert client.get("/api/model", headers={"host": host}).status_code == 400


def test_allowed_hosts_add_names(model_path):
    app = create_app(model_path, allowed_hosts=["pi.local", "[fd00::5]"])
    with TestClient(app, base_url="http://pi.local:8000") as client:
        assert client.get("/api/model").status_code == 200
        assert client.get("/api/model", headers={"host": "[FD00::5]:80"}).status_code == 200
        assert client.get("/api/model", headers={"host": "localhost"}).status_code == 400  # replaced, not added


def test_a_refused_host_never_reaches_the_body_reader(model_path):
    """Refused first, so a foreign page cannot even make the server buffer a body."""
    statuses, consumed = [], []
    scope = {"type": "http", "method": "POST", "path": "/api/predict", "raw_path": b"/api/predict",
             "query_string": b"", "headers": [(b"host", b"evil.example"), (b"content-type", b"application/json"),
                                              (b"content-length", b"1000")]}
    asyncio.run(_call(create_app(model_path), scope, consumed, statuses))
    assert statuses == [400] and consumed == []


# --- data named inside a model file ------------------------------------------------------------

def _crafted(model_path: Path, folder: Path, **paths) -> Path:
    """The tiny model saved again with metadata that names ``paths`` as its data."""
    config = {**read_metadata(model_path)["config"], "csv": "", **paths}
    return save(load(model_path), folder / "model.safetensors", metadata={"config": config})


def _every_answer(client) -> str:
    answers = [client.get("/api/model"), client.get("/openapi.json")]
    answers += [client.get("/api/gallery", params={"set": which}) for which in ("dev", "test")]
    for response in answers:
        assert response.status_code < 500, response.text
    return "\n".join(response.text for response in answers)


@pytest.mark.parametrize("name", ["csv", "images"])
def test_a_model_naming_a_system_file_makes_the_server_read_nothing(model_path, tmp_path, monkeypatch, name):
    secret = tmp_path / "passwd"
    secret.write_text(f"{SECRET}:x:0:0:root:/root:/bin/bash\n" * 3)
    paths = {"csv": str(secret)} if name == "csv" else {"images": str(secret), "labels": str(secret)}
    crafted = _crafted(model_path, tmp_path / "crafted", **paths)
    opened = []
    real_open = Path.open
    monkeypatch.setattr(Path, "open", lambda self, *a, **k: opened.append(self) or real_open(self, *a, **k))
    with TestClient(create_app(crafted), base_url=LOCAL_BASE_URL) as client:
        text = _every_answer(client)
        gallery = client.get("/api/gallery")
    assert SECRET not in text and str(tmp_path) not in text
    assert secret not in opened
    assert gallery.status_code == 409 and "not in a run folder" in gallery.json()["detail"]
    assert "--csv" in gallery.json()["detail"]


def test_etc_passwd_in_a_models_metadata_serves_no_byte_of_it(model_path, tmp_path):
    passwd = Path("/etc/passwd")
    if not passwd.is_file():
        pytest.skip("no /etc/passwd here")
    crafted = _crafted(model_path, tmp_path / "crafted", csv=str(passwd))
    with TestClient(create_app(crafted), base_url=LOCAL_BASE_URL) as client:
        text = _every_answer(client)
    for line in passwd.read_text(errors="replace").splitlines()[:5]:
        assert line not in text


def test_a_reader_error_never_echoes_the_file(model_path, tmp_path):
    """Data the operator named, but not valid: the error is ours, the file's line goes to the log."""
    bad = tmp_path / "notes.csv"
    bad.write_text(f"label,{SECRET}\n1,2\n")
    from scratchnn.data import DataSource

    with TestClient(create_app(model_path, data=DataSource(csv=str(bad))), base_url=LOCAL_BASE_URL) as client:
        response = client.get("/api/gallery")
    assert response.status_code == 409, response.text
    assert SECRET not in response.text and str(tmp_path) not in response.text
    assert "notes.csv cannot be read" in response.json()["detail"]


def _runs_beside(model_path, runs: Path, *names: str) -> None:
    """Copies of the tiny model's run folder, one per name, in ``runs``."""
    import shutil

    for name in names:
        shutil.copytree(model_path.parent, runs / name)


def test_a_link_inside_a_run_folder_is_refused_before_it_is_read(model_path, tmp_path, monkeypatch):
    """The audit: web/leak/metrics.csv -> secret.txt made /api/runs/leak/curves answer 422 quoting the
    secret (the header the reader got), with the server's relative path garbled to 'webmetrics.csv'."""
    secret = tmp_path / "secret.txt"
    secret.write_text(f"SECRET_API_KEY={SECRET}\n")
    _runs_beside(model_path, tmp_path / "web", "served", "leak", "linked-model")
    (tmp_path / "web" / "leak" / "metrics.csv").unlink()
    (tmp_path / "web" / "leak" / "metrics.csv").symlink_to(secret)
    (tmp_path / "web" / "linked-model" / "model.safetensors").unlink()
    (tmp_path / "web" / "linked-model" / "model.safetensors").symlink_to(model_path)
    opened = []
    real_open = Path.open
    monkeypatch.setattr(Path, "open", lambda self, *a, **k: opened.append(self) or real_open(self, *a, **k))
    monkeypatch.chdir(tmp_path)  # a relative runs folder, as 'scratchnn serve web/served' gives
    refused = "metrics.csv is a link (or not a regular file); the page reads only regular files inside a run folder"
    with TestClient(create_app(Path("web/served")), base_url=LOCAL_BASE_URL) as client:
        curves = client.get("/api/runs/leak/curves")
        listed = {run["name"]: run for run in client.get("/api/runs").json()["runs"]}
        loaded = client.post("/api/runs/linked-model/load")
        text = "\n".join(r.text for r in (curves, loaded)) + json.dumps(listed)
    assert curves.status_code == 422 and curves.json()["detail"] == refused
    assert listed["leak"]["problem"] == refused and listed["served"]["problem"] == ""
    assert loaded.status_code == 422 and loaded.json()["detail"].startswith("model.safetensors is a link")
    assert listed["linked-model"]["problem"].startswith("model.safetensors is a link")
    assert not listed["linked-model"]["has_model"]
    assert SECRET not in text and "web/" not in text and str(tmp_path) not in text
    assert secret.resolve() not in [p.resolve() for p in opened]


def test_what_a_run_file_holds_is_not_quoted_back(model_path, tmp_path, monkeypatch):
    """A regular file (a hard link, a copy) may hold anything too: the reader's 'got ...' is not passed on."""
    _runs_beside(model_path, tmp_path / "web", "served", "odd", "odd-config")
    (tmp_path / "web" / "odd" / "metrics.csv").write_text(f"SECRET_API_KEY={SECRET}\n")
    (tmp_path / "web" / "odd-config" / "config.toml").write_text(f'{SECRET.replace("-", "_")} = "{SECRET}"\n')
    monkeypatch.chdir(tmp_path)
    with TestClient(create_app(Path("web/served")), base_url=LOCAL_BASE_URL) as client:
        curves = client.get("/api/runs/odd/curves")
        listed = {run["name"]: run for run in client.get("/api/runs").json()["runs"]}
    assert curves.status_code == 422, curves.text
    header = "metrics.csv: header needs the columns epoch, train_loss, train_accuracy once each"
    assert curves.json()["detail"] == header
    assert listed["odd"]["problem"].startswith("the doctor cannot read this run: metrics.csv: header needs")
    assert listed["odd-config"]["problem"].startswith("config.toml: unknown option(s); ")
    text = curves.text + json.dumps(listed)
    assert SECRET not in text and SECRET.replace("-", "_") not in text and "web/" not in text
    from scratchnn.web.runs import _short  # quotes go, apostrophes inside words stay (the review)
    assert _short(ValueError("the model's file doesn't load: unknown optimizer 'sgdx'")) == (
        "the model's file doesn't load: unknown optimizer …")


def test_the_command_lines_data_replaces_the_run_folders(model_path, shared_dir, tmp_path):
    """A bare model file gets its gallery from --csv, with the dev split of its own seed and dev size."""
    from scratchnn.data import DataSource

    bare = tmp_path / "bare.safetensors"
    bare.write_bytes(model_path.read_bytes())
    csv = shared_dir / "datasets/mnist/t10k-kaggle.csv.gz"
    with TestClient(create_app(bare, data=DataSource(csv=str(csv))), base_url=LOCAL_BASE_URL) as client:
        gallery = client.get("/api/gallery", params={"seed": 1}).json()
    with TestClient(create_app(model_path), base_url=LOCAL_BASE_URL) as client:
        same = client.get("/api/gallery", params={"seed": 1}).json()
    assert gallery == same and gallery["description"] == "dev set of csv t10k-kaggle.csv.gz"


# --- no absolute paths -------------------------------------------------------------------------

def test_model_summary_names_files_relative_to_the_run_folder(client, model_path):
    response = client.get("/api/model")
    summary = response.json()
    assert summary["path"] == "model.safetensors" and summary["name"] == model_path.parent.name
    assert summary["config"]["csv"] == "t10k-kaggle.csv.gz"
    assert str(model_path.parent.parent) not in response.text
    assert str(TrainConfig.load(model_path.parent / "config.toml").csv) not in response.text


# --- bodies refused before they are read -------------------------------------------------------

async def _call(app, scope, consumed: list, statuses: list, chunk: bytes = b"0" * 65536):
    """Call the ASGI app with a receive() that records every chunk it hands over."""
    scope = {"http_version": "1.1", "scheme": "http", "root_path": "", "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 8000), **scope}

    async def receive():
        consumed.append(len(chunk))
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message):
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)


def test_a_declared_oversized_body_is_refused_before_a_byte_is_read(model_path):
    declared = 10 * 1024 * 1024
    statuses, consumed, sent = [], [], []
    app = create_app(model_path)
    scope = {"type": "http", "method": "POST", "path": "/api/predict", "raw_path": b"/api/predict",
             "query_string": b"", "headers": [(b"host", b"localhost"), (b"content-type", b"application/json"),
                                              (b"content-length", str(declared).encode())]}
    asyncio.run(_call(app, scope, consumed, statuses))
    assert statuses == [413] and consumed == [], f"{len(consumed)} chunks read before refusing"
    with TestClient(app, base_url=LOCAL_BASE_URL) as client:
        response = client.post("/api/predict", content=b"0" * (declared // 2 + 1), headers={
            "content-type": "application/json"})
        sent.append(response)
    assert f"declared {declared // 2 + 1:,} bytes" in sent[0].json()["detail"]


def test_a_body_that_never_ends_is_refused_after_its_deadline(model_path):
    from scratchnn.web.limits import BodySizeLimit

    statuses, consumed = [], []

    async def app(scope, receive, send):
        raise AssertionError("the app was called")

    async def slow_call():
        limited = BodySizeLimit(app, body_seconds=0.2)
        scope = {"type": "http", "method": "POST", "path": "/", "headers": [(b"host", b"localhost")]}

        async def receive():
            consumed.append(1)
            await asyncio.sleep(0.05)  # a byte now and then, for ever
            return {"type": "http.request", "body": b"0", "more_body": True}

        async def send(message):
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await asyncio.wait_for(limited(scope, receive, send), timeout=30)  # hang guard

    asyncio.run(slow_call())
    assert statuses == [408] and 1 < len(consumed) < 1000


# --- the page's inference is in eval mode ------------------------------------------------------

def test_the_page_predicts_in_eval_mode(tmp_path):
    """Dropout and BatchNorm (as the default mlp preset has) change a training-mode pass: the page's
    answer must be the same twice and equal to model.predict_proba."""
    from scratchnn import Dense, ReLU, Sequential
    from scratchnn.nn.batchnorm import BatchNorm1d
    from scratchnn.nn.dropout import Dropout

    model = Sequential([Dense(784, 32, rng=0), BatchNorm1d(32), ReLU(), Dropout(0.5, rng=2), Dense(32, 10, rng=1)],
                       input_shape=(784,))
    rng = np.random.default_rng(0)
    for _ in range(20):  # move the running statistics away from 0 and 1
        model.forward(rng.random((64, 784), dtype=np.float32) * 3, training=True)
    path = save(model, tmp_path / "model.safetensors")
    x = np.zeros((28, 28), np.float32)
    x[4:24, 12:16] = 1.0
    with TestClient(create_app(path), base_url=LOCAL_BASE_URL) as client:
        responses = [client.post("/api/predict", json={"pixels": x.tolist(), "preprocess": False}) for _ in range(2)]
    assert [r.status_code for r in responses] == [200, 200], f"a training-mode pass? {responses[0].text}"
    answers = [response.json() for response in responses]
    expected = load(path).predict_proba(x.reshape(1, 784))[0]
    assert answers[0]["probabilities"] == answers[1]["probabilities"], "the same drawing got two answers"
    np.testing.assert_allclose(answers[0]["probabilities"], expected, rtol=1e-5, atol=1e-7,
                               err_msg="the page's probabilities are not model.predict_proba's (training mode?)")


def test_the_schemas_canvas_example_is_accepted(client):
    body = client.get("/openapi.json").json()["paths"]["/api/predict"]["post"]["requestBody"]
    example = body["content"]["application/json"]["schema"]["examples"][0]
    response = client.post("/api/predict", content=json.dumps(example), headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    assert response.json()["prediction"] == client.post("/api/predict", json={"pixels": drawn_one().tolist()}).json()[
        "prediction"] == 1
