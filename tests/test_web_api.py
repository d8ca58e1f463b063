"""The web API in-process with FastAPI's TestClient: good requests give the model's own numbers,
bad ones a 4xx with a one-line message."""
import io
import json
import os
import re
import shutil
import socket
import sys
import time

import numpy as np
import pytest
from web_support import require  # noqa: E402

require("fastapi", "pip install 'scratchnn[web]'")
from fastapi.testclient import TestClient  # noqa: E402
from web_support import LOCAL_BASE_URL, client, drawn_one, model_path, photo_of_one, png_header_only, train_tiny_model  # noqa: E402,F401

from scratchnn.cli.main import main  # noqa: E402
from scratchnn.data import scale_pixels  # noqa: E402
from scratchnn.io import load, read_metadata  # noqa: E402
from scratchnn.web.app import STATIC_DIR, create_app  # noqa: E402
from scratchnn.web.inference import newest_model  # noqa: E402


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    ys, xs = np.mgrid[0:image.shape[0], 0:image.shape[1]]
    return float((ys * image).sum() / image.sum()), float((xs * image).sum() / image.sum())


def assert_error(response, status: int, *words: str):
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and len(detail) < 300, detail
    for word in words:
        assert word.lower() in detail.lower(), f"{word!r} not in {detail!r}"


# --- the page ----------------------------------------------------------------------------------

