"""`scratchnn serve`'s server on a real socket: idle and slow clients are closed after their
deadlines, and the command refuses to start without the whole web extra."""
import importlib.metadata
import importlib.util
import socket
import threading
import time

import pytest

from web_support import require

require("uvicorn", "pip install 'scratchnn[web]'")
import uvicorn  # noqa: E402

from scratchnn.cli.main import main  # noqa: E402
from scratchnn.web.app import create_app  # noqa: E402
from scratchnn.web.server import server_config  # noqa: E402
from web_support import train_tiny_model  # noqa: E402

HANG_GUARD = 30.0  # s: far beyond the deadlines under test, only so a regression cannot hang the suite
REQUEST = b"GET /api/model HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@pytest.fixture(scope="module")
def model_path(shared_dir, tmp_path_factory):
    return train_tiny_model(shared_dir, tmp_path_factory.getbasetemp() / "web-model")


@pytest.fixture(scope="module")
def port(model_path):
    """uvicorn as `serve` configures it, with short deadlines, in a thread on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    server = uvicorn.Server(server_config(create_app(model_path), "127.0.0.1", free, header_seconds=0.5,
                                          timeout_keep_alive=1))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + HANG_GUARD
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield free
    server.should_exit = True
    thread.join(HANG_GUARD)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=HANG_GUARD)
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server closes the connection; False if it is still open after HANG_GUARD."""
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def read_response(sock: socket.socket) -> bytes:
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(65536)
    header, _, body = head.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in header.split(b"\r\n")
                  if line.lower().startswith(b"content-length"))
    while len(body) < length:
        body += sock.recv(65536)
    return header


def test_a_connection_that_never_sends_a_request_is_closed(port):
    with connect(port) as sock:
        assert closed_by_server(sock), "an idle new connection stays open"


def test_a_request_head_sent_a_header_at_a_time_is_cut_off(port):
    with connect(port) as sock:
        sock.sendall(b"GET /api/model HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        for i in range(300):  # 30 s of headers, 0.1 s apart: the head never completes
            try:
                sock.sendall(b"X-Slow-%d: 1\r\n" % i)
            except OSError:
                break
            time.sleep(0.1)
        else:
            pytest.fail("a head trickled in for 30 s was still being read")


def test_keep_alive_serves_requests_then_closes_when_idle(port):
    with connect(port) as sock:
        for _ in range(3):  # one connection, several requests: the header deadline restarts each time
            sock.sendall(REQUEST)
            assert read_response(sock).startswith(b"HTTP/1.1 200")
        assert closed_by_server(sock), "an idle keep-alive connection stays open"


def test_a_slow_answer_is_not_cut_by_the_header_deadline(port):
    """The deadline is for the client's head, not for the server's work: a gallery load takes longer."""
    with connect(port) as sock:
        sock.sendall(b"GET /api/gallery?seed=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200")


# --- starting `scratchnn serve` -------------------------------------------------------------------

@pytest.mark.parametrize("missing", ["python-multipart", "fastapi", "uvicorn"])
def test_serve_checks_the_whole_web_extra_before_starting(model_path, monkeypatch, capsys, missing):
    modules = {"python-multipart": ("python_multipart", "multipart"), "fastapi": ("fastapi",), "uvicorn": ("uvicorn",)}
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in modules[missing] else real_find_spec(name, *a))

    def started(*args, **kwargs):
        raise AssertionError("serve started without " + missing)

    monkeypatch.setattr(uvicorn.Server, "run", started)
    monkeypatch.setattr(uvicorn, "run", started)
    assert main(["serve", str(model_path), "--port", "1"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"scratchnn serve: error: the web extra is not installed ({missing} missing)"), error
    assert "\n" not in error
    assert "pip install 'scratchnn[web]'" in error and "pip install '.[web]'" in error


def test_serve_names_pydantic_1_before_starting(model_path, monkeypatch, capsys):
    """FastAPI takes pydantic 1 too, and pip then reports no conflict: serve crashed with an ImportError."""
    real_version = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version",
                        lambda name: "1.10.13" if name == "pydantic" else real_version(name))
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: pytest.fail("serve started with pydantic 1"))
    assert main(["serve", str(model_path), "--port", "1"]) == 1
    error = capsys.readouterr().err.strip()
    assert error == ("scratchnn serve: error: the web extra needs pydantic 2, and 1.10.13 is installed: pip install "
                     "'scratchnn[web]' (from a checkout: pip install '.[web]') (pip install 'pydantic>=2' upgrades it)")


@pytest.mark.parametrize("flags, fast", [([], True), (["--textbook"], False)])
def test_serve_predicts_on_the_fast_layers_unless_told_textbook(model_path, monkeypatch, capsys, flags, fast):
    served = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: served.append(self.config.app))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    assert main(["serve", str(model_path), "--port", str(free), "--no-train", *flags]) == 0
    service = served[0].state.service
    assert service.fast is fast and service.ensemble.fast is fast
    assert (service.ensemble.nets[0] is service.model) is not fast  # the textbook model, or its fast net
    assert ("on the textbook layers" in capsys.readouterr().out) is not fast


