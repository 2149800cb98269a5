"""Loopback HTTP servers that count what they send.

`RangeServer` speaks enough of the S3 REST API for boto3 (path-style HEAD/GET with Range) and
models S3's cost: a first-byte delay and a per-connection bandwidth. moto's own cost per
request (it reads the whole object for every ranged GET) would distort the timings, so this
is the timing reference. `CountingProxy` sits in front of moto to count bytes and requests
the same way.
"""

from __future__ import annotations

import hashlib
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO, ClassVar
from xml.sax.saxutils import escape

from devkit.http_forwarding import ask_upstream, relay_head

CHUNK = 64 * 1024
# Small socket send buffers: bytes count as sent when the kernel takes them, so keep what
# a client that hangs up early could leave unread in the buffer small.
SEND_BUFFER = 256 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass
class Counters:
    """Requests served and body bytes actually written to sockets; thread-safe."""

    requests: int = 0
    bytes_sent: int = 0
    # "METHOD Range-header" per request, for explaining where the bytes went.
    log: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def add_request(self, description: str = "") -> None:
        with self._lock:
            self.requests += 1
            self.log.append(description)

    def add_bytes(self, count: int) -> None:
        with self._lock:
            self.bytes_sent += count

    def snapshot(self) -> tuple[int, int]:
        with self._lock:
            return self.requests, self.bytes_sent

    def reset(self) -> None:
        with self._lock:
            self.requests = 0
            self.bytes_sent = 0
            self.log = []

    def requests_log(self) -> list[str]:
        with self._lock:
            return list(self.log)


@dataclass(frozen=True)
class Link:
    """What each response costs: time to first byte and bandwidth per connection (0: unlimited)."""

    first_byte_delay_s: float = 0.030
    bytes_per_second: float = 100e6


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, handler: type[BaseHTTPRequestHandler], link: Link) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.link = link
        self.counters = Counters()

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = super().get_request()
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, address


class _CountingHandler(BaseHTTPRequestHandler):
    """Shared parts: keep-alive, the modelled delay, throttled and counted body writes."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request otherwise

    def _wait_first_byte(self) -> None:
        if self.server.link.first_byte_delay_s > 0:
            time.sleep(self.server.link.first_byte_delay_s)

    def _send_body(self, chunks: Iterator[bytes]) -> None:
        """Write the body at the modelled bandwidth, counting only what the socket accepted."""
        rate = self.server.link.bytes_per_second
        started, sent = time.perf_counter(), 0
        for chunk in chunks:
            try:
                self.wfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
                return
            sent += len(chunk)
            self.server.counters.add_bytes(len(chunk))
            if rate > 0:
                ahead = started + sent / rate - time.perf_counter()
                if ahead > 0:
                    time.sleep(ahead)


def _file_chunks(handle: BinaryIO, start: int, length: int) -> Iterator[bytes]:
    handle.seek(start)
    left = length
    while left > 0:
        chunk = handle.read(min(CHUNK, left))
        if not chunk:
            return
        left -= len(chunk)
        yield chunk


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte range a Range header asks for, trimmed to the object; None: whole object.

    Raises ValueError for a range that starts past the end (S3 answers 416 InvalidRange).
    """
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match or match.groups() == ("", ""):
        return None  # S3 ignores a Range it cannot parse
    first, last = match.groups()
    if first == "":
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), size - 1 if last == "" else min(int(last), size - 1)
    if start >= size or start > end:
        raise ValueError(header)
    return start, end


class _ObjectHandler(_CountingHandler):
    """HEAD/GET of /bucket/key from a directory of files served as one bucket."""

    root: ClassVar[Path]
    bucket: ClassVar[str]
    objects: ClassVar[dict[str, Path]]

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def _serve(self, send_body: bool) -> None:
        self.server.counters.add_request(f"{self.command} {self.headers.get('Range') or 'whole'}")
        self._wait_first_byte()
        bucket, _, key = (
            urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/").partition("/")
        )
        path = self.objects.get(key) if bucket == self.bucket else None
        if path is None:
            self._error(404, "NoSuchKey", "The specified key does not exist.", send_body)
            return
        stat = path.stat()
        etag = (
            '"'
            + hashlib.md5(
                f"{key}:{stat.st_size}:{stat.st_mtime_ns}".encode(), usedforsecurity=False
            ).hexdigest()
            + '"'
        )
        if_match = self.headers.get("If-Match")
        if if_match and if_match.strip() not in (etag, "*"):
            self._error(412, "PreconditionFailed", "At least one of the preconditions failed.", send_body)
            return
        try:
            wanted = parse_range(self.headers.get("Range"), stat.st_size)
        except ValueError:
            self._error(416, "InvalidRange", "The requested range is not satisfiable", send_body)
            return
        start, end = wanted if wanted else (0, stat.st_size - 1)
        length = max(0, end - start + 1)
        self.send_response(206 if wanted else 200)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(length))
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", formatdate(stat.st_mtime, usegmt=True))
        if wanted:
            self.send_header("Content-Range", f"bytes {start}-{end}/{stat.st_size}")
        self.end_headers()
        if send_body and length:
            with path.open("rb") as handle:
                self._send_body(_file_chunks(handle, start, length))

    def _error(self, status: int, code: str, message: str, send_body: bool) -> None:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>"
            f"<Resource>{escape(self.path)}</Resource></Error>"
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)) if send_body else "0")
        self.end_headers()
        if send_body:
            self.wfile.write(body)


class _ProxyHandler(_CountingHandler):
    """Forwards every request to an upstream HTTP server, counting the response bodies it relays."""

    upstream: ClassVar[tuple[str, int]]

    def do_HEAD(self) -> None:
        self._forward()

    def do_GET(self) -> None:
        self._forward()

    def do_PUT(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def do_DELETE(self) -> None:
        self._forward()

    def _forward(self) -> None:
        self.server.counters.add_request(f"{self.command} {self.headers.get('Range') or 'whole'}")
        answer = ask_upstream(self, *self.upstream)
        self._wait_first_byte()
        relay_head(self, answer, drop=frozenset({"server", "date"}))
        if self.command != "HEAD" and answer.body:
            payload = answer.body
            self._send_body(payload[i : i + CHUNK] for i in range(0, len(payload), CHUNK))


@dataclass
class RunningServer:
    """A started server: its endpoint and live counters."""

    endpoint_url: str
    counters: Counters


@contextmanager
def _running(server: _Server) -> Iterator[RunningServer]:
    thread = threading.Thread(target=server.serve_forever, name="bench-http", daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield RunningServer(endpoint_url=f"http://{host!s}:{port}", counters=server.counters)
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def range_server(bucket: str, objects: dict[str, Path], link: Link | None = None) -> Iterator[RunningServer]:
    """Serve `objects` (key -> file) as bucket `bucket` on a free loopback port."""
    handler = type("Handler", (_ObjectHandler,), {"bucket": bucket, "objects": dict(objects)})
    with _running(_Server(handler, link or Link())) as running:
        yield running


@contextmanager
def counting_proxy(upstream_url: str, link: Link | None = None) -> Iterator[RunningServer]:
    """A proxy to `upstream_url` (e.g. moto) that counts requests and relayed body bytes."""
    parts = urllib.parse.urlsplit(upstream_url)
    upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
    handler = type("Handler", (_ProxyHandler,), {"upstream": upstream})
    with _running(_Server(handler, link or Link(0.0, 0.0))) as running:
        yield running