def test_page_and_its_files_are_served_with_a_self_only_policy(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("static/app.js", "static/style.css", "static/favicon.svg"):  # relative: it works under a path
        assert f'"{asset}"' in page.text and f'"/{asset}"' not in page.text
        assert client.get(f"/{asset}").status_code == 200
    files = sorted(path.name for path in STATIC_DIR.iterdir())
    assert files == ["announce.js", "api.js", "app.js", "chart.js", "favicon.svg", "index.html", "pad.js", "render.js",
                     "runs.js", "settings.js", "style.css", "train.js"]
    for name in files:  # nothing from a CDN, no web fonts: the page works offline
        text = client.get(f"/static/{name}").text
        assert "://" not in text.replace("http://www.w3.org/2000/svg", ""), name


def test_openapi_documents_both_ways_to_predict(client):
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/api/predict"]["post"]["requestBody"]["content"]
    assert "pixels" in body["application/json"]["schema"]["properties"]
    assert body["multipart/form-data"]["schema"]["properties"]["file"]["format"] == "binary"
    assert {"/api/model", "/api/gallery"} <= set(schema["paths"])


# --- good requests ------------------------------------------------------------------------------

def test_drawn_canvas_is_preprocessed_like_mnist(client, model_path):
    response = client.post("/api/predict", json={"pixels": drawn_one().tolist()})
    assert response.status_code == 200, response.text
    result = response.json()
    image = np.array(result["input"])
    assert image.shape == (28, 28) and image.min() >= 0 and image.max() <= 1
    # drawn at 30% of the width, the stroke arrives centred, as MNIST digits are
    cy, cx = centre_of_mass(image)
    assert abs(cy - 14) < 1 and abs(cx - 14) < 1, (cy, cx)
    probs = np.array(result["probabilities"])
    assert probs.shape == (10,) and abs(probs.sum() - 1) < 1e-6
    assert result["prediction"] == int(probs.argmax()) and result["label"] == str(result["prediction"])
    assert result["prediction"] == 1, probs.round(3)
    assert [a["shape"] for a in result["activations"]] == [[64]]
    assert result["milliseconds"] > 0


def test_prediction_and_activations_equal_the_models_own(client, model_path):
    model = load(model_path)
    rng = np.random.default_rng(0)
    digit = rng.integers(0, 256, (28, 28)).astype(np.uint8) * (rng.random((28, 28)) < 0.3)
    x = scale_pixels(digit[None].astype(np.uint8), model.input_shape)
    response = client.post("/api/predict", json={"pixels": x.reshape(28, 28).tolist(), "preprocess": False})
    assert response.status_code == 200, response.text
    result = response.json()
    np.testing.assert_allclose(result["input"], np.round(x.reshape(28, 28), 3), atol=1e-6)
    np.testing.assert_allclose(result["probabilities"], model.predict_proba(x)[0], rtol=1e-5, atol=1e-7)
    hidden = model.layers[1].forward(model.layers[0].forward(x))[0]  # Dense -> ReLU
    activation = result["activations"][0]
    assert activation["index"] == 1 and activation["name"] == "ReLU" and activation["maps"] is None
    np.testing.assert_allclose(activation["values"], hidden, atol=1e-4)


def test_a_prediction_short_of_memory_is_a_503_not_a_bare_500(client, monkeypatch):
    """The resource audit: under ulimit -v a large photo's MemoryError answered 'Internal Server
    Error' with a traceback on the console."""
    from scratchnn.web import app as web_app

    def short(*args, **kwargs):
        raise MemoryError("Unable to allocate 61.0 MiB for an array")
    monkeypatch.setattr(web_app, "to_mnist_and_digits", short)
    monkeypatch.setattr(web_app, "to_mnist", short)
    response = client.post("/api/predict", json={"pixels": drawn_one().tolist()})
    assert response.status_code == 503 and response.json()["detail"].startswith("the server is short of memory")


def test_a_cnn_shows_its_feature_maps_pooled_small(tmp_path):
    from scratchnn import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential
    from scratchnn.io import save
    from scratchnn.web.inference import MAX_MAP_SIDE, MAX_MAPS

    model = Sequential([Conv2D(1, 20, 3, rng=0), ReLU(), MaxPool2D(2), Flatten(), Dense(20 * 13 * 13, 10, rng=1)],
                       input_shape=(1, 28, 28))
    save(model, tmp_path / "cnn.safetensors")
    with TestClient(create_app(tmp_path / "cnn.safetensors"), base_url=LOCAL_BASE_URL) as cnn:
        response = cnn.post("/api/predict", json={"pixels": drawn_one().tolist()})
    assert response.status_code == 200, response.text
    result = response.json()
    (layer,) = result["activations"]
    assert layer["name"] == "ReLU" and layer["shape"] == [20, 26, 26] and layer["values"] is None
    maps = np.array(layer["maps"])
    assert maps.shape == (MAX_MAPS, 13, 13) and 13 <= MAX_MAP_SIDE  # 26x26 average-pooled by 2
    x = np.array(result["input"], np.float32).reshape(1, 1, 28, 28)
    relu = model.layers[1].forward(model.layers[0].forward(x))[0]
    np.testing.assert_allclose(maps, relu[:MAX_MAPS].reshape(MAX_MAPS, 13, 2, 13, 2).mean(axis=(2, 4)), atol=2e-3)
    # "input" is rounded to 3 decimals for the page, so the numbers agree to about that
    np.testing.assert_allclose(result["probabilities"], model.predict_proba(x)[0], rtol=2e-3, atol=1e-5)
    # the maps and the input travel with their decimals only, not as float32's 17-digit expansions
    decimals = re.findall(r"\.(\d+)", json.dumps({"maps": layer["maps"], "input": result["input"]}))
    assert max(map(len, decimals)) <= 4, max(decimals, key=len)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_photo_upload_is_preprocessed_like_mnist(client, fmt):
    response = client.post("/api/predict", files={"file": (f"one.{fmt.lower()}", photo_of_one(fmt), f"image/{fmt}")})
    assert response.status_code == 200, response.text
    image = np.array(response.json()["input"])
    # dark ink on light paper becomes light ink on black, centred
    assert image[0].max() == 0 and image[:, 0].max() == 0 and image.max() > 0.9
    cy, cx = centre_of_mass(image)
    assert abs(cy - 14) < 1 and abs(cx - 14) < 1, (cy, cx)
    assert response.json()["prediction"] == 1


def test_an_upload_of_a_number_is_read_digit_by_digit(client, shared_dir):
    from PIL import Image

    from scratchnn.data import read_idx_pair

    images, labels = read_idx_pair(shared_dir / "datasets/mnist/t10k-images-idx3-ubyte.gz",
                                   shared_dir / "datasets/mnist/t10k-labels-idx1-ubyte.gz")
    number = np.hstack([np.pad(images[i], 4) for i in (0, 1, 2)])  # 7, 2, 1: a number, dark on white
    buffer = io.BytesIO()
    Image.fromarray(255 - number).resize((number.shape[1] * 4, number.shape[0] * 4)).save(buffer, "PNG")
    answer = client.post("/api/predict", files={"file": ("721.png", buffer.getvalue(), "image/png")}).json()
    assert labels[:3].tolist() == [7, 2, 1] and answer["digits_seen"] == 3
    # read digit by digit as scratchnn predict reads a number (this small model reads the 7 and the 1)
    assert len(answer["number"]) == 3 and answer["number"][0] == "7" and answer["number"][2] == "1", answer["number"]
    assert len(answer["number_probabilities"]) == 3 and all(0 < p <= 1 for p in answer["number_probabilities"])
    one = client.post("/api/predict", files={"file": ("one.png", photo_of_one(), "image/png")}).json()
    assert one["digits_seen"] == 1 and one["number"] == "" and one["number_probabilities"] == []
    assert client.post("/api/predict", json={"pixels": drawn_one().tolist()}).json()["digits_seen"] == 1  # a canvas


def test_ink_can_be_named_for_an_upload(client):
    def post(**data):
        return client.post("/api/predict", files={"file": ("one.png", photo_of_one(), "image/png")}, data=data)

    dark, auto, light = post(ink="dark"), post(), post(ink="light")
    assert dark.status_code == auto.status_code == 200
    assert dark.json()["input"] == auto.json()["input"]  # auto sees dark ink on light paper
    # told the ink is light, the paper itself is the "ink": something else entirely, or nothing at all
    assert light.status_code == 422 or light.json()["input"] != dark.json()["input"]


def test_an_upload_must_be_a_common_photo_format(client):
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (64, 64), 200).save(buffer, "TIFF")
    assert_error(client.post("/api/predict", files={"file": ("x.tiff", buffer.getvalue(), "image/tiff")}), 422,
                 "not an image", "PNG", "JPEG")


