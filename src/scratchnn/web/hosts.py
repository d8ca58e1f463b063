"""Answer only requests addressed to this server by name (a pure ASGI middleware).

DNS rebinding: a page on ``evil.example`` points its name at 127.0.0.1 and its script then talks
to the local server as "same origin". The browser still sends ``Host: evil.example``, so refusing
every Host that is not one of our own names stops it. Starlette's TrustedHostMiddleware answers
in plain text and splits ``[::1]:8000`` at the first colon; this one speaks IPv6 and JSON.

Cross-site requests: a page on ``evil.example`` can make a visitor's browser POST to
``http://127.0.0.1:8000/api/train`` (a form, or fetch with a "simple" content type, needs no
preflight), with the right Host. ``SameSiteWrites`` refuses any request but GET, HEAD and
OPTIONS that the browser marks as from another site (``Sec-Fetch-Site``, which no page can set),
or, from a browser too old to send that, whose ``Origin`` is not this server's own: what the
page does, another site's page cannot. Clients that are not browsers (curl, scripts) send
neither header and are unaffected. Behind a reverse proxy the browser still calls the page and
its API one origin ("same-origin"), whatever Host the proxy passes on; for the older browsers,
the Origin may match the proxy's ``X-Forwarded-Host`` too (a page of another site cannot add
that header without a preflight, which this server does not answer).
"""
from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from starlette.responses import JSONResponse

from .operator_log import refused

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def listens_everywhere(host: str) -> bool:
    """Whether ``host`` binds every address ("0.0.0.0", "::", "", and what the system reads as
    them: "0", "0.0", "::0"); the names people will use are then not known here (--allowed-host)."""
    if host.strip() == "":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        pass
    try:  # the C library's older forms: "0" and "0.0" are 0.0.0.0 to it, and to the server
        return socket.inet_aton(host) == bytes(4)
    except OSError:
        return False


def allowed_host_names(host: str = "", extra: Iterable[str] = ()) -> frozenset[str]:
    """The local names, the address served on (unless it is a wildcard) and ``extra``, lower case,
    without brackets or port.

    >>> sorted(allowed_host_names("192.168.1.5", ["Pi.local"]))
    ['127.0.0.1', '192.168.1.5', '::1', 'localhost', 'pi.local']
    """
    names = {*LOCAL_HOSTS, *extra} | ({host} if not listens_everywhere(host) else set())
    return frozenset(_bare(name) for name in names)


def host_name(header: str) -> str | None:
    """The name in a Host header without its port: 'a:8000' -> 'a', '[::1]:8000' -> '::1'; None
    when the header is malformed.

    >>> host_name("LocalHost:8000"), host_name("[::1]:80"), host_name("[::1"), host_name("a:b")
    ('localhost', '::1', None, None)
    """
    if header.startswith("["):
        end = header.find("]")
        name, rest = header[1:end], header[end + 1:]
        if end < 0 or (rest and not rest.startswith(":")):
            return None
        port = rest[1:]
    else:
        name, _, port = header.partition(":")
    if not name or (port and not (port.isascii() and port.isdigit())) or (not port and header.endswith(":")):
        return None
    return name.lower()


class HostAllowList:
    """Answer 400 with one line of JSON unless the request's Host names one of ``allowed``
    (any port)."""

    def __init__(self, app, allowed: Iterable[str]):
        self.app = app
        self.allowed = frozenset(_bare(name) for name in allowed)

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = [value for key, value in scope.get("headers") or () if key == b"host"]
        name = host_name(headers[0].decode("latin-1")) if len(headers) == 1 else None
        if name in self.allowed:
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":  # the app has none, but refuse before it is asked
            return await send({"type": "websocket.close", "code": 1008})
        # NOTE: the refused name is not echoed: it is the attacker's text, and no one needs it back
        refused("host", "refused a request addressed to a name this server does not answer to (400): add the "
                "name people use with --allowed-host NAME")
        detail = ("this server answers only requests addressed to " + ", ".join(sorted(self.allowed))
                  + "; start 'scratchnn serve' with --allowed-host NAME to add the name you use")
        await JSONResponse({"detail": detail}, status_code=400)(scope, receive, send)


class SameSiteWrites:
    """Answer 403 with one line of JSON to a state-changing request another site's page sent."""

    SAFE = ("GET", "HEAD", "OPTIONS")

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in self.SAFE:
            return await self.app(scope, receive, send)
        headers = {key: value.decode("latin-1") for key, value in scope.get("headers") or ()}
        origin, site = headers.get(b"origin"), headers.get(b"sec-fetch-site")
        if site is not None:  # the browser's own word, which no page can forge
            foreign = site not in ("same-origin", "none")
        else:
            ours = {headers.get(b"host", "").lower(), headers.get(b"x-forwarded-host", "").partition(",")[0].strip()
                    .lower()} - {""}
            foreign = origin is not None and origin.lower().partition("://")[2] not in ours
        if not foreign:
            return await self.app(scope, receive, send)
        refused("site", "refused %s %s (403): another site's page sent it, by the browser's headers; behind a "
                "reverse proxy, pass the browser's Host on (nginx: proxy_set_header Host $http_host)",
                scope["method"], scope.get("path", "")[:80])
        detail = ("refused: this request came from another site's page; use the page this server serves, or a "
                  "client such as curl (behind a reverse proxy, pass the browser's Host on: nginx's "
                  "proxy_set_header Host $http_host)")
        await JSONResponse({"detail": detail}, status_code=403)(scope, receive, send)


def _bare(name: str) -> str:
    return name.strip().lower().removeprefix("[").removesuffix("]")
