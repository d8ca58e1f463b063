"""``scratchnn serve``: the interactive page (draw a digit, watch the network think) on a local port."""
from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import math
import signal
import socket
import sys
import threading

from ..data.tta import check_tta
from ..errors import ConfigError, ScratchnnError
from .common import add_data_arguments, add_textbook_argument, add_tta_argument
from .config_flags import not_blank

INSTALL_HINT = "pip install 'scratchnn[web]' (from a checkout: pip install '.[web]')"
# The web extra: each package and the names it is imported by. python-multipart is imported only
# when a form arrives, so a missing one would pass the start and turn every upload into a 500;
# before 0.0.13 it was imported as `multipart`, which Starlette still accepts.
WEB_PACKAGES = {"fastapi": ("fastapi",), "uvicorn": ("uvicorn",), "python-multipart": ("python_multipart", "multipart")}
LIMITS = """\
limits: a request head must arrive within 10 s of opening a connection (or of the last response),
a body within 30 s and under 5 MB; idle keep-alive connections close after 5 s; at most 200
connections at once (more get 503), 64 of them pages following a run. For a network, put a
reverse proxy in front for TLS, per-client connection and rate limits, and authentication (the
page works under a path too; the README shows the nginx lines).

hosts: only requests addressed to localhost, 127.0.0.1, ::1 or --host are answered (others get
400: DNS rebinding); add the names people use with --allowed-host.

gallery: the digits come from --dataset/--csv/--images if given, else from the run folder's
config.toml; never from paths written inside a model file."""


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "serve", help="a web page to draw digits and watch the network think",
        description="Serve the interactive page and its JSON API (FastAPI + uvicorn) until Ctrl+C. "
                    "Open the printed address in a browser; nothing is opened for you.",
        epilog=LIMITS, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", metavar="MODEL", nargs="*",
                        help="a model file or a run folder (default: the newest run under runs/); several, or a "
                             "folder of member runs, serve their ensemble (probabilities averaged; the layer views "
                             "show the first member)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=8000,
                        help="port to listen on (default: 8000; 0: a free one, printed with the address)")
    parser.add_argument("--allowed-host", metavar="NAME", action="append", default=[], type=not_blank(str),
                        help="another name requests may address the server by, e.g. mypi.local "
                             "(repeatable; localhost, 127.0.0.1, ::1 and --host always are)")
    add_tta_argument(parser)
    add_textbook_argument(parser)
    add_data_arguments(parser, "the gallery of mistakes and the Train tab's runs; default: the run folder's "
                               "config.toml")
    add_train_arguments(parser)
    parser.set_defaults(run=run)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The Train tab's switch and the limits that protect a shared server."""
    from ..web.training import TrainLimits

    limits = TrainLimits()
    group = parser.add_argument_group("training from the page", "new runs are saved beside the served run folder")
    group.add_argument("--no-train", action="store_true", help="no Train tab: a demo server that only predicts")
    group.add_argument("--keep-model", action="store_true",
                       help="train from the page but keep serving this model: runs are saved and compared in the "
                            "Runs tab, never served (Load is off); for a class, no one's run replaces everyone's")
    group.add_argument("--max-train-epochs", type=int, metavar="N", default=limits.epochs,
                       help=f"epochs one run may ask for (default: {limits.epochs})")
    group.add_argument("--max-train-seconds", type=float, metavar="S", default=limits.seconds,
                       help=f"a run stops (and is saved) S seconds after it starts, paused time included, "
                            f"after the batch under way: the page trains one run at a time (default: "
                            f"{limits.seconds:g})")
    group.add_argument("--max-train-width", type=int, metavar="N", default=limits.width,
                       help=f"units a hidden layer may have (default: {limits.width})")
    group.add_argument("--max-train-channels", type=int, metavar="N", default=limits.channels,
                       help=f"channels a convolution block may have (default: {limits.channels})")
    group.add_argument("--max-train-layers", type=int, metavar="N", default=limits.layers,
                       help=f"hidden layers, and convolution blocks, a network may have (default: {limits.layers})")
    group.add_argument("--max-train-disk", type=float, metavar="GB", default=limits.disk,
                       help=f"disk the runs trained from the page (by this server or earlier ones) may take "
                            f"together; past it, or with less than 1 GB left on the disk, no new run starts, and "
                            f"nothing saved is deleted (default: {limits.disk:g})")
    group.add_argument("--max-train-memory", type=float, metavar="GB", default=limits.memory,
                       help=f"memory a run's training may need, worked out before it starts: the bound on its "
                            f"step and twice that, as big steps grow the process (default: {limits.memory:g})")