def test_a_big_photo_is_refused_by_its_header_or_decoded_small(client):
    from PIL import Image

    from scratchnn.web.app import UPLOAD_MAX_PIXELS

    big = Image.new("L", (5000, 4000), 235)  # 20 megapixels of blank paper: a few kB as PNG
    buffer = io.BytesIO()
    big.save(buffer, "PNG")
    assert_error(client.post("/api/predict", files={"file": ("big.png", buffer.getvalue(), "image/png")}), 422,
                 f"{UPLOAD_MAX_PIXELS:,}")
    photo = Image.open(io.BytesIO(photo_of_one("JPEG", size=(1600, 2000))))  # 3.2 megapixels
    buffer = io.BytesIO()
    photo.resize((3200, 4000)).save(buffer, "JPEG")  # 12.8 megapixels: allowed, decoded at 1/4
    response = client.post("/api/predict", files={"file": ("one.jpg", buffer.getvalue(), "image/jpeg")})
    assert response.status_code == 200, response.text
    assert response.json()["prediction"] == 1


def test_model_summary(client, model_path):
    summary = client.get("/api/model").json()
    model, metadata = load(model_path), read_metadata(model_path)
    assert summary["num_parameters"] == model.num_parameters == 784 * 64 + 64 + 64 * 10 + 10
    assert summary["architecture"] == "784 -> 64 -> 10"
    assert [layer["type"] for layer in summary["layers"]] == ["Dense", "ReLU", "Dense"]
    assert [layer["parameters"] for layer in summary["layers"]] == [784 * 64 + 64, 0, 64 * 10 + 10]
    assert summary["metrics"]["dev_accuracy"] == metadata["metrics"]["dev_accuracy"]
    assert summary["config"]["hidden"] == [64] and summary["classes"] == [str(d) for d in range(10)]
    assert summary["summary"] == model.summary()


