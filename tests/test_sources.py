"""Named datasets: search order, environment variables, and downloads from a local http.server."""
import dataclasses
import functools
import hashlib
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from scratchnn.data import download, sources
from scratchnn.data.idx import write_idx
from scratchnn.data.sources import DATASETS, DatasetSpec, RemoteFile, get_dataset, load_dataset, locate
from scratchnn.errors import DataError

TRAIN = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
TEST = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def make_split(folder, names=TRAIN, n=4, fill=0, raw=False):
    """Write a tiny IDX pair (n images of 28x28 filled with ``fill``) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    images = np.full((n, 28, 28), fill, np.uint8)
    labels = np.arange(n, dtype=np.uint8) % 10
    strip = (lambda name: name.removesuffix(".gz")) if raw else (lambda name: name)
    return write_idx(folder / strip(names[0]), images), write_idx(folder / strip(names[1]), labels)


def md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


class Local:
    """A threaded HTTP server on 127.0.0.1, on an ephemeral port: ``serve`` starts it with a handler
    (``tls``: an ssl.SSLContext, for https), ``close`` stops it."""

    def serve(self, handler, tls=None):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, args=(0.01,), daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Server(Local):
    """A static file server on 127.0.0.1 (ephemeral port) that counts its requests."""

    def __init__(self, root):
        self.root, self.requests = root, []
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.serve(functools.partial(Handler, directory=str(root)))


@pytest.fixture
def served(env, monkeypatch):
    """A server with both splits of a toy dataset 'toy', registered with checksums that match."""
    www = env / "www"
    make_split(www, TRAIN, n=5, fill=1)
    make_split(www, TEST, n=3, fill=2)
    server = Server(www)
    spec = DatasetSpec("toy", train=tuple(RemoteFile(name, md5(www / name)) for name in TRAIN),
                       test=tuple(RemoteFile(name, md5(www / name)) for name in TEST),
                       mirrors=(server.url,), classes=tuple("0123456789"))
    monkeypatch.setitem(sources.DATASETS, "toy", spec)
    yield server
    server.close()


def cache(env):
    return env / "cache" / "scratchnn" / "toy"


def closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/"


def fails(*args, **kwargs) -> str:
    """The one-line DataError message of locate(*args, **kwargs)."""
    with pytest.raises(DataError) as info:
        locate(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message, message
    return message


# --- downloads -------------------------------------------------------------------------------

def test_download_verifies_caches_and_is_not_repeated(env, served):
    images, labels = locate("toy", "train", progress=False)
    assert images == cache(env) / TRAIN[0] and labels == cache(env) / TRAIN[1]
    assert sorted(p.name for p in cache(env).iterdir()) == sorted(TRAIN)  # no .part files
    assert len(served.requests) == 2
    x, y = load_dataset("toy", "train", progress=False)
    assert x.shape == (5, 28, 28) and (x == 1).all() and y.tolist() == [0, 1, 2, 3, 4]
    assert len(served.requests) == 2  # the second time came from the cache


def test_only_the_missing_file_is_downloaded_next_to_a_raw_one(env, served):
    make_split(cache(env), raw=True)
    (cache(env) / TRAIN[0].removesuffix(".gz")).unlink()
    images, labels = locate("toy", "train", progress=False)
    assert (images.name, labels.name) == (TRAIN[0], TRAIN[1].removesuffix(".gz"))
    assert served.requests == ["/" + TRAIN[0]]


def test_only_the_requested_split_is_downloaded(env, served):
    locate("toy", "test", progress=False)
    assert sorted(p.name for p in cache(env).iterdir()) == sorted(TEST)
    assert sorted(served.requests) == sorted("/" + name for name in TEST)


def test_tampered_download_is_rejected_and_leaves_nothing(env, served):
    (served.root / TRAIN[0]).write_bytes(b"\x1f\x8b tampered")
    message = fails("toy", "train", progress=False)
    assert "checksum mismatch" in message and "MD5" in message and "Looked in" in message
    assert not (env / "cache").exists() or not list((env / "cache").rglob("*"))


def test_sha256_is_checked_when_known(env, served, monkeypatch):
    spec = get_dataset("toy")
    wrong = dataclasses.replace(spec.train[1], sha256="0" * 64)
    monkeypatch.setitem(sources.DATASETS, "toy", dataclasses.replace(spec, train=(spec.train[0], wrong)))
    assert "SHA-256" in fails("toy", "train", progress=False)
    assert not (cache(env) / TRAIN[1]).exists()


@pytest.mark.parametrize("announced", [True, False])
def test_a_download_larger_than_any_dataset_file_is_cut_off(env, served, monkeypatch, announced):
    """A hostile mirror (or a man in the middle of an http:// one) cannot fill the disk."""
    monkeypatch.setattr(download, "MAX_DOWNLOAD", 20)  # the toy files are 50 to 70 bytes
    if not announced:  # a server that sends no Content-Length: the bytes are counted as they come
        monkeypatch.setattr(urllib.request, "urlopen", _without_length(urllib.request.urlopen))  # fetch's import
    message = fails("toy", "train", progress=False)
    assert "sends more than 20 bytes" in message, message
    assert not (env / "cache").exists() or not list((env / "cache").rglob("*"))


def _without_length(urlopen):
    def opener(*args, **kwargs):
        response = urlopen(*args, **kwargs)
        del response.headers["Content-Length"]
        return response
    return opener


def test_next_mirror_is_tried(env, served):
    images, _ = locate("toy", "train", mirrors=[served.url + "missing/", served.url], progress=False)
    assert images.is_file()
    assert served.requests[0] == "/missing/" + TRAIN[0]


def test_404_gives_one_line_that_lists_the_places(env, served):
    start = time.perf_counter()
    message = fails("toy", "train", mirrors=[served.url + "missing/"], progress=False)
    assert time.perf_counter() - start < 30  # a hang guard (a 404 is answered at once), not a speed target
    assert message.startswith("toy: train files not found. Looked in: ")
    assert str(env / "system" / "toy") in message and str(cache(env)) in message
    assert "HTTP 404" in message and f"Put {TRAIN[0]} and {TRAIN[1]}" in message
    assert "--data-dir DIR" in message
    assert "(in Python data_dir=DIR), or set SCRATCHNN_DATA=DIR" in message  # a notebook has no flags


class Hostile(Local):
    """A server on 127.0.0.1 that misbehaves as asked, on any path: "trickle" (a byte every 0.1 s of
    a promised 1,000), "cut" (500 of a promised 1,000 bytes, then the connection closed), "stall"
    (500 of them, then 3 s of silence), "loop" (a redirect to itself), "portal" (a login page,
    as a captive portal sends for any address) or "reset" (the connection closed before any
    answer); with ``then``, it serves
    the files of that folder from its second request."""

    def __init__(self, how, then=None):
        self.requests = []
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                if then is not None and len(server.requests) > 1:
                    return super().do_GET()
                if how == "reset":  # the connection dropped before a byte of the answer
                    self.close_connection = True
                    return
                if how == "loop":
                    self.send_response(302)
                    self.send_header("Location", self.path)
                    self.end_headers()
                    return
                if how == "portal":  # a Wi-Fi login page, served for any address
                    page = b"<!DOCTYPE html>\n<html><body><form>Log in to Airport Wi-Fi</form></body></html>\n"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(page)))
                    self.end_headers()
                    self.wfile.write(page)
                    return
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.end_headers()
                try:
                    for sent in range(500 if how == "cut" else 1000):
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        if how == "trickle" or (how == "stall" and sent == 499):
                            time.sleep(0.1 if how == "trickle" else 3)
                except OSError:  # the client gave up
                    pass
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.serve(functools.partial(Handler, directory=str(then or ".")))


