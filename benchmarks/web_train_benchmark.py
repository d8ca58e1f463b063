"""Training from the page: how soon the first curve point arrives, and whether drawing stays fast.

Against `scratchnn serve` in a subprocess on 127.0.0.1 (the served run: `seed` on 2,000 real
digits from ../shared; runs train on the same CSV):

1. Time to the first curve point: from POST /api/train {"preset": "seed"} to the first `batch`
   event on /api/train/events (spawning the worker, imports, loading the data, one step), over
   --starts runs (each stopped once it has its point).
2. POST /api/predict latency (one keep-alive connection, a drawn "1" of 112x112 grey values as
   the page sends it) idle, then while an `mlp` run trains: p50 / p99 / max.

The machine is shared: the load average is printed with the figures. Asserts nothing.

    python benchmarks/web_train_benchmark.py [--requests 300] [--starts 3]
"""
from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]


def request(port, method, path, body=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    data = None if body is None else json.dumps(body)
    connection.request(method, path, data, {"Content-Type": "application/json"} if data else {})
    response = connection.getresponse()
    return response.status, response.read()


def first_point_seconds(port) -> float:
    start = time.perf_counter()
    status, text = request(port, "POST", "/api/train", {"preset": "seed"})
    assert status == 202, text
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("GET", "/api/train/events")
    response = connection.getresponse()
    seconds = None
    while seconds is None:
        line = response.readline().decode()
        if line.startswith("data: ") and json.loads(line[6:])["type"] == "batch":
            seconds = time.perf_counter() - start
    connection.close()
    request(port, "POST", "/api/train/stop")
    wait_idle(port)
    return seconds


def wait_idle(port):
    while json.loads(request(port, "GET", "/api/train")[1])["state"]["status"] not in ("idle", "finished", "stopped",
                                                                                         "failed"):
        time.sleep(0.1)


def predict_latencies(port, n) -> np.ndarray:
    from web_support import drawn_one

    body = json.dumps({"pixels": drawn_one().tolist()})
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        connection.request("POST", "/api/predict", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        times.append((time.perf_counter() - start) * 1000)
    return np.array(times)


def describe(times: np.ndarray) -> str:
    return (f"p50 {np.percentile(times, 50):6.2f} ms  p99 {np.percentile(times, 99):6.2f} ms  "
            f"max {times.max():6.2f} ms  ({len(times)} requests)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--starts", type=int, default=3)
    args = parser.parse_args()
    from scratchnn.training.config import TrainConfig
    from scratchnn.training.run import train_run

    work = Path(tempfile.mkdtemp(prefix="web-train-bench-"))
    csv = work / "digits-2000.csv"
    with gzip.open(SHARED / "datasets/mnist/t10k-kaggle.csv.gz", "rt") as source:
        csv.write_text("".join(next(source) for _ in range(2001)))
    train_run(TrainConfig(preset="seed", epochs=20, csv=str(csv), checkpoint_every=0), work / "runs" / "base",
              log=lambda line: None, progress=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    server = subprocess.Popen([sys.executable, "-m", "scratchnn", "serve", str(work / "runs" / "base"), "--port",
                               str(port)], cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        for _ in range(200):
            try:
                request(port, "GET", "/api/model")
                break
            except OSError:
                time.sleep(0.2)
        print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        starts = [first_point_seconds(port) for _ in range(args.starts)]
        print(f"first curve point after Start (seed): {', '.join(f'{s:.2f} s' for s in starts)}")
        predict_latencies(port, 20)  # warm up
        print(f"/api/predict idle:            {describe(predict_latencies(port, args.requests))}")
        status, text = request(port, "POST", "/api/train", {"preset": "mlp", "epochs": 40})
        assert status == 202, text
        while json.loads(request(port, "GET", "/api/train")[1])["state"]["status"] != "running":
            time.sleep(0.1)
        print(f"/api/predict while mlp trains: {describe(predict_latencies(port, args.requests))}")
        print(f"load average {os.getloadavg()[0]:.2f}")
        request(port, "POST", "/api/train/stop")
        wait_idle(port)
    finally:
        server.terminate()
        server.wait(15)


if __name__ == "__main__":
    main()