def test_gallery_shows_real_mistakes_reproducibly(client, model_path):
    response = client.get("/api/gallery", params={"set": "dev", "n": 7, "seed": 3})
    assert response.status_code == 200, response.text
    gallery = response.json()
    accuracy = read_metadata(model_path)["metrics"]["dev_accuracy"]
    assert gallery["size"] == 1000 and gallery["mistakes"] == round((1 - accuracy) * 1000)
    assert len(gallery["items"]) == 7 and len({item["index"] for item in gallery["items"]}) == 7
    model = load(model_path)
    for item in gallery["items"]:
        pixels = np.array(item["pixels"], np.uint8)
        assert pixels.shape == (28, 28) and item["label"] != item["prediction"]
        assert model.predict(scale_pixels(pixels[None], model.input_shape))[0] == item["prediction"]
    assert client.get("/api/gallery", params={"set": "dev", "n": 7, "seed": 3}).json() == gallery
    other = client.get("/api/gallery", params={"set": "dev", "n": 7, "seed": 4}).json()
    assert [i["index"] for i in other["items"]] != [i["index"] for i in gallery["items"]]
    unseeded = client.get("/api/gallery").json()
    assert len(unseeded["items"]) == 12 and isinstance(unseeded["seed"], int)


# --- bad requests -------------------------------------------------------------------------------

def post_json(client, body):
    return client.post("/api/predict", content=body if isinstance(body, bytes) else json.dumps(body).encode(),
                       headers={"content-type": "application/json"})


@pytest.mark.parametrize("body, words", [
    ({"pixels": [[0.0] * 28] * 27}, ["pixels", "at least 28"]),
    ({"pixels": [[0.0] * 281] * 28}, ["pixels[0]", "at most 280"]),
    ({"pixels": [[0.0] * 28] * 28 + [[0.0] * 29]}, ["rectangle", "row 28"]),
    ({"pixels": [["0.5"] * 28] * 28}, ["pixels[0][0]", "number", "783 more"]),
    (b'{"pixels": [[NaN, 0, 0]]}', ["finite"]),
    ({"pixels": [[255.0] * 28] * 28}, ["less than or equal to 1"]),
    ({"pixels": [[-0.1] * 28] * 28}, ["greater than or equal to 0"]),
    ({"pixels": [[0.0] * 112] * 112, "preprocess": False}, ["28x28"]),
    ({"pixels": [[0.0] * 28] * 28, "colour": "red"}, ["colour", "extra"]),
    ({"image": []}, ["image", "extra", "1 more"]),
    ({"\n": None}, ['["\\n"]', "extra", "1 more"]),  # a made-up field name is quoted: the error stays one line
    ({"x" * 5000: 1}, ['["' + "x" * 40 + '..."]', "extra"]),
    ([1, 2, 3], ["object", 'send a JSON object {"pixels"']),
    (b"{not json", ["json", 'send a JSON object {"pixels"']),
])
def test_bad_canvas_is_refused_with_a_clear_message(client, body, words):
    assert_error(post_json(client, body), 422, *words)


def test_empty_canvas_is_refused(client):
    assert_error(client.post("/api/predict", json={"pixels": [[0.0] * 112] * 112}), 422, "no ink")