@pytest.mark.parametrize("how, said", [
    ("trickle", "too slow: "),                                       # it would never end (the download audit)
    ("cut", "the connection closed after 500 of 1,000 bytes; try again"),  # it said "checksum mismatch"
    ("loop", "HTTP 302"),                                            # urllib's reason ran over three lines
    ("stall", "went silent after 500 of 1,000 bytes (nothing for 0.5 s)"),  # "timed out", and not tried again
    ("portal", "the server sent a web page (79 bytes), not the file: a Wi-Fi or proxy login page? "),  # "checksum"
])
def test_a_misbehaving_server_is_one_clear_line_and_leaves_nothing_unusable(env, served, noisy, monkeypatch, how,
                                                                           said):
    """Nothing is cached but a connection cut off mid-file, whose bytes the next try continues
    from: a 'cut' of the wrong bytes (this server's x's) is found out by the checksum, and the
    file is then downloaded from byte 0."""
    monkeypatch.setattr(download, "SLOW_AFTER", 0.5)  # the real 30 s, shortened
    monkeypatch.setattr(download, "TIMEOUT", 0.5)
    hostile = Hostile(how)
    try:
        start = time.perf_counter()
        message = fails("toy", "train", mirrors=[hostile.url], progress=False)  # one line: fails() checks
        assert time.perf_counter() - start < 30  # a hang guard, not a speed target
    finally:
        hostile.close()
    assert said in message, message
    parts = sorted(cache(env).glob(".*.part")) if cache(env).exists() else []
    cut = how in ("cut", "stall")
    assert ("(the 500 bytes received are kept: the next try continues from there)" in message) == cut, message
    assert [p.read_bytes() for p in parts] == [b"x" * 500] * cut and not list(cache(env).glob("[!.]*"))
    ranged = Ranged(noisy, cut=10**9)
    try:
        images, _ = locate("toy", "train", mirrors=[ranged.url], progress=False)
    finally:
        ranged.close()
    assert images.read_bytes() == (noisy / TRAIN[0]).read_bytes()
    assert ranged.ranges[:2] == (["bytes=500-", None] if cut else [None, None]), ranged.ranges
    assert not list(cache(env).glob(".*.part"))