def train_setup(args: argparse.Namespace):
    from ..web.train_setup import TrainSetup
    from ..web.training import TrainLimits

    for flag, value in (("--max-train-epochs", args.max_train_epochs), ("--max-train-seconds", args.max_train_seconds),
                        ("--max-train-width", args.max_train_width), ("--max-train-channels", args.max_train_channels),
                        ("--max-train-layers", args.max_train_layers), ("--max-train-memory", args.max_train_memory),
                        ("--max-train-disk", args.max_train_disk)):
        if not (value > 0 and math.isfinite(value)):
            raise ConfigError(f"{flag} must be a number > 0, got {value:.10g}")
    if args.max_train_seconds < 1:  # 1e-320 passed "> 0", and every run stopped at its first batch (fuzz audit)
        raise ConfigError(f"--max-train-seconds must be at least 1, got {args.max_train_seconds:.10g}")
    if args.keep_model and args.no_train:
        raise ConfigError("--keep-model keeps the model while the page trains; with --no-train nothing trains: "
                          "give one of them")
    return TrainSetup(enabled=not args.no_train, keep_model=args.keep_model, limits=TrainLimits(
        epochs=args.max_train_epochs, seconds=args.max_train_seconds, width=args.max_train_width,
        channels=args.max_train_channels, layers=args.max_train_layers, memory=args.max_train_memory,
        disk=args.max_train_disk))


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be between 1 and 65535 (or 0 for a free one), got {args.port}")
    check_tta(args.tta)
    check_web_extra()

    from ..training.run import RUNS_DIR
    from ..web.app import create_app
    from ..web.hosts import LOCAL_HOSTS, allowed_host_names, listens_everywhere
    from ..web.inference import newest_model
    from ..web.operator_log import print_to_console
    from ..web.server import LIMIT_CONCURRENCY, connection_cap, server_config

    models = args.models or [newest_model(RUNS_DIR, log=lambda line: print(line, file=sys.stderr))]
    hosts = allowed_host_names(args.host, args.allowed_host)
    data = _data_source(args)
    app = create_app(models, data=data, allowed_hosts=hosts, train=train_setup(args), tta=args.tta,
                     fast=not args.textbook)
    if data is not None and data.dataset is None:
        _check_files_fit(app.state.service)
    listening = _listen(args.host, args.port)
    port = listening.getsockname()[1]  # the one the system chose, for --port 0
    ensemble = app.state.service.ensemble
    what = (f"the ensemble of {len(ensemble)} ({', '.join(m.name for m in ensemble.members)}; layer views: the first)"
            if len(ensemble) > 1 else app.state.service.path)
    if args.tta > 1:
        what = f"{what} with TTA x{args.tta}"
    if args.textbook:
        what = f"{what} on the textbook layers"
    print(f"Serving {what} at {_urls(args.host, port, args.allowed_host)}  (Ctrl+C to stop)", flush=True)
    if listens_everywhere(args.host) and not args.allowed_host:
        print("Only requests addressed to localhost are answered: add --allowed-host NAME for each name or "
              "address others will use")
    if args.host not in LOCAL_HOSTS and not args.no_train:  # a network: say who can do what
        print("Note: anyone who can open this page can train on this machine"
              + ("" if args.keep_model else ", and a finished run is served to everyone (--keep-model keeps this "
                 "model)") + "; --no-train serves predictions only")
    print_to_console()  # runs started, stopped and loaded, and refused requests, with the time
    connections = connection_cap()
    if connections < LIMIT_CONCURRENCY:
        print(f"Note: this process may open few files (ulimit -n): at most {connections} connections at once, "
              f"not {LIMIT_CONCURRENCY} (more get 503); raise it with ulimit -n before serve")
    server = _server_class()(server_config(app, args.host, port, connections=connections))
    server.run(sockets=[listening])
    if server.stopped_by is not None:  # see Server.stopped_by
        from .interrupts import interrupted_by

        interrupted_by(server.stopped_by)
    return 0


