"""uvicorn, configured so a client cannot hold the server open: timeouts, sizes, a connection cap.

uvicorn's own keep-alive timeout starts only once a response is sent, so a connection that
never finishes its headers (or never sends any: "100 idle connections") stays open for ever.
``TimedH11Protocol`` adds the missing deadline: from the moment a connection is opened, or a
response is finished, the next request's headers must arrive within ``HEADER_SECONDS``. The
body has its own deadline (``limits.BODY_SECONDS``) in the app.

What remains for a reverse proxy in front (nginx, Caddy) when the page is served to a network:
TLS, per-client connection and rate limits (``LIMIT_CONCURRENCY`` is one cap for everyone, so
one client can still fill it and others get 503), clients that read responses very slowly, and
authentication.
"""
from __future__ import annotations

from uvicorn.protocols.http.h11_impl import H11Protocol

TIMEOUT_KEEP_ALIVE = 5  # s an idle keep-alive connection stays open after a response
HEADER_SECONDS = 10.0  # s from opening a connection (or the last response) to a complete request head
LIMIT_CONCURRENCY = 200  # connections + running requests; beyond it uvicorn answers 503 at once (a class of
# 30 browsers holds about 3 each: the event stream and a keep-alive or two; MAX_WATCHERS streams fit)
MAX_HEADER_BYTES = 16 * 1024  # request line + headers; a browser sends well under 2 kB
GRACEFUL_SHUTDOWN_SECONDS = 5  # Ctrl+C waits this long for requests in flight, not for idle clients
OTHER_FILES = 64  # descriptors kept for all but connections: the model, run folders, a page run's worker, logs
MOST_FILES = 65536  # what the soft limit is raised to where the hard one is unlimited


def connection_cap() -> int:
    """LIMIT_CONCURRENCY, or fewer where this process may open fewer files (``ulimit -n``): each
    connection holds one, and once none was left uvicorn's accept() failed in a loop, logging
    110,566 tracebacks in 30 s while the server answered no one (the resource audit). The soft
    limit is first raised to the hard one, as servers do (a shell's 1,024 is only its default)."""
    try:
        import resource
    except ImportError:  # Windows
        return LIMIT_CONCURRENCY
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = MOST_FILES if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return LIMIT_CONCURRENCY
    return max(1, min(LIMIT_CONCURRENCY, soft - OTHER_FILES))


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request head (see the module docstring)."""

    header_seconds = HEADER_SECONDS

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._start_header_deadline()

    def on_response_complete(self) -> None:
        # NOTE: armed before super(), which may start a pipelined request at once: that request
        # has a new cycle, so the deadline sees it arrived in time
        self._start_header_deadline()
        super().on_response_complete()

    def _start_header_deadline(self) -> None:
        self.loop.call_later(self.header_seconds, self._header_deadline, self.cycle)

    def _header_deadline(self, cycle_when_started) -> None:
        # A request whose head was complete has its own cycle object; the same one means none came.
        if self.cycle is cycle_when_started and not self.transport.is_closing():
            self.transport.close()


def server_config(app, host: str, port: int, *, header_seconds: float = HEADER_SECONDS,
                  timeout_keep_alive: int = TIMEOUT_KEEP_ALIVE, connections: int = LIMIT_CONCURRENCY):
    """The uvicorn.Config ``scratchnn serve`` runs: h11 with header deadlines and the limits above,
    at most ``connections`` at once (``connection_cap``)."""
    import uvicorn

    protocol = type("TimedH11", (TimedH11Protocol,), {"header_seconds": header_seconds})
    return uvicorn.Config(app, host=host, port=port, http=protocol, log_level="warning",
                          timeout_keep_alive=timeout_keep_alive, limit_concurrency=connections,
                          h11_max_incomplete_event_size=MAX_HEADER_BYTES,
                          timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
                          server_header=False)
