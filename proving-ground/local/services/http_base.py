"""The one small base both local services share: a threaded HTTP server on loopback.

A service subclasses :class:`LocalHttpService` and implements :meth:`handle`, which
turns a :class:`Request` into a :class:`Response`. Nothing here knows about Lambda,
API Gateway or how a function runs.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
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
        method: The HTTP method as sent (methods are case-sensitive: ``get`` is not ``GET``).
        path: The raw path without the query string (still percent-encoded).
        query: Query-string parameters, first value of each.
        headers: Request headers, keys as received; the last value of a repeated header.
        body: Raw body bytes (a chunked body already decoded).
        raw_query: The query string as sent.
        header_items: Every header line in order, repeated names included.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    raw_query: str = ""
    header_items: tuple[tuple[str, str], ...] = ()

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


class _BodyRefused(Exception):
    """The request body cannot be read: answer ``status`` and close the connection."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


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
        header_limit = self.server.service.max_header_bytes
        if header_limit is not None and (
            len(self.requestline) + sum(len(value) for value in self.headers.values()) > header_limit
        ):
            self.close_connection = True
            self._refuse(431, "Request Header Fields Too Large")
            return
        try:
            body = self._read_body()
        except _BodyRefused as refused:
            # Refuse without reading the rest of the body, and close: it is unread.
            self._refuse(refused.status, refused.message)
            return
        request = Request(
            method=self.command,
            path=parts.path,
            query={key: values[0] for key, values in parse_qs(parts.query).items()},
            headers={key: value for key, value in self.headers.items()},
            body=body,
            raw_query=parts.query,
            header_items=tuple(self.headers.items()),
        )
        try:
            response = self.server.service.handle(request)
        except Exception:  # noqa: BLE001 - a bug in one request must not kill the server
            logger.exception("%s: unhandled error for %s %s", self.server.service.name, request.method,
                             self.server.service.loggable_path(request.path))
            response = Response.json(500, {"message": "Internal server error"})
        self._send(response)

    def _read_body(self) -> bytes:
        """The body by Content-Length, or chunk by chunk (``Transfer-Encoding: chunked``)."""
        limit = self.server.service.max_body_bytes
        coding = (self.headers.get("Transfer-Encoding") or "").strip().lower()
        if coding:
            if coding != "chunked":
                raise _BodyRefused(400, "Unsupported Transfer-Encoding")
            return self._read_chunked(limit)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            raise _BodyRefused(400, "Invalid Content-Length")
        if limit is not None and length > limit:
            raise _BodyRefused(413, "Request Entity Too Large")
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self, limit: int | None) -> bytes:
        body = bytearray()
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BodyRefused(400, "Invalid chunked body") from None
            if size < 0:
                raise _BodyRefused(400, "Invalid chunked body")
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailer fields: not used
                return bytes(body)
            if limit is not None and len(body) + size > limit:
                raise _BodyRefused(413, "Request Entity Too Large")
            chunk = self.rfile.read(size)
            if len(chunk) < size or self.rfile.readline(3).strip():
                raise _BodyRefused(400, "Invalid chunked body")
            body += chunk

    def _refuse(self, status: int, message: str) -> None:
        """Answer a request that never reaches :meth:`LocalHttpService.handle`, and close."""
        self.close_connection = True
        response = self.server.service.refusal(status, message)
        response.headers["Connection"] = "close"
        self._send(response)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (request line too long, bad syntax, too many headers), as the service's."""
        if not getattr(self, "command", None):
            self.command = ""  # no request line parsed: _send reads it
        try:
            self._refuse(code, self.responses.get(code, ("Error",))[0])
        except OSError:
            pass

    def __getattr__(self, name: str) -> Any:
        # Every method, however spelled ("get", "FOO"), reaches the service, which
        # answers what it answers for a method it does not serve.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

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


    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        text = format % args
        raw_path = getattr(self, "path", "")
        if raw_path:  # the request line holds the raw path: log what the service allows instead
            # Never the query string either: a caller may put a token there.
            safe = self.server.service.loggable_path(urlsplit(raw_path).path)
            if safe != raw_path:
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

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that left before its answer (a CLI past its read timeout, Ctrl-C) is logged, not a traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, (BrokenPipeError, ConnectionResetError)):
            logger.info("%s: client %s:%s left before its answer", self.service.name, *client_address[:2])
            return
        super().handle_error(request, client_address)


class LocalHttpService:
    """Base of the local gateway and the local Lambda service.

    Args:
        host: Interface to bind; loopback by default.
        port: TCP port; 0 picks a free one.
    """

    name = "service"
    # Largest request body accepted (413 above it); None: no limit.
    max_body_bytes: int | None = None
    # Largest request line plus header values accepted (431 above it); None: no limit.
    max_header_bytes: int | None = None

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

    def refusal(self, status: int, message: str) -> Response:
        """The answer to a request refused before :meth:`handle` (malformed, too large): JSON."""
        return Response.json(status, {"message": message})

    def handle(self, request: Request) -> Response:  # pragma: no cover - abstract
        """Answer one request."""
        raise NotImplementedError
