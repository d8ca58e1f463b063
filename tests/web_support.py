"""Shared by the web tests and benchmarks/web_benchmark.py: a tiny trained model, drawn digits,
crafted files, and hypothesis strategies for requests the API must answer without a 5xx."""
from __future__ import annotations

import importlib
import io
import json
import os
import struct
import zlib
from urllib.parse import quote
from pathlib import Path

import numpy as np
import pytest
from hypothesis import strategies as st

MNIST_CSV = "datasets/mnist/t10k-kaggle.csv.gz"
LOCAL_BASE_URL = "http://localhost"  # the app answers only its own names; TestClient's default is testserver


def missing(message: str):
    """Skip the test for a missing dependency, except under CI (any non-empty CI variable), where
    it fails: CI must run every web test."""
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI must run the web tests)", pytrace=False)
    pytest.skip(message, allow_module_level=True)


def require(module: str, install: str = "pip install -e '.[test]'"):
    """``import module``, or ``missing`` when it is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError:
        missing(f"{module} is not installed: {install}")


def train_tiny_model(shared: Path, out_dir: Path) -> Path:
    """A 784-64-10 ReLU network, 3 epochs of Adam on 9,000 real MNIST digits (~3 s); reused if there."""
    from scratchnn.training.config import TrainConfig
    from scratchnn.training.run import train_run

    model = out_dir / "model.safetensors"
    if not model.exists():
        config = TrainConfig(preset="web-test", hidden=[64], init="he_normal", bias_init="zeros", optimizer="adam",
                             lr=2e-3, epochs=3, batch_size=64, dev_size=1000, eval_every=1, checkpoint_every=0,
                             csv=str(shared / MNIST_CSV))
        train_run(config, out_dir, log=lambda line: None, progress=False)
    return model


@pytest.fixture(scope="session")
def model_path(shared_dir, tmp_path_factory):
    """The tiny model, trained once per test session (import the fixture into a test module)."""
    return train_tiny_model(shared_dir, tmp_path_factory.getbasetemp() / "web-model")


@pytest.fixture(scope="module")
def client(model_path):
    """FastAPI's TestClient on the tiny model's app, addressed as localhost."""
    from fastapi.testclient import TestClient

    from scratchnn.web.app import create_app

    with TestClient(create_app(model_path), base_url=LOCAL_BASE_URL) as client:
        yield client


def drawn_one(side: int = 112, left: float = 0.3) -> np.ndarray:
    """A canvas (side, side) as the page sends it: a slanted vertical stroke, light ink on black,
    deliberately off centre (at ``left`` of the width) so the preprocessing has to move it."""
    y, x = np.mgrid[0:side, 0:side] / side
    centre = left + 0.06 * (0.5 - y)  # leans a little, as a hand-drawn 1 does
    stroke = np.clip(1 - np.abs(x - centre) / 0.035, 0, 1) * ((y > 0.15) & (y < 0.85))
    return np.round(stroke, 3)


def photo_of_one(fmt: str = "PNG", size=(160, 200)) -> bytes:
    """A grey 'photo': dark ink on light, slightly uneven paper; a vertical stroke right of centre."""
    from PIL import Image, ImageDraw

    w, h = size
    paper = (225 + 15 * np.linspace(0, 1, w)[None, :] * np.ones((h, 1))).astype(np.uint8)
    image = Image.fromarray(paper, "L")
    ImageDraw.Draw(image).line([(w * 0.62, h * 0.18), (w * 0.58, h * 0.82)], fill=30, width=max(6, w // 16))
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width x height grey pixels but holds a few bytes: a decompression bomb's header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 1024))
            + chunk(b"IEND", b""))


# --- hypothesis strategies: (method, path, keyword arguments for the test client) --------------------

_json_leaf = (st.none() | st.booleans() | st.integers(-10**20, 10**20)
              | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8))
_any_json = st.recursive(_json_leaf, lambda inner: st.lists(inner, max_size=6)
                         | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=40)


@st.composite
def pixel_grids(draw):
    """Nearly valid canvases: shapes around the limits, ragged rows, values out of range, NaN."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    height = draw(st.sampled_from([0, 1, 27, 28, 29, 56, 112, 280, 281]))
    width = draw(st.sampled_from([28, 28, 112, 27, 281]))
    kind = draw(st.sampled_from(["empty", "ink", "noise", "scaled255", "negative"]))
    grid = np.zeros((height, width))
    if kind == "ink" and height:
        grid[height // 4: 3 * height // 4, width // 3: width // 3 + max(2, width // 10)] = 1.0
    elif kind == "noise":
        grid = rng.random((height, width))
    elif kind == "scaled255":
        grid = rng.integers(0, 256, (height, width)).astype(float)
    elif kind == "negative":
        grid = -rng.random((height, width))
    rows = grid.round(3).tolist()
    if rows and draw(st.booleans()):
        rows[rng.integers(len(rows))] = draw(st.lists(_json_leaf, max_size=4))  # one bad row
    return rows


@st.composite
def image_bytes(draw):
    """Uploads: small real images (blank, noisy, a stroke), truncated ones, random bytes, bomb headers."""
    from PIL import Image

    kind = draw(st.sampled_from(["png", "jpeg", "gif", "truncated", "bytes", "bomb", "empty"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "empty":
        return b""
    if kind == "bomb":
        return png_header_only(draw(st.integers(1, 2**31 - 1)), draw(st.integers(1, 2**31 - 1)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    h, w = draw(st.integers(1, 64)), draw(st.integers(1, 64))
    pixels = draw(st.sampled_from(["blank", "noise", "stroke"]))
    array = np.full((h, w), 255, np.uint8)
    if pixels == "noise":
        array = rng.integers(0, 256, (h, w), dtype=np.uint8)
    elif pixels == "stroke":
        array[h // 5: max(h // 5 + 1, 4 * h // 5), w // 2: w // 2 + max(1, w // 8)] = 0
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "GIF" if kind == "gif" else "JPEG" if kind == "jpeg" else "PNG")
    data = buffer.getvalue()
    return data[: draw(st.integers(0, len(data) - 1))] if kind == "truncated" else data


# Settings a page may send, and values around their limits; the fuzzed server allows 3 epochs.
TRAIN_FIELDS = ["preset", "epochs", "lr", "hidden", "conv", "activation", "dropout", "batch_size", "fault",
                "doctor", "eval_every", "csv", "nope"]
TRAIN_VALUES = [0, 1, 3, -1, 0.5, 1e9, "seed", "mlp", "relu", "zero-init", [], [0], [4], [5000], ["zero-init"],
                True, None, "", float("nan")]


def train_requests(draw):
    """POST /api/train with near-valid settings (some start a 3-epoch run), stop/pause/resume, events."""
    action = draw(st.sampled_from(["start", "start", "stop", "pause", "resume", "raw"]))
    if action == "raw":
        return "POST", "/api/train", {"content": draw(st.binary(max_size=60)),
                                      "headers": {"content-type": "application/json"}}
    if action != "start":
        return "POST", f"/api/train/{action}", {}
    body = draw(st.dictionaries(st.sampled_from(TRAIN_FIELDS), st.sampled_from(TRAIN_VALUES) | _json_leaf, max_size=4))
    return "POST", "/api/train", {"content": json.dumps(body).encode(), "headers": {"content-type": "application/json"}}


@st.composite
def api_requests(draw):
    """Any request a client (or an attacker) might send to the API."""
    kind = draw(st.sampled_from(["canvas", "json", "raw", "upload", "form", "gallery", "train", "runs", "other"]))
    if kind == "train":
        return train_requests(draw)
    if kind == "runs":
        name = draw(st.sampled_from(["base", "..", "%2e%2e", "a%2Fb", "nope", ".x", "x" * 120]) | st.text(max_size=12).map(lambda text: quote(text, safe="")))
        method, path = draw(st.sampled_from([("GET", "/api/runs"), ("GET", f"/api/runs/{name}/curves"),
                                             ("POST", f"/api/runs/{name}/load"), ("DELETE", "/api/runs")]))
        return method, path, {}
    if kind == "canvas":
        body = {"pixels": draw(pixel_grids())}
        if draw(st.booleans()):
            body["preprocess"] = draw(_json_leaf)
        return "POST", "/api/predict", {"content": json.dumps(body).encode(),
                                        "headers": {"content-type": "application/json"}}
    if kind == "json":
        return "POST", "/api/predict", {"content": json.dumps(draw(_any_json)).encode(),
                                        "headers": {"content-type": "application/json"}}
    if kind == "raw":
        content_type = draw(st.sampled_from(["application/json", "text/plain", "multipart/form-data",
                                             "multipart/form-data; boundary=x", "", "image/png"]))
        return "POST", "/api/predict", {"content": draw(st.binary(max_size=200)),
                                        "headers": {"content-type": content_type}}
    if kind == "upload":
        data = {"ink": draw(st.sampled_from(["auto", "dark", "light", "", "purple"]))} if draw(st.booleans()) else {}
        return "POST", "/api/predict", {"files": {"file": ("x.png", draw(image_bytes()), "image/png")}, "data": data}
    if kind == "form":  # multipart without a file, or with the file under another name
        return "POST", "/api/predict", {"data": {draw(st.sampled_from(["file", "image", "ink"])): draw(st.text(max_size=8))},
                                        "files": {"other": ("a.txt", b"abc", "text/plain")}}
    if kind == "gallery":
        query = {name: draw(st.sampled_from(values)) for name, values in (
            ("set", ["dev", "test", "train", "", "DEV"]), ("n", ["1", "12", "0", "101", "-3", "x", "1e3"]),
            ("seed", ["0", "7", "-1", "4294967296", "abc"])) if draw(st.booleans())}
        return "GET", "/api/gallery", {"params": query}
    method, path = draw(st.sampled_from([("GET", "/api/model"), ("GET", "/api/predict"), ("DELETE", "/api/model"),
                                         ("GET", "/"), ("GET", "/static/app.js"), ("GET", "/static/../app.py"),
                                         ("GET", "/nope"), ("GET", "/openapi.json")]))
    return method, path, {}