def _server_class():
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server that, asked to exit, first tells the training manager: the run stops
        after its batch and the pages' event streams end, so the shutdown does not wait for them
        (it took 8 s, and the run trained on, with a page watching).

        ``stopped_by`` is the signal that stopped it. uvicorn raises that signal again once it has
        shut down, so that the program ends by it; but asyncio.run's own SIGINT handler, which
        uvicorn restores first, can take it after the server's task is done and return as if
        nothing happened: serve exited 0 after Ctrl+C in 5 of 15 tries (the soak audit), and a
        shell loop or a service manager saw a clean exit. ``run`` raises it again if so."""

        stopped_by: int | None = None

        @contextlib.contextmanager
        def capture_signals(self):
            """uvicorn's SIGINT and SIGTERM, and SIGHUP (a closed terminal) the same way: a page's run
            stopped and the server shut down, not killed (the disk audit: the training worker's
            semaphores stayed in /dev/shm until a reboot). Restored before uvicorn raises it again."""
            hangup = getattr(signal, "SIGHUP", None)  # none on Windows
            if (hangup is None or threading.current_thread() is not threading.main_thread()
                    or signal.getsignal(hangup) == signal.SIG_IGN):  # nohup's: the terminal may close (the review)
                with super().capture_signals():
                    yield
                return
            with super().capture_signals():
                original = signal.signal(hangup, self.handle_exit)
                try:
                    yield
                finally:
                    signal.signal(hangup, original)

        def handle_exit(self, sig, frame) -> None:
            self.stopped_by = self.stopped_by or sig
            training = getattr(self.config.app.state, "training", None)
            if training is not None:
                training.closing()
            super().handle_exit(sig, frame)

    return Server


def check_web_extra() -> None:
    """Fail at the start, naming every missing package of the web extra and the install command."""
    missing = [package for package, modules in WEB_PACKAGES.items()
               if all(importlib.util.find_spec(module) is None for module in modules)]
    if missing:
        raise ScratchnnError(f"the web extra is not installed ({', '.join(missing)} missing): {INSTALL_HINT}")
    pydantic = importlib.metadata.version("pydantic")
    if int(pydantic.split(".")[0]) < 2:  # FastAPI takes either; the page's schemas are pydantic 2's
        raise ScratchnnError(f"the web extra needs pydantic 2, and {pydantic} is installed: {INSTALL_HINT} "
                             "(pip install 'pydantic>=2' upgrades it)")


def _check_files_fit(service) -> None:
    """Read the --csv or --images/--labels given for the gallery once, now: files that do not fit
    the model (images of another size, a label it has no class for) stop the server with the
    reason, where the page got a 409 and the reason was in the log (the shapes audit)."""
    from ..training.run_data import load_set

    gallery = service.gallery
    if gallery.config is None:  # the page says why (GalleryData.problem)
        return
    try:
        load_set(gallery.config, "all", gallery.source, progress=False, download=False,
                 model=service.model, metadata=service.metadata)
    except ScratchnnError as error:
        raise ConfigError(f"the data given for the gallery cannot be shown with the served model: {error}") from None


def _data_source(args: argparse.Namespace):
    from ..data import DataSource
    from ..training.config import TrainConfig
    from ..training.options import option_of

    for name in ("class_names", "transpose"):
        if getattr(args, name, None):
            raise ConfigError(f"{option_of(TrainConfig, name).flag} is for train: a served run reads its data "
                              "as it was trained to (its config.toml), and the page's Train tab uses the server's "
                              "data as it is")
    given = {name: getattr(args, name) for name in ("dataset", "csv", "images", "labels", "data_dir")}
    if not any(given.values()):
        return None
    if not any(given[name] for name in ("dataset", "csv", "images", "labels")):
        raise ConfigError("--data-dir steers where a named dataset is looked for: give --dataset NAME with it")
    return DataSource(**given).validate()


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket the server runs on (uvicorn takes it as it is), made now: a port in
    use fails with one line rather than with uvicorn's log and traceback later, and port 0
    gets a free one whose number the printed address can give."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as error:
        raise ScratchnnError(f"cannot listen on {_url_host(host)}:{port} ({error.strerror or error}); "
                             "choose another --port or --host") from None


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _urls(host: str, port: int, allowed: list[str] | None) -> str:
    """Where to open the page: on every address (0.0.0.0, a container), the names it answers to,
    not the wildcard itself, which the browser cannot open and the server would refuse."""
    from ..web.hosts import listens_everywhere

    if not listens_everywhere(host):
        return f"http://{_url_host(host)}:{port}"
    names = ["localhost", *(allowed or [])]
    return " or ".join(f"http://{_url_host(name)}:{port}" for name in names) + " (every address of this machine)"
