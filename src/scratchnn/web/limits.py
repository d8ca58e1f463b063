"""Refuse oversized or endless request bodies before the app reads them (a pure ASGI middleware)."""
from __future__ import annotations

import anyio
from starlette.responses import JSONResponse

MAX_BODY_BYTES = 5 * 1024 * 1024
BODY_SECONDS = 30.0  # a 5 MB body at 1.4 Mbit/s; a slower client is holding a connection open


class BodySizeLimit:
    """Answer 413 when a body is larger than ``max_bytes``, 408 when it takes longer than
    ``body_seconds`` to arrive.

    A declared Content-Length over the limit is refused before a byte of the body is read;
    a body without one (chunked) is counted as it streams in and refused as soon as the count
    passes the limit, so no request makes the server hold more than ``max_bytes``. A body that
    fits is buffered and handed to the app unchanged. The deadline covers the whole body, so a
    client trickling a byte a second (slowloris) cannot hold a connection for long.
    """

    def __init__(self, app, max_bytes: int = MAX_BODY_BYTES, body_seconds: float = BODY_SECONDS):
        self.app = app
        self.max_bytes = max_bytes
        self.body_seconds = body_seconds

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                shown = declared[:40].decode("latin-1")
                return await _error(400, f"invalid Content-Length header {shown!r}", scope, receive, send)
            if int(declared) > self.max_bytes:
                return await self._too_large(f"declared {int(declared):,} bytes", scope, receive, send)
        chunks, size, complete = [], 0, False
        with anyio.move_on_after(self.body_seconds):
            while not complete:
                message = await receive()
                if message["type"] != "http.request":  # the client went away: nothing to answer
                    return None
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_bytes:
                    return await self._too_large(f"more than {self.max_bytes:,} bytes", scope, receive, send)
                chunks.append(chunk)
                complete = not message.get("more_body", False)
        if not complete:
            return await _error(408, f"request body not received within {self.body_seconds:g} s "
                                     f"({size:,} bytes arrived); send it at once", scope, receive, send)
        # NOTE: the app runs outside the deadline: only the client's sending is timed
        return await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _too_large(self, size: str, scope, receive, send):
        limit = f"{self.max_bytes / 1024 / 1024:g} MB"
        advice = ("send a smaller image (a photo of one digit needs far less)" if scope.get("path") == "/api/predict"
                  else "training settings and the other requests take a few hundred bytes")
        return await _error(413, f"request body too large ({size}); the limit is {limit}: {advice}", scope, receive,
                            send)


def _replay(body: bytes, receive):
    """A receive() that gives the buffered body once, then whatever the client sends (a disconnect)."""
    replayed = False

    async def replay():
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _error(status: int, detail: str, scope, receive, send):
    await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)
