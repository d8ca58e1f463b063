"""``scratchnn serve``: the interactive page (draw a digit, watch the network think) on a local port."""
from __future__ import annotations

import argparse
import socket

from ..errors import ConfigError, ScratchnnError

INSTALL_HINT = "pip install 'scratchnn[web]'"


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "serve", help="a web page to draw digits and watch the network think",
        description="Serve the interactive page and its JSON API (FastAPI + uvicorn) until Ctrl+C. "
                    "Open the printed address in a browser; nothing is opened for you.")
    parser.add_argument("model", metavar="MODEL", nargs="?",
                        help="a model file or a run folder (default: the newest run under runs/)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.port <= 65535:
        raise ConfigError(f"--port must be between 1 and 65535, got {args.port}")
    try:
        import uvicorn

        from ..web.app import create_app
    except ImportError as error:
        raise ScratchnnError(f"the web page needs FastAPI and uvicorn ({error.name or error} is missing): "
                             f"{INSTALL_HINT}") from None
    from ..run import RUNS_DIR
    from ..web.inference import newest_model

    model = args.model or newest_model(RUNS_DIR)
    app = create_app(model)
    _check_port(args.host, args.port)
    print(f"Serving {app.state.service.path} at http://{_url_host(args.host)}:{args.port}  (Ctrl+C to stop)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _check_port(host: str, port: int) -> None:
    """Fail with one line now rather than with uvicorn's log and traceback later."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        socket.create_server((host, port), family=family).close()
    except OSError as error:
        raise ScratchnnError(f"cannot listen on {_url_host(host)}:{port} ({error.strerror or error}); "
                             "choose another --port or --host") from None


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