def test_an_https_certificate_that_cannot_be_verified_says_why_it_happens(env, served, tmp_path):
    """A proxy that inspects HTTPS, or macOS's python.org Python before its certificates are
    installed: 'certificate verify failed' alone left a learner nowhere (a local HTTPS server with
    a self-signed certificate stands in for both)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    key, certificate = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", certificate,
                    "-days", "1", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    https = Local()
    https.serve(SimpleHTTPRequestHandler, tls=context)
    try:
        message = fails("toy", "train", mirrors=[https.url], progress=False)
    finally:
        https.close()
    assert "certificate verify failed" in message and "'Install Certificates.command'" in message, message
    assert "SSL_CERT_FILE" in message, message


@pytest.mark.parametrize("how", ["cut", "stall", "reset"])
def test_a_connection_cut_off_is_tried_once_more(env, served, capsys, monkeypatch, how):
    """The download audit: Fashion-MNIST and EMNIST have one mirror each, so one network drop was fatal;
    a connection that goes silent mid-file (a read timeout) is one too, and one dropped before any
    byte came is tried once more all the same."""
    monkeypatch.setattr(download, "TIMEOUT", 0.5)  # the real 10 s, shortened
    hostile = Hostile(how, then=env / "www")
    try:
        images, _ = locate("toy", "train", mirrors=[hostile.url])
    finally:
        hostile.close()
    assert images.is_file() and hostile.requests == [f"/{TRAIN[0]}", f"/{TRAIN[0]}", f"/{TRAIN[1]}"]
    said = capsys.readouterr().err.splitlines()  # the rest asked for; this server sends it all again
    rest = "" if how == "reset" else ", asking for the rest from byte 500"
    assert said[1] == f"Downloading {hostile.url}{TRAIN[0]} into {cache(env)} again{rest}", said
    whole = f"{hostile.url}{TRAIN[0]} sends the whole file again (it ignores a request for the rest): from byte 0"
    assert (whole in said) == (how != "reset"), said  # 'the rest' was asked for, not received


class Ranged(Local):
    """A server on 127.0.0.1 of ``folder``'s files that honours Range requests (206) and cuts each
    answer off after ``cut`` bytes (a list: one a request, the last one from then on). ``lie``: its
    206 says another part than the one asked for; ``ignore``: it sends the whole file every time;
    ``parts``: it answers every request with a 206 of ``cut`` bytes, as some mirrors do; ``stall``:
    after the cut it goes silent for 3 s instead of closing the connection; ``unsatisfiable``: it
    answers a Range with 416, as for a file that has become shorter; ``claim``: the Content-Range it
    sends with a 206, whatever was asked."""

    def __init__(self, folder, cut, lie=False, ignore=False, parts=False, stall=False, unsatisfiable=False,
                 claim=None):
        self.ranges = []
        server, cuts = self, cut if isinstance(cut, list) else [cut]

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                data = (folder / self.path.lstrip("/")).read_bytes()
                asked = None if ignore else self.headers.get("Range")
                server.ranges.append(self.headers.get("Range"))
                first = int(asked.removeprefix("bytes=").rstrip("-")) if asked else 0
                if asked and unsatisfiable:
                    self.send_error(416)
                    return
                size = cuts[min(len(server.ranges), len(cuts)) - 1]
                last = min(first + size, len(data)) - 1 if parts else len(data) - 1
                self.send_response(206 if asked or parts else 200)
                if asked or parts:
                    self.send_header("Content-Range", claim or f"bytes {first + lie}-{last}/{len(data)}")
                self.send_header("Content-Length", str(last + 1 - first))
                self.end_headers()
                try:
                    self.wfile.write(data[first:first + size])
                    self.wfile.flush()
                    if stall:
                        time.sleep(3)
                except OSError:  # the client gave up
                    pass
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.serve(Handler)


@pytest.fixture
def noisy(env, monkeypatch):
    """The toy dataset's train split as 50 images of noise (40 kB gzipped, where the served ones
    are a few hundred bytes), registered with their checksums."""
    folder = env / "noisy"
    folder.mkdir()
    rng = np.random.default_rng(0)
    write_idx(folder / TRAIN[0], rng.integers(0, 256, (50, 28, 28), dtype=np.uint8))
    write_idx(folder / TRAIN[1], np.arange(50, dtype=np.uint8) % 10)
    spec = dataclasses.replace(sources.DATASETS["toy"], train=tuple(RemoteFile(n, md5(folder / n)) for n in TRAIN))
    monkeypatch.setitem(sources.DATASETS, "toy", spec)
    return folder


def test_a_download_cut_off_asks_for_the_rest_and_not_the_whole_file_again(env, served, noisy, capsys):
    """A cut was tried once more from the start: EMNIST's half-gigabyte zip, cut at 400 MB, began
    again from 0 and a second cut was fatal. The rest is asked for, while each try gets further."""
    step = (noisy / TRAIN[0]).stat().st_size // 4 + 1
    ranged = Ranged(noisy, cut=step)  # four tries for the images
    try:
        images, labels = locate("toy", "train", mirrors=[ranged.url], progress=True)
    finally:
        ranged.close()
    said = capsys.readouterr().err
    assert f"again, asking for the rest from byte {3 * step:,}\n" in said and "whole file again" not in said, said
    assert images.read_bytes() == (noisy / TRAIN[0]).read_bytes()
    assert labels.read_bytes() == (noisy / TRAIN[1]).read_bytes()
    assert ranged.ranges[:5] == [None, f"bytes={step}-", f"bytes={2 * step}-", f"bytes={3 * step}-", None]
    assert not any(p.name.endswith(".part") for p in cache(env).glob(".*"))


def test_a_download_that_gets_no_further_or_the_wrong_part_is_given_up(env, served, noisy):
    ranged = Ranged(noisy, cut=100, lie=True)
    try:
        message = fails("toy", "train", mirrors=[ranged.url], progress=False)
    finally:
        ranged.close()
    assert "the server sent another part of the file than asked for (bytes=100-, got Content-Range 'bytes 101-" \
        in message, message
    whole = (noisy / TRAIN[0]).stat().st_size
    ranged = Ranged(noisy, cut=100, claim=f"bytes 100-{whole}/{whole}")  # a part past the file's last byte
    try:
        message = fails("toy", "train", mirrors=[ranged.url], progress=False)
    finally:
        ranged.close()
    assert f"(bytes=100-, got Content-Range 'bytes 100-{whole}/{whole}')" in message, message
    step = (noisy / TRAIN[0]).stat().st_size // 10
    ranged = Ranged(noisy, cut=step)  # ten tries needed
    try:
        message = fails("toy", "train", mirrors=[ranged.url], progress=False)
    finally:
        ranged.close()
    assert len(ranged.ranges) == sources.TRIES and f"the connection closed after {5 * step:,} of " in message, message
    assert f"(the {5 * step:,} bytes received are kept: the next try continues from there)" in message, message
    ranged = Ranged(noisy, cut=2 * step)  # the next try: where the last one gave up, not from 0
    try:
        images, _ = locate("toy", "train", mirrors=[ranged.url], progress=False)
    finally:
        ranged.close()
    assert images.read_bytes() == (noisy / TRAIN[0]).read_bytes() and ranged.ranges[0] == f"bytes={5 * step}-"
    assert not any(p.name.endswith(".part") for p in cache(env).glob(".*"))


def test_a_server_that_sends_parts_or_goes_silent_is_asked_for_the_rest(env, served, noisy, monkeypatch):
    """The review: a 206 of the file's first part, to a request that asked for no part, was a
    checksum mismatch; a connection gone silent keeps what came for the next try as a cut one does."""
    step = (noisy / TRAIN[0]).stat().st_size // 3 + 1
    parts = Ranged(noisy, cut=step, parts=True)
    try:
        images, _ = locate("toy", "train", mirrors=[parts.url], progress=False)
    finally:
        parts.close()
    assert images.read_bytes() == (noisy / TRAIN[0]).read_bytes() and parts.ranges[:3] == [
        None, f"bytes={step}-", f"bytes={2 * step}-"], parts.ranges
    images.unlink()
    monkeypatch.setattr(download, "TIMEOUT", 0.5)  # the real 10 s, shortened
    silent = Ranged(noisy, cut=[step, 10**9], stall=True)
    try:
        images, _ = locate("toy", "train", mirrors=[silent.url], progress=False)
    finally:
        silent.close()
    assert images.read_bytes() == (noisy / TRAIN[0]).read_bytes() and silent.ranges[:2] == [None, f"bytes={step}-"]
    images.unlink()  # a part of a file whose length the server does not say (Content-Range: bytes N-M/*)
    whole = (noisy / TRAIN[0]).stat().st_size
    unsized = Ranged(noisy, cut=[step, 10**9], claim=f"bytes {step}-{whole - 1}/*")
    try:
        images, _ = locate("toy", "train", mirrors=[unsized.url], progress=False)
    finally:
        unsized.close()
    assert images.read_bytes() == (noisy / TRAIN[0]).read_bytes() and unsized.ranges[:2] == [None, f"bytes={step}-"]


def test_a_server_that_starts_again_and_gets_no_further_is_not_tried_five_times(env, served, noisy):
    """The review: a server that ignores Range and is cut off earlier each time was tried five times
    from byte 0 (for EMNIST's zip, five downloads of up to half a gigabyte)."""
    restarts = Ranged(noisy, cut=[8000, 1000, 500, 100], ignore=True)
    try:
        message = fails("toy", "train", mirrors=[restarts.url], progress=False)
    finally:
        restarts.close()
    assert len(restarts.ranges) == 2 and "the connection closed after 1,000 of " in message, message


def test_a_part_the_file_no_longer_has_starts_it_again(env, served, noisy):
    """The review: a 416 (Range Not Satisfiable: the file is shorter than when it was cut off, it
    changed) failed the mirror; it is downloaded again from its first byte."""
    ranged = Ranged(noisy, cut=[(noisy / TRAIN[0]).stat().st_size // 2, 10**9], unsatisfiable=True)
    try:
        images, _ = locate("toy", "train", mirrors=[ranged.url], progress=False)
    finally:
        ranged.close()
    assert images.read_bytes() == (noisy / TRAIN[0]).read_bytes()
    assert ranged.ranges[:3] == [None, f"bytes={(noisy / TRAIN[0]).stat().st_size // 2}-", None], ranged.ranges
    images.unlink()  # the new download is cut off sooner than the old one was: it is its own progress
    whole = (noisy / TRAIN[0]).stat().st_size
    ranged = Ranged(noisy, cut=[whole // 2, 0, whole // 3, 0, 10**9], unsatisfiable=True)
    try:
        images, _ = locate("toy", "train", mirrors=[ranged.url], progress=False)
    finally:
        ranged.close()
    assert images.read_bytes() == (noisy / TRAIN[0]).read_bytes(), ranged.ranges


@pytest.mark.parametrize("how", ["deleted", "written to"])
def test_a_temp_file_lost_between_tries_starts_the_file_again(env, served, noisy, monkeypatch, how):
    """The review: the checksums are of the bytes received, so a temp file that lost them (deleted, or
    written by another hand) between two tries would have been appended to and cached, corrupt."""
    real_fetch = sources.fetch

    def losing(url, remote, cache, progress, partial=None):
        if partial is not None and how == "deleted":
            partial.tmp.unlink()
        elif partial is not None:
            with open(partial.tmp, "ab") as out:
                out.write(b"someone else's bytes")
        return real_fetch(url, remote, cache, progress, partial)

    monkeypatch.setattr(sources, "fetch", losing)
    ranged = Ranged(noisy, cut=[(noisy / TRAIN[0]).stat().st_size // 2, 10**9])
    try:
        images, _ = locate("toy", "train", mirrors=[ranged.url], progress=False)
    finally:
        ranged.close()
    assert images.read_bytes() == (noisy / TRAIN[0]).read_bytes() and ranged.ranges[:2] == [None, None]


def part_of(env, pid, name):
    """Where a download of TRAIN[0] by process ``pid`` of this machine keeps what it received."""
    return cache(env) / f".{TRAIN[0]}.{download.HOST}-{pid}-{name}.part"


def dead_pid():
    """The process id of a process that has ended."""
    done = subprocess.run(["python3", "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_an_interrupted_download_is_continued_by_the_next(env, served, noisy, monkeypatch):
    """Ctrl+C (or a kill) at 400 MB of EMNIST's zip lost it all: the next download began at 0.
    What came is kept, and the next download, in this process or another, asks for the rest."""
    monkeypatch.setattr(download, "CHUNK", 1000)
    whole = (noisy / TRAIN[0]).read_bytes()
    blocks, real_write = [], download._write_all

    def interrupted(out, block):
        if len(blocks) == 3:
            raise KeyboardInterrupt
        blocks.append(block)
        real_write(out, block)

    monkeypatch.setattr(download, "_write_all", interrupted)
    ranged = Ranged(noisy, cut=10**9)
    try:
        with pytest.raises(KeyboardInterrupt):
            locate("toy", "train", mirrors=[ranged.url], progress=False)
        monkeypatch.setattr(download, "_write_all", real_write)
        (part,) = cache(env).glob(".*.part")
        assert part.read_bytes() == whole[:3000], len(part.read_bytes())
        images, _ = locate("toy", "train", mirrors=[ranged.url], progress=True)  # this process again (a notebook)
        assert images.read_bytes() == whole and ranged.ranges[-3:] == [None, "bytes=3000-", None], ranged.ranges
        images.unlink()
        killed = part_of(env, dead_pid(), "k1ll3d")  # SIGKILL: its process is gone
        killed.write_bytes(whole[:5000])
        smaller = part_of(env, dead_pid(), "sm4ll")  # the largest is continued, the rest removed
        smaller.write_bytes(whole[:2000])
        live = part_of(env, os.getppid(), "4l1ve")  # a download writing now, in another process
        live.write_bytes(whole[:9000])
        elsewhere = cache(env) / f".{TRAIN[0]}.0ther0ne-{dead_pid()}-n4s.part"  # another machine's, sharing the cache
        elsewhere.write_bytes(whole[:9500])
        images, _ = locate("toy", "train", mirrors=[ranged.url], progress=False)
        assert images.read_bytes() == whole and ranged.ranges[-1] == "bytes=5000-", ranged.ranges
        assert live.exists() and elsewhere.exists() and not smaller.exists()
        images.unlink()
        done = part_of(env, dead_pid(), "d0ne")  # killed after its last byte, before its rename
        done.write_bytes(whole)
        asked = len(ranged.ranges)
        images, _ = locate("toy", "train", mirrors=[ranged.url], progress=False)
        assert images.read_bytes() == whole and len(ranged.ranges) == asked  # nothing asked for
    finally:
        ranged.close()
    assert not done.exists() and not killed.exists()


def test_interrupted_bytes_of_another_file_are_found_out_and_a_planted_link_not_followed(env, served, noisy,
                                                                                        tmp_path, capsys, monkeypatch):
    """The checksum is of the whole file, old bytes and new: a temp file of an older version (or
    damaged) fails it, and the file is downloaded once more from 0. A link in the cache is not
    appended to (an interrupted download's temp file is a plain file)."""
    whole = (noisy / TRAIN[0]).read_bytes()
    folder = cache(env)
    folder.mkdir(parents=True)
    part_of(env, dead_pid(), "0ld").write_bytes(b"y" * 4000)
    outside = tmp_path / "precious.txt"
    outside.write_bytes(b"keep me")
    (folder / f".{TRAIN[1]}.{download.HOST}-{dead_pid()}-l1nk.part").symlink_to(outside)
    part_of(env, dead_pid(), "h4ge").write_bytes(b"z" * 50_000)  # more than the file may be: removed, unread
    monkeypatch.setattr(download, "MAX_DOWNLOAD", 45_000)
    ranged = Ranged(noisy, cut=10**9)
    try:
        images, labels = locate("toy", "train", mirrors=[ranged.url], progress=True)
    finally:
        ranged.close()
    assert images.read_bytes() == whole and ranged.ranges[:2] == ["bytes=4000-", None], ranged.ranges
    assert labels.read_bytes() == (noisy / TRAIN[1]).read_bytes() and ranged.ranges[2] is None
    assert outside.read_bytes() == b"keep me" and not list(folder.glob(".*.part"))
    err = capsys.readouterr().err
    assert "  continuing from byte 4,000, where an interrupted download of it stopped" in err, err
    assert f"  {TRAIN[0]} does not match its checksum after continuing an interrupted download: downloading it " \
        "again from byte 0" in err, err


def test_a_download_thought_gone_writes_on_into_its_own_file_not_the_cache(env, served, noisy):
    """The review: a download in another pid namespace (or stopped with Ctrl+Z past STALE_AFTER)
    looks gone; its temp file, renamed into the next download's, took both downloads' bytes, and
    the cache kept the mix (its checksum was of the second's bytes only). Copied, it is not."""
    whole = (noisy / TRAIN[0]).read_bytes()
    part = part_of(env, dead_pid(), "st1ll")
    cache(env).mkdir(parents=True)
    with open(part, "ab", buffering=0) as still_writing:
        still_writing.write(whole[:3000])
        ranged = Ranged(noisy, cut=10**9)
        try:
            images, _ = locate("toy", "train", mirrors=[ranged.url], progress=False)
        finally:
            ranged.close()
        still_writing.write(whole[3000:6000])  # it writes on, into its own file
    assert ranged.ranges[0] == "bytes=3000-" and images.read_bytes() == whole
    assert not list(cache(env).glob(".*.part"))


def test_what_an_interrupted_download_left_is_removed_once_the_file_is_in_the_cache(env, served):
    """The review: a Ctrl+C'd part (hundreds of MB for EMNIST) stayed beside the file for good
    when the file came another way (a download running at the same time finished it)."""
    locate("toy", "train", progress=False)
    left = part_of(env, dead_pid(), "l3ft")
    left.write_bytes(b"x" * 100)
    live = part_of(env, os.getppid(), "4l1ve")
    live.write_bytes(b"x" * 100)
    locate("toy", "train", progress=False)
    assert not left.exists() and live.exists()


def test_a_killed_downloads_temp_file_is_removed_by_the_next(env, served):
    """The download audit: a download killed with SIGKILL left its .part in the cache for ever."""
    folder = cache(env)
    folder.mkdir(parents=True)
    old, live = folder / f".{TRAIN[0]}.k1ll3d.part", folder / f".{TRAIN[0]}.4l1ve.part"
    forgotten = part_of(env, dead_pid(), "f0rg0tten")
    for part in (old, live, forgotten):
        part.write_bytes(b"x" * 100)  # live: another process's download, writing now
    os.utime(old, (time.time() - download.STALE_AFTER - 60,) * 2)  # untouched: killed (another machine's)
    os.utime(forgotten, (time.time() - download.KEEP_PART_FOR - 60,) * 2)  # a week old: not kept for ever
    locate("toy", "train", progress=False)  # this server ignores Range: the whole file, from 0
    assert not old.exists() and not forgotten.exists() and live.exists()


def test_a_week_old_part_of_any_dataset_goes_at_the_next_lookup_even_of_another(env, served):
    """The disk audit: a part was removed only by a download of the same file, so EMNIST's 0.6 GB,
    given up on, stayed for good; a lookup of any dataset now removes week-old parts of all."""
    locate("toy", "train", progress=False)
    other = env / "cache" / "scratchnn" / "emnist-letters"
    other.mkdir(parents=True)
    given_up, recent = other / ".gzip.zip.abcd1234-99-x.part", other / ".gzip.zip.abcd1234-98-y.part"
    for part in (given_up, recent):
        part.write_bytes(b"x" * 100)
    os.utime(given_up, (time.time() - download.KEEP_PART_FOR - 60,) * 2)
    locate("toy", "train", progress=False)  # found in the cache: nothing downloaded
    assert not given_up.exists() and recent.exists()
    os.utime(recent, (time.time() - download.KEEP_PART_FOR - 60,) * 2)
    locate("toy", "train", progress=False, download=False)  # a server's lookup (never downloads) leaves them
    assert recent.exists()


def test_a_cache_that_cannot_take_the_file_stops_at_once_naming_the_folder(env, served, monkeypatch):
    """The download audit: a full disk was blamed on each mirror in turn, each downloaded in full."""
    import errno

    class FullDisk:
        def __init__(self, path, mode, buffering=-1):
            self.file = open(path, mode, buffering=buffering)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

        def write(self, block):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(download, "open", FullDisk, raising=False)  # the temp file's open, in that module
    message = fails("toy", "train", mirrors=[served.url, served.url], progress=False)
    assert f"cannot write to the cache folder {cache(env)} (No space left on device); free some space" in message
    assert "XDG_CACHE_HOME" in message and len(served.requests) == 1, served.requests  # not the second mirror
    assert not any(p.name.endswith(".part") for p in cache(env).glob(".*"))


def test_each_download_is_said_where_no_bar_is_drawn(env, served, capsys):
    """The download audit: in a log or CI (no terminal) a download of minutes said nothing."""
    locate("toy", "train")
    err = capsys.readouterr().err
    assert err.splitlines() == [f"Downloading {served.url}{name} into {cache(env)}" for name in TRAIN], err


def test_a_data_dir_that_does_not_exist_is_said_not_downloaded_around(env, served, monkeypatch):
    """The download audit: a mistyped --data-dir downloaded into the cache, and the run's Data line
    still named the folder."""
    message = fails("toy", "train", data_dir=env / "typo", progress=False)
    assert message == (f"--data-dir {env / 'typo'}: no such folder; give the folder that holds {TRAIN[0]} and "
                       f"{TRAIN[1]} (or toy/ with them)") and served.requests == []
    monkeypatch.setenv("SCRATCHNN_DATA", str(env / "typo"))
    assert fails("toy", "train", progress=False).startswith(f"SCRATCHNN_DATA {env / 'typo'}: no such folder")


def test_closed_port_fails_fast(env, served):
    start = time.perf_counter()
    message = fails("toy", "train", mirrors=[closed_port_url()], progress=False)
    assert time.perf_counter() - start < 30  # a hang guard (a closed port refuses at once), not a speed target
    assert "download failed" in message and "refused" in message.lower()


def test_download_off(env, served):
    message = fails("toy", "train", download=False)
    assert "downloads are off" in message and "download failed" not in message
    assert served.requests == []


def test_mirrors_from_environment(env, served, monkeypatch):
    monkeypatch.setitem(sources.DATASETS, "toy", dataclasses.replace(get_dataset("toy"), mirrors=()))
    monkeypatch.setenv("SCRATCHNN_MIRRORS", f" {served.url}missing/ , {served.url}")
    locate("toy", "test", progress=False)
    assert served.requests[:2] == ["/missing/" + TEST[0], "/" + TEST[0]]


def test_mirrors_argument_beats_environment(env, served, monkeypatch):
    monkeypatch.setenv("SCRATCHNN_MIRRORS", closed_port_url())
    assert locate("toy", "test", mirrors=[served.url], progress=False)[0].is_file()


# --- search order ----------------------------------------------------------------------------

def test_data_dir_beats_system_beats_cache(env, served):
    mine, system = env / "mine", env / "system" / "toy"
    for folder in (mine, system, cache(env)):
        make_split(folder)
    assert locate("toy", "train", mine)[0].parent == mine
    assert locate("toy", "train")[0].parent == system
    for path in system.iterdir():
        path.unlink()
    assert locate("toy", "train")[0].parent == cache(env)
    assert served.requests == []


def test_dataset_subfolder_of_data_dir_comes_first(env, served):
    make_split(env / "root")
    make_split(env / "root" / "toy")
    assert locate("toy", "train", env / "root")[0].parent == env / "root" / "toy"


def test_environment_data_dir_and_the_argument(env, served, monkeypatch):
    make_split(env / "from-env")
    make_split(env / "from-arg")
    monkeypatch.setenv("SCRATCHNN_DATA", str(env / "from-env"))
    assert locate("toy", "train")[0].parent == env / "from-env"
    assert locate("toy", "train", env / "from-arg")[0].parent == env / "from-arg"
    message = fails("toy", "test", download=False)
    assert f"{env / 'from-env'} (SCRATCHNN_DATA)" in message


def test_data_dir_is_named_in_the_message(env, served):
    (env / "x").mkdir()
    message = fails("toy", "train", env / "x", download=False)
    looked = f"Looked in: {env / 'x' / 'toy'} (--data-dir), {env / 'x'} (--data-dir), {env / 'system' / 'toy'}, "
    assert looked in message, message


def test_raw_files_are_found(env, served):
    images, labels = make_split(env / "raw", raw=True)
    assert locate("toy", "train", env / "raw") == (images, labels)
    assert images.name == "train-images-idx3-ubyte"
    assert load_dataset("toy", "train", env / "raw")[0].shape == (4, 28, 28)


def test_torchvisions_folders_are_found_under_the_data_dir(env, served, monkeypatch):
    """A learner with MNIST from torchvision.datasets.MNIST(root) has it in root/MNIST/raw/
    (un-gzipped beside the .gz): --data-dir root, or root/MNIST, found nothing and downloaded."""
    monkeypatch.setitem(sources.DATASETS, "toy", dataclasses.replace(sources.DATASETS["toy"], torchvision="Toy"))
    raw = env / "data" / "Toy" / "raw"
    images, labels = make_split(raw, raw=True)
    assert locate("toy", "train", env / "data") == (images, labels)
    assert locate("toy", "train", env / "data" / "Toy") == (images, labels)
    assert served.requests == []
    looked = fails("toy", "test", env / "data", download=False)  # torchvision's folder is named where it exists
    assert f"{env / 'data' / 'toy'} (--data-dir), {raw} (--data-dir), {env / 'data'} (--data-dir)" in looked, looked
    assert get_dataset("mnist").torchvision == "MNIST" and get_dataset("emnist-letters").torchvision == "EMNIST"
    # another dataset's folder is not this one's, though their files share names (Fashion-MNIST's are MNIST's)
    monkeypatch.setitem(sources.DATASETS, "other", dataclasses.replace(sources.DATASETS["toy"], name="other",
                                                                       torchvision="Other"))
    assert "downloads are off" in fails("other", "train", env / "data" / "Toy", download=False)


def test_a_folder_needs_both_files_of_the_split(env, served):
    make_split(env / "half")
    (env / "half" / TRAIN[1]).unlink()
    make_split(env / "system" / "toy", TEST)  # serves "test", not "train"
    assert locate("toy", "test", env / "half")[0].parent == env / "system" / "toy"
    assert "Looked in" in fails("toy", "train", env / "half", download=False)


def test_cache_folder_follows_xdg_or_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert sources.cache_dir("mnist") == tmp_path / "xdg" / "scratchnn" / "mnist"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert sources.cache_dir("mnist") == tmp_path / "home" / ".cache" / "scratchnn" / "mnist"


# --- the registry ----------------------------------------------------------------------------

def test_unknown_dataset_and_split():
    with pytest.raises(DataError, match="unknown dataset 'cifar'; choose one of mnist, fashion-mnist, kmnist"):
        get_dataset("cifar")
    with pytest.raises(DataError, match="unknown split 'validation'"):
        locate("mnist", "validation")


def test_registry_names_and_classes():
    mnist, fashion = get_dataset("mnist"), get_dataset("fashion-mnist")
    assert mnist.classes == tuple("0123456789") and fashion.classes[9] == "Ankle boot"
    assert [f.name for f in mnist.files("train") + mnist.files("test")] == [*TRAIN, *TEST]
    assert mnist.mirrors[0] == "https://ossci-datasets.s3.amazonaws.com/mnist/"
    assert all(len(f.md5) == 32 for spec in DATASETS.values() if not spec.archive for f in spec.train + spec.test)
    assert all(len(spec.archive.file.md5) == 32 for spec in DATASETS.values() if spec.archive)
    kmnist = get_dataset("kmnist")  # the files and names torchvision's KMNIST uses, from the authors' site
    assert kmnist.classes == ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")
    assert [f.name for f in kmnist.files("train") + kmnist.files("test")] == [*TRAIN, *TEST]
    assert kmnist.mirrors[0] == "https://codh.rois.ac.jp/kmnist/dataset/kmnist/"


def test_published_checksums_match_the_real_files(shared_dir):
    for remote in get_dataset("mnist").test:
        data = (shared_dir / "datasets" / "mnist" / remote.name).read_bytes()
        assert hashlib.md5(data).hexdigest() == remote.md5, remote.name
        assert hashlib.sha256(data).hexdigest() == remote.sha256, remote.name


def test_a_run_fetches_the_test_split_before_it_trains(env, served, tmp_path):
    """The download audit: the test split was fetched after the last epoch and before the model was
    saved, so a stalled mirror held a trained model unsaved (and Ctrl+C lost it)."""
    from scratchnn.training.config import TrainConfig
    from scratchnn.training.run import train_run

    seen = []
    config = TrainConfig(dataset="toy", hidden=[4], epochs=1, dev_size=1, checkpoint_every=0, doctor="off")
    result = train_run(config, tmp_path / "run", log=lambda line: None, progress=False,
                       on_setup=lambda *args: seen.append(sorted(path.rsplit("/", 1)[-1] for path in served.requests)))
    assert seen == [sorted(TRAIN + TEST)]  # all four before the first epoch
    assert result.metrics["test_samples"] == 3


def test_a_temp_file_written_to_by_another_hand_is_downloaded_again_then_refused(env, served, noisy, monkeypatch):
    """Its checksums are of the bytes this download wrote: bytes another program appended would
    reach the cache unchecked. The file is downloaded once more, then the download gives up."""
    real_write, mixed = download._write_all, []

    def another_hand(out, block):
        real_write(out, block)
        if len(mixed) < 1:  # the first download only
            mixed.append(block)
            real_write(out, b"not the file")

    monkeypatch.setattr(download, "_write_all", another_hand)
    ranged = Ranged(noisy, cut=10**9)
    try:
        images, _ = locate("toy", "train", mirrors=[ranged.url], progress=False)
        assert images.read_bytes() == (noisy / TRAIN[0]).read_bytes() and ranged.ranges[:2] == [None, None]
        images.unlink()
        monkeypatch.setattr(download, "_write_all", lambda out, block: real_write(out, block + b"!"))
        message = fails("toy", "train", mirrors=[ranged.url], progress=False)
    finally:
        ranged.close()
    assert "changed while it downloaded, twice: does another program write into " in message, message


def test_a_download_whose_bytes_another_took_over_and_finished_is_done(env, served, noisy, monkeypatch):
    """The second review: a download stopped with Ctrl+Z, whose temp file another one took over
    and finished, said "changed while it downloaded" when it went on, and downloaded it all again."""
    real_write, whole = download._write_all, (noisy / TRAIN[0]).read_bytes()

    def taken_over(out, block):
        real_write(out, block)
        for part in cache(env).glob(f".{TRAIN[0]}.*.part"):  # the other download copies it, removes it...
            part.unlink()
            (cache(env) / TRAIN[0]).write_bytes(whole)  # ... and finishes the file

    monkeypatch.setattr(download, "_write_all", taken_over)
    ranged = Ranged(noisy, cut=10**9)
    try:
        assert download.fetch(ranged.url + TRAIN[0], sources.DATASETS["toy"].train[0], cache(env), False) is None
    finally:
        ranged.close()
    assert ranged.ranges == [None] and (cache(env) / TRAIN[0]).read_bytes() == whole
