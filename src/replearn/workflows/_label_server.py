"""The labelling page's web server: the standard library's threading HTTP server on 127.0.0.1.

Every request must carry the session's random token (``?token=...`` or the ``X-Replearn-Token`` header)
and a ``Host`` of 127.0.0.1 or localhost (no DNS rebinding); anything else gets 403. The API:

- ``GET /`` the page; ``GET /api/state`` progress, the next crop, accuracy and balance (JSON);
- ``GET /crop/<i>.png`` pool crop ``i`` enlarged; ``GET /context/<i>.png`` its neighbourhood in the field;
- ``POST /api/label`` ``{"index": i, "stage": s}``, ``POST /api/skip`` ``{"index": i}``, ``POST /api/undo`` ``{}``.

A body must be JSON of at most ``MAX_BODY`` bytes with a ``Content-Length``; bad input is a 4xx
(400 bad JSON or value, 404 unknown path or index, 405 another method, 411 no length, 413 too large)
and changes nothing. While it serves, the server reads no file and writes only the output file.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from replearn.workflows._label_session import LabelError

MAX_BODY = 1024
HOST = "127.0.0.1"
_IMAGE = re.compile(r"^/(crop|context)/(\d{1,9})\.png$")


class LabelServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer on 127.0.0.1 (port 0: a free one) that serves ``app`` (a :class:`LabelApp`)."""

    daemon_threads = True

    def __init__(self, app: Any, port: int = 0) -> None:
        self.app = app
        self.token = secrets.token_urlsafe(24)
        super().__init__((HOST, port), _Handler)

    @property
    def url(self) -> str:
        """The page's address, token included."""
        return f"http://{HOST}:{self.server_port}/?token={self.token}"


class _Handler(BaseHTTPRequestHandler):
    server: LabelServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the terminal shows the address and the closing line only

    def __getattr__(self, name: str) -> Callable[[], None]:
        if name.startswith("do_"):  # PUT, DELETE, HEAD, ...: 405, never the base class's 501
            return lambda: self._send(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "method not allowed"},
                                      extra={"Allow": "GET, POST"})
        raise AttributeError(name)

    # ------------------------------------------------------------------ checks
    def _allowed(self) -> tuple[str, dict[str, list[str]]] | None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        token = self.headers.get("X-Replearn-Token") or (query.get("token") or [""])[0]
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
        if host not in (HOST, "localhost") or not hmac.compare_digest(token.encode(), self.server.token.encode()):
            self._send(HTTPStatus.FORBIDDEN, {"error": "forbidden: open the address printed by replearn label"})
            return None
        return parts.path, query

    def _body(self) -> dict[str, Any] | None:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._send(HTTPStatus.LENGTH_REQUIRED, {"error": "a Content-Length is required"})
            return None
        if int(length) > MAX_BODY:
            self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"body over {MAX_BODY} bytes"})
            return None
        try:
            body = json.loads(self.rfile.read(int(length)) or b"{}")
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            self._send(HTTPStatus.BAD_REQUEST, {"error": "the body must be a JSON object"})
            return None
        return body

    # ------------------------------------------------------------------ methods
    def do_GET(self) -> None:
        allowed = self._allowed()
        if allowed is None:
            return
        path, _ = allowed
        app = self.server.app
        if path == "/":
            self._send(HTTPStatus.OK, app.page().encode(), "text/html; charset=utf-8")
        elif path == "/api/state":
            self._send(HTTPStatus.OK, app.state())
        elif (m := _IMAGE.match(path)) and int(m.group(2)) < len(app.session.pool):
            png = app.crop_png(int(m.group(2))) if m.group(1) == "crop" else app.context_png(int(m.group(2)))
            if png is None:
                self._send(HTTPStatus.NOT_FOUND, {"error": "no field context for these crops"})
            else:
                self._send(HTTPStatus.OK, png, "image/png")
        else:
            self._send(HTTPStatus.NOT_FOUND, {"error": f"no such page {path}"})

    def do_POST(self) -> None:
        allowed = self._allowed()
        if allowed is None:
            return
        path, _ = allowed
        actions = {"/api/label": self.server.app.label, "/api/skip": self.server.app.skip,
                   "/api/undo": self.server.app.undo}
        if path not in actions:
            self._send(HTTPStatus.NOT_FOUND, {"error": f"no such action {path}"})
            return
        body = self._body()
        if body is None:
            return
        try:
            self._send(HTTPStatus.OK, actions[path](body))
        except LabelError as exc:
            self._send(HTTPStatus.BAD_REQUEST, {"error": str(exc)})

    def _send(self, status: HTTPStatus, body: Any, kind: str = "application/json",
              extra: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        headers = {"Content-Type": kind, "Content-Length": str(len(data)), "Cache-Control": "no-store",
                   "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", **(extra or {})}
        for key, value in headers.items():
            self.send_header(key, value)
        if status >= 400:
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
