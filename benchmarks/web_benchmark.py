"""Latency and robustness of the web API (`scratchnn serve`), and the page's answer time.

1. Latency of POST /api/predict for a drawn canvas, sent as the page sends it (112x112 grey
   values with 3 decimals, light ink on black: real MNIST dev digits scaled up 4x), measured
   in-process with FastAPI's TestClient and over HTTP against `scratchnn serve` on 127.0.0.1
   (one keep-alive connection). p50 / p95 / p99 / max of the client-side time, and the
   server's own preprocessing + forward time (the response's `milliseconds`).
2. A fuzz run: --fuzz N requests drawn by the hypothesis strategies of tests/web_support.py
   (broken JSON, wrong shapes, NaN, strings, random bytes, truncated images, bomb headers,
   bad queries...), counting answers by status; any 5xx is listed.
3. --browser: in headless Chromium (/usr/bin/chromium), digits drawn with the mouse; the time
   from the end of each stroke to the last change of the answer on screen.

The default model is a quick `mlp` preset (784-256-128-10, 3 epochs on the shared MNIST CSV).
The machine is shared: the load average is printed with the figures. Asserts nothing.

    python benchmarks/web_benchmark.py [--model runs/X] [--requests 2000] [--fuzz 10000] [--browser]
"""
from __future__ import annotations

import argparse
import collections
import http.client
import json
import logging
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT / "tests"))  # the fuzz strategies live with the tests

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def quick_mlp(out_dir: Path) -> Path:
    from scratchnn.training.presets import get_preset
    from scratchnn.training.run import train_run

    config = get_preset("mlp")
    config.epochs, config.csv, config.checkpoint_every = 3, str(SHARED / "datasets/mnist/t10k-kaggle.csv.gz"), 0
    print(f"Training a quick mlp (3 epochs) in {out_dir} ...", flush=True)
    return train_run(config, out_dir, log=lambda line: None, progress=False).model_path


def canvases(model_path: Path, count: int) -> list[bytes]:
    """JSON bodies as the page sends them: dev digits scaled up 4x to 112x112, 3 decimals."""
    from scratchnn.io import read_metadata
    from scratchnn.training.config import TrainConfig
    from scratchnn.training.run_data import load_set

    config = TrainConfig.from_dict(read_metadata(model_path)["config"])
    images = load_set(config, "dev", progress=False)[0][:count]
    return [json.dumps({"pixels": np.round(np.kron(image / 255, np.ones((4, 4))), 3).tolist()}).encode()
            for image in images]


def percentiles(label: str, seconds: list[float], server_ms: list[float]) -> None:
    ms = np.array(seconds) * 1000
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    s50, s99 = np.percentile(server_ms, [50, 99])
    print(f"  {label:<22} n={len(ms):>5}  p50 {p50:6.2f}  p95 {p95:6.2f}  p99 {p99:6.2f}  max {ms.max():7.2f} ms"
          f"   (server p50 {s50:.2f}, p99 {s99:.2f} ms)")


def in_process_latency(client, bodies: list[bytes], n: int) -> None:
    seconds, server = [], []
    for i in range(n + 50):
        start = time.perf_counter()
        response = client.post("/api/predict", content=bodies[i % len(bodies)],
                               headers={"content-type": "application/json"})
        elapsed = time.perf_counter() - start
        assert response.status_code == 200, response.text
        if i >= 50:  # the first 50 warm up
            seconds.append(elapsed)
            server.append(response.json()["milliseconds"])
    percentiles("TestClient in-process", seconds, server)


def start_server(model_path: Path) -> tuple[subprocess.Popen, int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "scratchnn", "serve", str(model_path), "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/model", timeout=1).close()
            return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("scratchnn serve did not start")


