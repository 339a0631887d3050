"""The one small base both local services share: a threaded HTTP server on loopback.

A service subclasses :class:`LocalHttpService` and implements :meth:`handle`, which
turns a :class:`Request` into a :class:`Response`. Nothing here knows about Lambda,
API Gateway or how a function runs.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

DEFAULT_HOST = "127.0.0.1"


def free_port(host: str = DEFAULT_HOST) -> int:
    """A port nothing listens on right now (for services started with port 0 or tests)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Request:
    """One HTTP request as a service sees it.

    Attributes:
        method: Upper-case HTTP method.
        path: The raw path without the query string (still percent-encoded).
        query: Query-string parameters, first value of each.
        headers: Request headers, keys as received.
        body: Raw body bytes.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    raw_query: str = ""

    def header(self, name: str) -> str | None:
        """Return a header value by case-insensitive name, or ``None``."""
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return None


@dataclass
class Response:
    """One HTTP response: status, headers and body bytes."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
        """Build a JSON response."""
        all_headers = {"Content-Type": "application/json"}
        all_headers.update(headers or {})
        return cls(status, all_headers, json.dumps(payload).encode())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: boto3 and requests reuse connections
    # Headers and body go out as two writes; without TCP_NODELAY the body waits
    # for the client's delayed ACK (40 ms) on every response (docs/benchmarks.md).
    disable_nagle_algorithm = True
    # A client that announces a body and never sends it frees its thread after this.
    timeout = 60
    server: _Server

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        limit = self.server.service.max_body_bytes
        if length < 0 or (limit is not None and length > limit):
            # Refuse without reading the body, and close: the rest of it is unread.
            self.close_connection = True
            status, message = (400, "Invalid Content-Length") if length < 0 else (413, "Request Entity Too Large")
            self._send(Response.json(status, {"message": message}, {"Connection": "close"}))
            return
        body = self.rfile.read(length) if length > 0 else b""
        request = Request(
            method=self.command.upper(),
            path=parts.path,
            query={key: values[0] for key, values in parse_qs(parts.query).items()},
            headers={key: value for key, value in self.headers.items()},
            body=body,
            raw_query=parts.query,
        )
        try:
            response = self.server.service.handle(request)
        except Exception:  # noqa: BLE001 - a bug in one request must not kill the server
            logger.exception("%s: unhandled error for %s %s", self.server.service.name, request.method,
                             self.server.service.loggable_path(request.path))
            response = Response.json(500, {"message": "Internal server error"})
        self._send(response)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        headers = {key.lower(): (key, value) for key, value in response.headers.items()}
        headers.pop("content-length", None)
        for key, value in headers.values():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if response.body and self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        text = format % args
        raw_path = getattr(self, "path", "")
        if raw_path:  # the request line holds the raw path: log what the service allows instead
            path = urlsplit(raw_path).path
            safe = self.server.service.loggable_path(path)
            if safe != path:
                text = text.replace(raw_path, safe)
        logger.debug("%s %s", self.server.service.name, text)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 drops bursts of new connections.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], service: LocalHttpService) -> None:
        self.service = service
        super().__init__(address, _Handler)


class LocalHttpService:
    """Base of the local gateway and the local Lambda service.

    Args:
        host: Interface to bind; loopback by default.
        port: TCP port; 0 picks a free one.
    """

    name = "service"
    # Largest request body accepted (413 above it); None: no limit.
    max_body_bytes: int | None = None

    def __init__(self, host: str = DEFAULT_HOST, port: int = 0) -> None:
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:3000``."""
        host, port = self._server.server_address[:2] if self._server else self._address
        return f"http://{host}:{port}"

    def start(self) -> None:
        """Bind the port and serve requests on a background thread."""
        self._server = _Server(self._address, self)
        self._thread = threading.Thread(target=self._server.serve_forever, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and release the port. Safe to call twice."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def loggable_path(self, path: str) -> str:
        """What this service's logs may show of a request path (a path may hold a credential)."""
        return path

    def handle(self, request: Request) -> Response:  # pragma: no cover - abstract
        """Answer one request."""
        raise NotImplementedError
