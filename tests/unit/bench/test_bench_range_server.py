"""The benchmark's range server over real HTTP: S3 semantics boto3 relies on, and honest counters."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import pytest
from botocore.exceptions import ClientError

from bench.range_server import Link, counting_proxy, parse_range, range_server

SIZE = 3_000_000


@pytest.fixture(scope="module")
def blob(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("objects") / "blob.bin"
    path.write_bytes(os.urandom(SIZE))
    return path


def _s3(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=botocore.config.Config(retries={"mode": "standard", "max_attempts": 1}),
    )


def test_boto3_head_and_ranged_gets_return_the_right_bytes_and_are_counted(blob: Path) -> None:
    data = blob.read_bytes()
    with range_server("bench", {"videos/a b.mp4": blob}, Link(0.0, 0.0)) as server:
        s3 = _s3(server.endpoint_url)
        head = s3.head_object(Bucket="bench", Key="videos/a b.mp4")
        assert head["ContentLength"] == SIZE
        assert head["AcceptRanges"] == "bytes"
        got = s3.get_object(
            Bucket="bench", Key="videos/a b.mp4", Range="bytes=1000-1999", IfMatch=head["ETag"]
        )
        assert got["ContentRange"] == f"bytes 1000-1999/{SIZE}"
        assert got["Body"].read() == data[1000:2000]
        tail = s3.get_object(Bucket="bench", Key="videos/a b.mp4", Range="bytes=-500")
        assert tail["Body"].read() == data[-500:]
        open_ended = s3.get_object(Bucket="bench", Key="videos/a b.mp4", Range=f"bytes={SIZE - 10}-")
        assert open_ended["Body"].read() == data[-10:]
        assert _settled(server.counters.snapshot) == (4, 1000 + 500 + 10)


def test_errors_are_s3_shaped(blob: Path) -> None:
    with range_server("bench", {"videos/a.mp4": blob}, Link(0.0, 0.0)) as server:
        s3 = _s3(server.endpoint_url)
        with pytest.raises(ClientError) as missing:
            s3.get_object(Bucket="bench", Key="videos/missing.mp4")
        assert missing.value.response["Error"]["Code"] == "NoSuchKey"
        with pytest.raises(ClientError) as past_end:
            s3.get_object(Bucket="bench", Key="videos/a.mp4", Range=f"bytes={SIZE}-")
        assert past_end.value.response["Error"]["Code"] == "InvalidRange"
        with pytest.raises(ClientError) as changed:
            s3.get_object(Bucket="bench", Key="videos/a.mp4", IfMatch='"not-the-etag"')
        assert changed.value.response["Error"]["Code"] == "PreconditionFailed"
        assert server.counters.snapshot()[1] == 0  # error bodies are not object bytes


def test_whole_download_counts_every_byte(blob: Path, tmp_path: Path) -> None:
    with range_server("bench", {"k": blob}, Link(0.0, 0.0)) as server:
        _s3(server.endpoint_url).download_file("bench", "k", str(tmp_path / "copy"))
        assert (tmp_path / "copy").read_bytes() == blob.read_bytes()
        assert server.counters.snapshot()[1] == SIZE


def test_a_client_hanging_up_early_is_not_counted_for_bytes_never_sent(blob: Path) -> None:
    # 1 MB/s: the 3 MB body would take 3 s; the client reads a little and closes.
    with range_server("bench", {"k": blob}, Link(0.0, 1e6)) as server:
        host, port = server.endpoint_url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(b"GET /bench/k HTTP/1.1\r\nHost: x\r\n\r\n")
            received = sock.recv(65536)
            assert received.startswith(b"HTTP/1.1 200")
        time.sleep(0.5)  # the server's next throttled write hits the closed socket
        sent_after_close = server.counters.snapshot()[1]
        time.sleep(0.5)
        assert server.counters.snapshot()[1] == sent_after_close  # it stopped sending
        assert sent_after_close < SIZE / 2


def test_the_first_byte_delay_and_bandwidth_are_applied(blob: Path) -> None:
    with range_server("bench", {"k": blob}, Link(0.2, 10e6)) as server:
        s3 = _s3(server.endpoint_url)
        started = time.perf_counter()
        s3.get_object(Bucket="bench", Key="k", Range="bytes=0-999999")["Body"].read()
        # A lower bound only (the modelled cost); how fast the machine is never decides the outcome.
        assert time.perf_counter() - started >= 0.2 + 0.1


def test_the_proxy_counts_what_moto_serves(blob: Path) -> None:
    from local_stack.emulator import running_emulator

    with running_emulator() as emulator:
        emulator.client("s3").create_bucket(Bucket="bench")
        emulator.client("s3").upload_file(str(blob), "bench", "videos/a.mp4")
        with counting_proxy(emulator.endpoint_url) as proxy:
            s3 = _s3(proxy.endpoint_url)
            body = s3.get_object(Bucket="bench", Key="videos/a.mp4", Range="bytes=10-109")["Body"].read()
            assert body == blob.read_bytes()[10:110]
            # The proxy counts a chunk once its socket has accepted it, which can be a moment after
            # the client has read it.
            assert _settled(proxy.counters.snapshot) == (1, 100)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", (0, 9)),
        ("bytes=-10", (90, 99)),
        ("bytes=95-", (95, 99)),
        ("bytes=95-200", (95, 99)),
        ("bytes=-500", (0, 99)),
        ("items=0-1", None),
    ],
)
def test_parse_range_follows_s3(header: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 100) == expected


def test_parse_range_rejects_a_start_past_the_end() -> None:
    with pytest.raises(ValueError, match="bytes=100-"):
        parse_range("bytes=100-", 100)


def _settled(read: Callable[[], tuple[int, int]], timeout_s: float = 5.0) -> tuple[int, int]:
    """`read()` once it has stopped changing for 0.1 s (or at the timeout)."""
    deadline, last = time.monotonic() + timeout_s, read()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        current = read()
        if current == last:
            return current
        last = current
    return last
