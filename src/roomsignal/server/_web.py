"""Plain HTTP beside the WebSocket endpoint: the page, its files, media and dev tokens.

``WebRoutes`` answers the requests that are not WebSocket upgrades, inside
websockets' ``process_request`` hook (one response per connection, then the
connection closes). It serves:

- ``/`` (``index.html``), ``/roomsignal.js`` and the page's other files,
  shipped as package data in ``roomsignal.web`` (only when ``web`` is on);
- ``/media/NAME`` from ``media_dir`` when one is given (with byte ranges, so
  that a ``<video>`` can seek);
- ``GET /dev/token?session=ID&name=N&roles=moderator,synchronizer`` answering
  ``{"token": "..."}``, only with ``dev_tokens`` on (404 otherwise).

Every page response carries a Content-Security-Policy that lets the page load
nothing from anywhere but this server (docs/web.md).
"""

from __future__ import annotations

import json
import logging
import mimetypes
import re
from collections.abc import Callable
from http import HTTPStatus
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from roomsignal.tokens import mint

__all__ = ["DEV_TOKEN_PATH", "ROLES", "WebRoutes", "http_response"]

logger = logging.getLogger("roomsignal.server.web")

DEV_TOKEN_PATH = "/dev/token"
ROLES = frozenset({"moderator", "synchronizer"})
_MEDIA_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".webm": "video/webm",
    ".mp4": "video/mp4",
}
# The page may talk to any signaling server the user types in (ws:, wss:), but
# load scripts, styles, images and media only from this one.
_CSP = (
    "default-src 'self'; connect-src 'self' ws: wss:; media-src 'self' blob: mediastream:; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)

Handler = Callable[[ServerConnection, Request], Response | None]


def _load_static() -> dict[str, tuple[bytes, str]]:
    """path -> (body, content type) of every page file in ``roomsignal.web``."""
    files: dict[str, tuple[bytes, str]] = {}
    for item in resources.files("roomsignal.web").iterdir():
        suffix = Path(item.name).suffix
        if item.is_file() and suffix in _TYPES and not item.name.startswith("_"):
            files["/" + item.name] = (item.read_bytes(), _TYPES[suffix])
    if "/index.html" in files:
        files["/"] = files["/index.html"]
    return files


class WebRoutes:
    """The HTTP side of ``SignalingServer``; call ``wrap(handler)`` for ``process_request``.

    Files are read once, at construction. Safe to share between connections
    (it keeps no per-request state).
    """

    def __init__(
        self,
        secret: str,
        *,
        web: bool = True,
        dev_tokens: bool = False,
        media_dir: str | Path | None = None,
    ) -> None:
        self._secret = secret
        self.web = web
        self.dev_tokens = dev_tokens
        self.media_dir = Path(media_dir).resolve() if media_dir is not None else None
        self._static = _load_static() if web else {}

    def wrap(self, inner: Handler) -> Handler:
        """A ``process_request`` that tries ``inner`` first, then these routes."""

        def process_request(connection: ServerConnection, request: Request) -> Response | None:
            response = inner(connection, request)
            if response is not None:
                return response
            return self.handle(connection, request)

        return process_request

    def handle(self, connection: ServerConnection, request: Request) -> Response | None:
        """The response to a plain HTTP request; None lets a WebSocket upgrade go on."""
        if "websocket" in request.headers.get("Upgrade", "").lower():
            return None
        url = urlsplit(request.path)
        path = url.path
        if path == DEV_TOKEN_PATH:
            if not self.dev_tokens:
                return _text(connection, HTTPStatus.NOT_FOUND, "not found\n")
            return self._dev_token(connection, url.query)
        if path.startswith("/media/") and self.media_dir is not None:
            return self._media(connection, request, path.removeprefix("/media/"))
        if not self.web:
            return None  # as without the page: websockets answers 426 Upgrade Required
        found = self._static.get(path)
        if found is None:
            return _text(connection, HTTPStatus.NOT_FOUND, "not found\n")
        body, content_type = found
        return _bytes(connection, HTTPStatus.OK, body, content_type)

    def _dev_token(self, connection: ServerConnection, query: str) -> Response:
        params = parse_qs(query)
        session = params.get("session", [""])[0]
        name = params.get("name", [""])[0] or None
        roles = [r for part in params.get("roles", []) for r in part.split(",") if r]
        unknown = sorted(set(roles) - ROLES)
        if not session:
            return _json(connection, HTTPStatus.BAD_REQUEST, {"error": "session is required"})
        if unknown:
            return _json(
                connection,
                HTTPStatus.BAD_REQUEST,
                {"error": f"unknown roles {unknown}; known: {sorted(ROLES)}"},
            )
        token = mint(self._secret, session, subject=name, roles=roles)
        logger.info("dev token for session %r (%s), roles %s", session, name, roles)
        return _json(connection, HTTPStatus.OK, {"token": token})

    def _media(self, connection: ServerConnection, request: Request, name: str) -> Response:
        assert self.media_dir is not None
        if not _MEDIA_NAME.fullmatch(name):
            return _text(connection, HTTPStatus.NOT_FOUND, "not found\n")
        file = self.media_dir / name
        if not file.is_file():
            return _text(connection, HTTPStatus.NOT_FOUND, "not found\n")
        data = file.read_bytes()
        content_type = _TYPES.get(file.suffix) or (
            mimetypes.guess_type(name)[0] or "application/octet-stream"
        )
        wanted = request.headers.get("Range")
        if wanted is None:
            response = _bytes(connection, HTTPStatus.OK, data, content_type)
            response.headers["Accept-Ranges"] = "bytes"
            return response
        match = _RANGE.fullmatch(wanted.strip())
        size = len(data)
        if match is None or (not match[1] and not match[2]):
            return _range_refused(connection, size)
        if match[1]:
            start = int(match[1])
            end = min(int(match[2]), size - 1) if match[2] else size - 1
        else:  # a suffix: the last N bytes
            start, end = max(0, size - int(match[2])), size - 1
        if start >= size or end < start:
            return _range_refused(connection, size)
        response = _bytes(
            connection, HTTPStatus.PARTIAL_CONTENT, data[start : end + 1], content_type
        )
        response.headers["Accept-Ranges"] = "bytes"
        response.headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        return response


def _bytes(
    connection: ServerConnection, status: HTTPStatus, body: bytes, content_type: str
) -> Response:
    response = connection.respond(status, "")
    headers = Headers(
        (key, value)
        for key, value in response.headers.raw_items()
        if key.lower() not in ("content-type", "content-length")
    )
    headers["Content-Type"] = content_type
    headers["Content-Length"] = str(len(body))
    headers["Cache-Control"] = "no-cache"
    headers["X-Content-Type-Options"] = "nosniff"
    if content_type.startswith("text/html"):
        headers["Content-Security-Policy"] = _CSP
    response.headers = headers
    response.body = body
    return response


http_response = _bytes  # for the transport's own routes (/metrics)


def _text(connection: ServerConnection, status: HTTPStatus, text: str) -> Response:
    return _bytes(connection, status, text.encode(), "text/plain; charset=utf-8")


def _json(connection: ServerConnection, status: HTTPStatus, value: object) -> Response:
    return _bytes(connection, status, json.dumps(value).encode(), "application/json")


def _range_refused(connection: ServerConnection, size: int) -> Response:
    response = _text(connection, HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, "bad range\n")
    response.headers["Content-Range"] = f"bytes */{size}"
    return response
