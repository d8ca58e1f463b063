"""Refuse oversized request bodies before the app reads them (a pure ASGI middleware)."""
from __future__ import annotations

from starlette.responses import JSONResponse

MAX_BODY_BYTES = 5 * 1024 * 1024


class BodySizeLimit:
    """Answer 413 when a body is larger than ``max_bytes``.

    A declared Content-Length over the limit is refused before a byte of the body is read;
    a body without one (chunked) is counted as it streams in and refused as soon as the count
    passes the limit, so no request makes the server hold more than ``max_bytes``. A body that
    fits is buffered and handed to the app unchanged.
    """

    def __init__(self, app, max_bytes: int = MAX_BODY_BYTES):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                shown = declared[:40].decode("latin-1")
                return await _error(400, f"invalid Content-Length header {shown!r}", scope, receive, send)
            if int(declared) > self.max_bytes:
                return await self._too_large(f"{int(declared):,} bytes", scope, receive, send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nothing to answer
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return await self._too_large(f"more than {self.max_bytes:,} bytes", scope, receive, send)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()  # after the body, only a disconnect can come

        return await self.app(scope, replay, send)

    async def _too_large(self, size: str, scope, receive, send):
        limit = f"{self.max_bytes / 1024 / 1024:g} MB"
        return await _error(413, f"request body too large ({size}); the limit is {limit}: "
                                 "send a smaller image (a photo of one digit needs far less)", scope, receive, send)


async def _error(status: int, detail: str, scope, receive, send):
    await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)