def test_a_filled_canvas_or_a_lone_bar_says_what_it_is(client):
    """The page audit: both got 'no ink found', the bar of a 7 with plenty of ink on it."""
    assert_error(client.post("/api/predict", json={"pixels": [[1.0] * 112] * 112}), 422, "100% of the canvas is ink",
                 "press Clear")
    bar = np.zeros((112, 112))  # as the page sends it: 112 a side, an 8-pixel pen 3 rows thick
    bar[24:27, 24:88] = 1.0
    assert_error(client.post("/api/predict", json={"pixels": bar.tolist()}), 422, "a line or a dash, too flat")


def test_a_broken_multipart_body_says_how_to_send_a_photo(client):
    response = client.post("/api/predict", content=b"xx", headers={"content-type": "multipart/form-data"})
    assert_error(response, 400, "Missing boundary", "curl -F file=@photo.png")


def test_a_click_on_the_pad_is_no_digit(client):
    """One click of the page's pen (22 px on 280) in a corner got a confident class; now a 422."""
    rows, cols = np.mgrid[:280, :280]
    click = (((rows - 30) ** 2 + (cols - 250) ** 2) <= 11 ** 2).astype(float)
    assert_error(client.post("/api/predict", json={"pixels": click.tolist()}), 422, "the ink is a dot, not a digit")


def test_oversized_body_is_refused_before_it_is_read(client):
    body = b'{"pixels": [' + b"0," * (3 * 1024 * 1024) + b"0]}"
    assert_error(post_json(client, body), 413, "too large", "5 MB")


def test_oversized_streamed_body_is_refused_while_it_streams(client):
    sent = []

    def chunks():  # no Content-Length: the server must count
        for _ in range(100):
            sent.append(1)
            yield b"0" * (256 * 1024)

    response = client.post("/api/predict", content=chunks(), headers={"content-type": "application/json"})
    assert_error(response, 413, "too large")
    assert "content-length" not in response.request.headers


def test_body_limit_is_configurable(model_path):
    with TestClient(create_app(model_path, max_body_bytes=1000), base_url=LOCAL_BASE_URL) as small:
        assert_error(post_json(small, {"pixels": [[0] * 400]}), 413, "too large")
        assert_error(post_json(small, {"pixels": [[0] * 30]}), 422, "pixels")  # under the limit: validated


@pytest.mark.parametrize("data, words", [
    (b"this is not an image", ["not an image"]),
    (b"", ["not an image"]),
    (png_header_only(20_000, 20_000), ["pixels", "bomb"]),
])
def test_bad_upload_is_refused_with_a_clear_message(client, data, words):
    assert_error(client.post("/api/predict", files={"file": ("x.png", data, "image/png")}), 422, *words)


