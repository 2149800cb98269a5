"""A recording, fault-injecting HTTP proxy in front of moto, for the worker's S3 tests.

It gives an independent count of what crossed the wire (requests, ranges, body bytes sent) and
real HTTP faults (a 500, a body cut off mid-stream) on the next GETs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from devkit.http_forwarding import ask_upstream, relay_head


@dataclass
class Exchange:
    method: str
    path: str
    range: str | None
    status: int
    body_bytes: int  # response body bytes actually sent


@dataclass
class FaultProxy:
    """Forwards to moto; records every exchange; applies queued faults to the next GETs."""

    upstream: str
    endpoint_url: str = ""
    exchanges: list[Exchange] = field(default_factory=list)
    get_faults: list[str] = field(default_factory=list)  # "500" or "truncate", consumed in order
    lock: threading.Lock = field(default_factory=threading.Lock)

    def gets(self) -> list[Exchange]:
        with self.lock:
            return [exchange for exchange in self.exchanges if exchange.method == "GET"]

    def next_fault(self, method: str) -> str | None:
        with self.lock:
            if method == "GET" and self.get_faults:
                return self.get_faults.pop(0)
            return None

    def record(self, exchange: Exchange) -> None:
        with self.lock:
            self.exchanges.append(exchange)


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    upstream = urlsplit(proxy.upstream)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _forward(self) -> None:
            fault = proxy.next_fault(self.command)
            requested_range = self.headers.get("Range")
            if fault == "500":
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                payload = b"<Error><Code>InternalError</Code><Message>injected</Message></Error>"
                # Recorded before answering: the client may look at the log as soon as it has the reply.
                proxy.record(Exchange(self.command, self.path, requested_range, 500, len(payload)))
                self.send_response(500)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            answer = ask_upstream(self, upstream.hostname or "", upstream.port or 80, timeout_s=30)
            sent = answer.body[: len(answer.body) // 2] if fault == "truncate" else answer.body
            if self.command == "HEAD":
                sent = b""
            proxy.record(Exchange(self.command, self.path, requested_range, answer.status, len(sent)))
            relay_head(self, answer)
            self.wfile.write(sent)
            self.wfile.flush()
            if fault == "truncate":  # announce the whole body, send half, hang up
                self.close_connection = True

        do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _forward

    return Handler


@contextmanager
def serving(upstream: str) -> Iterator[FaultProxy]:
    """A FaultProxy to `upstream` on a loopback port, for the duration of the block."""
    proxy = FaultProxy(upstream=upstream)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    proxy.endpoint_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