def test_port_0_serves_on_a_free_port_and_prints_it(model_path, tmp_path):
    """The install audit: --port 0 was refused, so a script could not ask for a free port."""
    import os
    import re
    import signal
    import subprocess
    import sys
    import urllib.request

    serve = subprocess.Popen([sys.executable, "-m", "scratchnn", "serve", str(model_path), "--port", "0", "--no-train"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        line = serve.stdout.readline()
        port = int(re.search(r"at http://127\.0\.0\.1:(\d+) ", line).group(1))
        assert port > 0, line
        answer = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/model", timeout=HANG_GUARD)
        assert answer.status == 200 and b"parameters" in answer.read()
    finally:
        serve.send_signal(signal.SIGINT)
        serve.communicate(timeout=HANG_GUARD)
    assert os.name != "posix" or serve.returncode == -signal.SIGINT, serve.returncode


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_a_server_stopped_by_a_signal_ends_by_it_even_when_asyncio_swallowed_it(model_path, monkeypatch, capsys,
                                                                                 signum):
    """The soak audit: 5 of 15 Ctrl+C exited 0. uvicorn shuts down, then raises the signal again;
    asyncio.run's SIGINT handler, which uvicorn restores first, can take it once the server's task
    is done, and uvicorn's run() returns. Here run() returns as it then does."""
    import signal

    from scratchnn.cli import interrupts

    def stopped(server, sockets=None):
        server.handle_exit(getattr(signal, signum), None)  # what uvicorn's handler gets; then it returns

    monkeypatch.setattr(uvicorn.Server, "run", stopped)
    assert main(["serve", str(model_path), "--port", "0", "--no-train"]) == interrupts.INTERRUPTED
    assert capsys.readouterr().err.strip() == "scratchnn serve: interrupted"
    assert interrupts.stopped_by == getattr(signal, signum)  # what console() then ends the process by


def test_serve_help_states_the_limits_it_sets(capsys):
    from scratchnn.web import limits, server

    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for figure in (f"within {server.HEADER_SECONDS:g} s", f"within {limits.BODY_SECONDS:g} s",
                   f"under {limits.MAX_BODY_BYTES // 2**20} MB", f"after {server.TIMEOUT_KEEP_ALIVE} s",
                   f"at most {server.LIMIT_CONCURRENCY}", "--allowed-host", "reverse proxy"):
        assert figure in text, figure


def test_serving_on_every_address_prints_addresses_a_browser_can_open():
    """The deployment audit: --host 0.0.0.0 printed http://0.0.0.0:18101, which the server then refused."""
    from scratchnn.cli.serve_cmd import _urls

    assert _urls("0.0.0.0", 8000, ["digits.lan"]) == ("http://localhost:8000 or http://digits.lan:8000 "
                                                       "(every address of this machine)")
    assert _urls("127.0.0.1", 8000, None) == "http://127.0.0.1:8000"
    assert _urls("::1", 8000, None) == "http://[::1]:8000"
    # the fuzz audit: --host 0 listened on 0.0.0.0 and printed http://0:PORT, without the every-address note
    for everywhere in ("0", "0.0", "::0", "[::]", ""):
        assert _urls(everywhere, 8000, None).endswith("(every address of this machine)"), everywhere
    from scratchnn.web.hosts import allowed_host_names

    assert "0" not in allowed_host_names("0") and "1" in allowed_host_names("1")


def test_a_closed_terminal_shuts_the_server_down_as_sigterm_does(model_path):
    """The disk audit: SIGHUP (the terminal closed) killed serve at once, and a page run's worker left its
    semaphores in /dev/shm until a reboot; it is now caught as uvicorn catches SIGINT and SIGTERM, and given
    back once the server has shut down, so the process still ends by it."""
    import signal

    from scratchnn.cli.serve_cmd import _server_class
    from scratchnn.web.app import create_app
    from scratchnn.web.server import server_config

    raised = []
    before = signal.signal(signal.SIGHUP, lambda signum, frame: raised.append(signum))  # as if the default
    try:
        server = _server_class()(server_config(create_app(model_path), "127.0.0.1", 0))
        with server.capture_signals():
            assert signal.getsignal(signal.SIGHUP) == server.handle_exit
            signal.raise_signal(signal.SIGHUP)
            assert server.should_exit and server.stopped_by == signal.SIGHUP and not raised
        assert raised == [signal.SIGHUP]  # raised again after the shutdown, by the handler before
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # nohup's (the review: it shut the server down)
        with server.capture_signals():
            assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, before)


def test_the_connection_cap_fits_the_files_the_server_may_open(monkeypatch):
    """The resource audit: under ulimit -n 128, 150 idle connections used every descriptor, accept()
    failed in a loop (110,566 tracebacks in 30 s) and no one got an answer, not even a 503."""
    resource = pytest.importorskip("resource")
    from scratchnn.web import server

    limits, raised = {"now": (128, 128)}, []
    monkeypatch.setattr(resource, "getrlimit", lambda which: limits["now"])
    monkeypatch.setattr(resource, "setrlimit", lambda which, pair: raised.append(pair) or limits.update(now=pair))
    assert server.connection_cap() == 128 - server.OTHER_FILES and raised == []
    limits["now"] = (1024, 4096)  # a shell's soft default under a higher hard limit: raised, as servers do
    assert server.connection_cap() == server.LIMIT_CONCURRENCY and raised == [(4096, 4096)]
    limits["now"] = (1024, resource.RLIM_INFINITY)
    assert server.connection_cap() == server.LIMIT_CONCURRENCY and raised[-1] == (server.MOST_FILES,
                                                                                  resource.RLIM_INFINITY)