def test_truncated_image_is_refused(client):
    data = photo_of_one("PNG")
    assert_error(client.post("/api/predict", files={"file": ("x.png", data[:len(data) // 2], "image/png")}), 422)


def test_blank_photo_is_refused(client):
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (80, 80), 240).save(buffer, "PNG")
    assert_error(client.post("/api/predict", files={"file": ("x.png", buffer.getvalue(), "image/png")}), 422, "no ink")


def test_form_without_a_file_or_with_a_bad_ink_is_refused(client):
    assert_error(client.post("/api/predict", data={"file": "not a file"}, files={"x": ("a", b"a")}), 422, "'file'")
    response = client.post("/api/predict", files={"file": ("one.png", photo_of_one(), "image/png")},
                           data={"ink": "purple"})
    assert_error(response, 422, "ink", "auto")


def test_unknown_content_type_is_refused(client):
    response = client.post("/api/predict", content=b"0,0,0", headers={"content-type": "text/csv"})
    assert_error(response, 415, "text/csv", "application/json", "multipart")


@pytest.mark.parametrize("params, status, words", [
    ({"n": 0}, 422, ["n", "greater than or equal to 1"]),
    ({"n": 101}, 422, ["n", "less than or equal to 100"]),
    ({"set": "train"}, 422, ["set", "dev"]),
    ({"seed": -1}, 422, ["seed"]),
    ({"set": "test"}, 422, ["no test split"]),  # the tiny model was trained on a CSV: the schema says so
])
def test_bad_gallery_query_is_refused(client, params, status, words):
    assert_error(client.get("/api/gallery", params=params), status, *words)


# --- scratchnn serve ----------------------------------------------------------------------------

def test_serve_without_a_model_says_how_to_get_one(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["serve"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("scratchnn serve: error: no trained model under runs/") and "\n" not in error
    assert "scratchnn train" in error


def test_serve_without_the_web_extra_names_the_install_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn -> ImportError
    assert main(["serve", str(tmp_path)]) == 1
    assert "pip install 'scratchnn[web]'" in capsys.readouterr().err


def test_newest_run_is_the_default_model(tmp_path, model_path):
    runs = tmp_path / "runs"
    for age, name in ((200, "20240101-000000-old"), (100, "20240102-000000-new"), (300, "20240103-000000-touched")):
        (runs / name).mkdir(parents=True)
        target = runs / name / "model.safetensors"
        target.write_bytes(model_path.read_bytes())
        os.utime(target, (1e9 - age, 1e9 - age))
    (runs / "no-model-here").mkdir()
    assert newest_model(runs) == runs / "20240102-000000-new" / "model.safetensors"
    (runs / "z-broken").mkdir()  # the many-runs audit: a newer empty file kept the server from starting
    (runs / "z-broken" / "model.safetensors").write_bytes(b"")
    (runs / "z-dir" / "model.safetensors").mkdir(parents=True)
    said = []
    assert newest_model(runs, log=said.append) == runs / "20240102-000000-new" / "model.safetensors"
    assert len(said) == 2 and all(line.startswith("Note: skipping ") for line in said), said
    copied = runs / "20240104-000000-copied" / "model.safetensors"  # from a machine whose clock was ahead
    copied.parent.mkdir()
    copied.write_bytes(model_path.read_bytes())
    os.utime(copied, (time.time() + 1e8, time.time() + 1e8))
    assert newest_model(runs) == runs / "20240102-000000-new" / "model.safetensors"  # it was, until 2030


def test_serve_on_a_busy_port_says_so_in_one_line(model_path, capsys):
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        assert main(["serve", str(model_path), "--port", str(port)]) == 1
    error = capsys.readouterr().err.strip()
    assert f"cannot listen on 127.0.0.1:{port}" in error and "--port" in error and "\n" not in error


def test_the_gallery_never_downloads(tmp_path, shared_dir, monkeypatch):
    """A run on a named dataset whose test files are not on this machine: 409, at once, offline."""
    from scratchnn.io import save
    from scratchnn.training.config import TrainConfig

    model = load(train_tiny_model(shared_dir, tmp_path / "run"))
    config = {**read_metadata(tmp_path / "run")["config"], "csv": "", "dataset": "mnist",
              "data_dir": str(tmp_path / "empty")}
    save(model, tmp_path / "mnist-run" / "model.safetensors", metadata={"config": config})
    TrainConfig.from_dict(config).save(tmp_path / "mnist-run" / "config.toml")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("SCRATCHNN_DATA", raising=False)
    monkeypatch.setattr("scratchnn.data.sources.SYSTEM_DIR", tmp_path / "debian")

    def no_network(*args, **kwargs):
        raise AssertionError("the gallery tried to download")

    monkeypatch.setattr("urllib.request.urlopen", no_network)
    with TestClient(create_app(tmp_path / "mnist-run"), base_url=LOCAL_BASE_URL) as client:
        response = client.get("/api/gallery", params={"set": "test"})
    assert_error(response, 409, "dataset mnist", "test files are not on this machine", "never downloads")
    assert str(tmp_path) not in response.text  # the server's folders are not a visitor's business


def test_a_runs_augmentation_is_shown_in_words(tmp_path):
    from scratchnn.data.augment import DIGITS
    from scratchnn.io import save
    from scratchnn.training.config import TrainConfig
    from scratchnn.web.inference import ModelService
    from scratchnn.web.runs import public_config

    config = TrainConfig(augment=True, hidden=[4]).with_augmentation_recorded()
    assert public_config(config)["augmentation"] == DIGITS.describe()
    path = save(config.build_model(np.random.default_rng(0)), tmp_path / "m.safetensors",
                metadata={"config": config.to_dict()})
    assert ModelService(path).summary()["config"]["augmentation"] == DIGITS.describe()


def test_a_run_whose_config_is_huge_is_listed_with_its_problem(tmp_path):
    """A run folder's config.toml is read bounded: a huge one is the run's one-line problem in
    the list, not a slow or failed request (a config.toml that is not a regular file, such as a
    link to /dev/zero, is no run at all)."""
    from scratchnn.web.runs import RunFolders

    (tmp_path / "huge").mkdir()
    (tmp_path / "huge" / "config.toml").write_bytes(b"#" * (1 << 20))
    problem = RunFolders(tmp_path).describe("huge")["problem"]
    assert "config.toml: over 64 KiB, too big for a config file" in problem and str(tmp_path) not in problem


def test_the_runs_list_reads_a_model_file_once_per_version(tmp_path, monkeypatch):
    """Every page asks for the list; verifying each run's model file whole each time took 20 ms a
    run (cnn-best), so a model is read again only once it changed (its time or size)."""
    from scratchnn.io import save
    from scratchnn.training.config import TrainConfig
    from scratchnn.web import runs

    config = TrainConfig(hidden=[4])
    run = tmp_path / "20261206-120000-mlp"
    run.mkdir()
    config.save(run / "config.toml")
    model = config.build_model(np.random.default_rng(0))
    save(model, run / "model.safetensors", metadata={"config": config.to_dict(), "metrics": {"dev_accuracy": 0.5}})
    reads = []
    monkeypatch.setattr(runs, "read_metadata", lambda path: reads.append(path) or read_metadata(path))
    folders = runs.RunFolders(tmp_path)
    assert [folders.describe(run.name)["dev_accuracy"] for _ in range(3)] == [0.5] * 3 and len(reads) == 1
    assert {key[1] for key in folders._cache} == {run.name}
    (tmp_path / "20261206-130000-gone").mkdir()
    config.save(tmp_path / "20261206-130000-gone" / "config.toml")
    folders.described()
    shutil.rmtree(tmp_path / "20261206-130000-gone")
    folders.described()  # a run deleted since: its entries go (they were kept for good)
    assert {key[1] for key in folders._cache} == {run.name}
    save(model, run / "model.safetensors", metadata={"config": config.to_dict(), "metrics": {"dev_accuracy": 0.75}})
    os.utime(run / "model.safetensors", ns=(1, 1))  # a new version even where the clock is coarse
    assert folders.describe(run.name)["dev_accuracy"] == 0.75 and len(reads) == 2


def test_the_runs_list_survives_a_folder_it_cannot_read_or_that_goes_meanwhile(tmp_path, monkeypatch):
    """The many-runs audit: one folder of mode 000 emptied the Runs list (its check raised inside the
    listing), and a run deleted while the list was worked out made the whole list a 404 naming it;
    four pages asking at once each ran the doctor on every run."""
    import threading
    import time
    from pathlib import Path

    from scratchnn.training.config import TrainConfig
    from scratchnn.web import runs

    for name in ("run-a", "run-b", "run-c"):
        (tmp_path / name).mkdir()
        TrainConfig().save(tmp_path / name / "config.toml")
    real_is_file = Path.is_file

    def unreadable(path):
        if path.parent.name == "run-b":
            raise PermissionError(13, "Permission denied", str(path))
        return real_is_file(path)
    monkeypatch.setattr(Path, "is_file", unreadable)
    folders = runs.RunFolders(tmp_path)
    assert sorted(folders.names()) == ["run-a", "run-c"]
    monkeypatch.setattr(Path, "is_file", real_is_file)
    described = folders.describe

    def deleted_meanwhile(name):
        if name == "run-c":
            raise runs.RunNotFound(f"no run named {name!r} in the runs folder")
        return described(name)
    monkeypatch.setattr(folders, "describe", deleted_meanwhile)
    assert sorted(entry["name"] for entry in folders.described()[0]) == ["run-a", "run-b"]  # (of the names)
    monkeypatch.setattr(folders, "describe", described)
    for age, name in enumerate(("run-c", "run-b", "run-a")):  # run-a the oldest
        os.utime(tmp_path / name / "config.toml", (1e9 - age, 1e9 - age))
    (tmp_path / "run-a" / "checkpoint.safetensors").write_bytes(b"")
    (tmp_path / "run-a" / "checkpoint.safetensors").unlink()  # its folder the newest: the list's order stays
    assert folders.names() == ["run-c", "run-b", "run-a"]
    monkeypatch.setattr(runs, "MAX_RUNS", 1)  # past the cap: the served run too, and how many there are
    shown, total, newest = folders.described(current="run-a")
    assert [entry["name"] for entry in shown] == ["run-c", "run-a"] and (total, newest) == (3, 1)
    computed = []
    for _ in range(4):  # at once: one computation, the others wait for it
        threading.Thread(target=folders._once, args=("x", tmp_path / "run-a", (tmp_path / "run-a" / "config.toml",),
                                                     lambda: computed.append(1) or time.sleep(0.2))).start()
    time.sleep(0.6)
    assert computed == [1]


def test_predictions_run_on_a_few_threads_at_a_time(model_path, monkeypatch):
    """A burst of drawings is prepared PREDICTORS at a time: the model's lock takes them one by
    one anyway, and each thread the work ran on kept its own C memory pool (a server of 90 MB
    was 218 MB after bursts of 50; now 130 MB)."""
    import threading
    import time

    from scratchnn.web import app as web_app

    running, most, lock = 0, 0, threading.Lock()
    timed = web_app._timed

    def slow_timed(*args):
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        try:
            return timed(*args)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(web_app, "_timed", slow_timed)
    body = {"pixels": drawn_one().tolist()}
    with TestClient(create_app(model_path), base_url=LOCAL_BASE_URL) as client:
        answers = []
        threads = [threading.Thread(target=lambda: answers.append(client.post("/api/predict", json=body)))
                   for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert [a.status_code for a in answers] == [200] * 8
    assert 1 < most <= web_app.PREDICTORS, most


def test_a_long_runs_curves_are_thinned_for_the_page(tmp_path, monkeypatch):
    """The many-runs audit: 200,000 evaluations were 28.8 MB of JSON for a chart a few hundred pixels wide."""
    from scratchnn.training.config import TrainConfig
    from scratchnn.training.fit import EpochResult
    from scratchnn.training.history import write_metrics_csv
    from scratchnn.web import runs

    run = tmp_path / "long"
    run.mkdir()
    TrainConfig().save(run / "config.toml")
    write_metrics_csv(run / "metrics.csv", [EpochResult(e, 1.0, 0.5, 1.0, 0.5, 0.1, 0.01) for e in range(1, 5002)])
    monkeypatch.setattr(runs, "MAX_POINTS", 100)
    rows = runs.RunFolders(tmp_path).curves("long")
    assert len(rows) == 100 and rows[0]["epoch"] == 1 and rows[-1]["epoch"] == 5001
    monkeypatch.setattr(runs, "MAX_POINTS", 5000)  # one past it: not the last row twice (the review)
    epochs = [row["epoch"] for row in runs.RunFolders(tmp_path).curves("long")]
    assert len(epochs) == 5000 == len(set(epochs)) and epochs[-1] == 5001
