"""Forwarding one HTTP request to an upstream server and relaying its answer: the core of the
local proxies (bench/range_server.py's counting, throttling proxy; the worker tests' fault proxy)."""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

# Per-connection headers a proxy must not pass on (RFC 9110, section 7.6.1).
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"})


@dataclass(frozen=True)
class Answer:
    """What the upstream server answered, body read whole."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)


def ask_upstream(handler: BaseHTTPRequestHandler, host: str, port: int, timeout_s: float = 120.0) -> Answer:
    """Send the handler's request (method, path, headers, body) upstream; its answer."""
    body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
    headers = {name: value for name, value in handler.headers.items() if name.lower() not in HOP_BY_HOP}
    connection = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        connection.request(handler.command, handler.path, body=body or None, headers=headers)
        response = connection.getresponse()
        return Answer(response.status, response.reason, response.getheaders(), response.read())
    finally:
        connection.close()


def relay_head(
    handler: BaseHTTPRequestHandler, answer: Answer, *, drop: frozenset[str] = frozenset()
) -> None:
    """The answer's status and headers (not hop-by-hop ones, nor `drop`), Content-Length kept or set."""
    handler.send_response(answer.status, answer.reason)
    skipped = HOP_BY_HOP | {"content-length"} | drop
    for name, value in answer.headers:
        if name.lower() not in skipped:
            handler.send_header(name, value)
    # A HEAD answer announces the object's length without a body.
    handler.send_header("Content-Length", answer.header("Content-Length") or str(len(answer.body)))
    handler.end_headers()