def http_latency(port: int, bodies: list[bytes], n: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port)
    seconds, server = [], []
    for i in range(n + 50):
        start = time.perf_counter()
        connection.request("POST", "/api/predict", body=bodies[i % len(bodies)],
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - start
        assert response.status == 200, data[:200]
        if i >= 50:
            seconds.append(elapsed)
            server.append(json.loads(data)["milliseconds"])
    connection.close()
    percentiles("uvicorn over HTTP", seconds, server)


def fuzz(client, n: int, seed: int) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hypothesis_seed
    from PIL import Image
    from web_support import api_requests

    statuses, failures, start = collections.Counter(), [], time.perf_counter()
    logging.getLogger("python_multipart").setLevel(logging.ERROR)  # it warns about each broken body
    # Pillow warns about headers between 89 and 179 megapixels; read_image refuses them anyway.
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)

    @hypothesis_seed(seed)
    @settings(max_examples=n, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(request=api_requests())
    def one(request):
        method, path, options = request
        response = client.request(method, path, **options)
        statuses[response.status_code] += 1
        if response.status_code >= 500:
            failures.append(f"{method} {path} -> {response.status_code}: {response.text[:200]}")
        elif response.status_code >= 400 and path.startswith("/api/") and not one_line_detail(response):
            statuses["refused in more than one line"] += 1
            failures.append(f"{method} {path} -> {response.status_code}, not one line: {response.text[:200]!r}")

    one()
    total = sum(count for status, count in statuses.items() if isinstance(status, int))
    server_errors = sum(count for status, count in statuses.items() if isinstance(status, int) and status >= 500)
    print(f"  {total:,} fuzzed requests in {time.perf_counter() - start:.1f} s: {server_errors} with a 5xx, "
          f"{statuses['refused in more than one line']} refused in more than one line")
    print("  by status: " + ", ".join(f"{status}: {count:,}" for status, count in sorted(statuses.items())
                                      if isinstance(status, int)))
    for failure in failures[:10]:
        print("   ", failure)


def one_line_detail(response) -> bool:
    """Whether a refusal is what the API promises: JSON whose detail is one line of text."""
    try:
        detail = response.json()["detail"]
    except (ValueError, KeyError, TypeError):
        return False
    return isinstance(detail, str) and "\n" not in detail


def browser_latency(port: int, strokes: int) -> None:
    from playwright.sync_api import sync_playwright

    def ring(cx, cy, rx, ry, n=24):
        return [(cx + rx * math.sin(2 * math.pi * k / n), cy - ry * math.cos(2 * math.pi * k / n)) for k in range(n + 1)]

    digits = {"1": [(0.52, 0.18), (0.5, 0.5), (0.48, 0.82)], "7": [(0.28, 0.22), (0.72, 0.22), (0.45, 0.85)],
              "0": ring(0.5, 0.5, 0.22, 0.32), "3": [(0.3, 0.2), (0.6, 0.18), (0.68, 0.32), (0.45, 0.48),
                                                     (0.7, 0.62), (0.62, 0.8), (0.3, 0.82)]}
    results = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(f"http://127.0.0.1:{port}")
        page.wait_for_function("() => document.querySelector('#model-line').textContent.includes('parameters')")
        page.evaluate("""() => {
            document.querySelector('#pad').addEventListener('pointerup', () => { window.strokeEnded = performance.now(); });
            new MutationObserver(() => { window.answerShown = performance.now(); })
                .observe(document.querySelector('#confidence'), {childList: true, characterData: true, subtree: true});
        }""")
        box = page.locator("#pad").bounding_box()
        for k in range(strokes):
            digit, points = list(digits.items())[k % len(digits)]
            page.click("#clear")
            page.evaluate("() => { window.strokeEnded = null; window.answerShown = null; }")
            at = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
            page.mouse.move(*at[0])
            page.mouse.down()
            for point in at[1:]:
                page.mouse.move(*point, steps=6)
            page.mouse.up()
            page.wait_for_function("() => window.strokeEnded !== null && window.answerShown > window.strokeEnded")
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(50)
            latency = page.evaluate("() => window.answerShown - window.strokeEnded")
            results.append((digit, page.locator("#prediction").inner_text(), latency))
        browser.close()
    ms = np.array([r[2] for r in results])
    right = sum(d == p for d, p, _ in results)
    print(f"  {len(results)} strokes: answer on screen p50 {np.median(ms):.0f} ms, max {ms.max():.0f} ms after the "
          f"stroke ended; {right}/{len(results)} predicted as drawn")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="a model file or run folder (default: train a quick mlp)")
    parser.add_argument("--requests", type=int, default=2000, help="timed predictions per client (default 2000)")
    parser.add_argument("--fuzz", type=int, default=10000, help="fuzzed requests (default 10000; 0 skips)")
    parser.add_argument("--no-http", action="store_true", help="skip the uvicorn-over-HTTP measurement")
    parser.add_argument("--browser", type=int, nargs="?", const=12, default=0, metavar="STROKES",
                        help="also time the page in headless Chromium (default 12 strokes)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fuzz run")
    args = parser.parse_args()

    from fastapi.testclient import TestClient
    from web_support import LOCAL_BASE_URL

    from scratchnn.io import load, resolve_model_path
    from scratchnn.web.app import create_app

    model_path = resolve_model_path(args.model) if args.model else quick_mlp(Path(tempfile.mkdtemp()) / "mlp")
    model = load(model_path)
    print(f"Model {model_path}: {model.widths()}, {model.num_parameters:,} parameters")
    print(f"Load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    bodies = canvases(model_path, 200)
    print(f"Latency of POST /api/predict, a drawn 112x112 canvas ({len(bodies[0]) / 1024:.0f} KB of JSON):")
    with TestClient(create_app(model_path), base_url=LOCAL_BASE_URL) as client:
        in_process_latency(client, bodies, args.requests)
    server = None
    if not args.no_http or args.browser:
        server, port = start_server(model_path)
    try:
        if not args.no_http:
            http_latency(port, bodies, args.requests)
        if args.browser:
            print("The page in headless Chromium:")
            browser_latency(port, args.browser)
    finally:
        if server is not None:
            server.terminate()
            server.wait()
    if args.fuzz:
        print("Fuzzing the API (in-process, server errors turned into responses):")
        with TestClient(create_app(model_path), raise_server_exceptions=False, base_url=LOCAL_BASE_URL) as client:
            fuzz(client, args.fuzz, args.seed)
    print(f"Load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
