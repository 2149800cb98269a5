"""The worker's S3 reader and writer, over real HTTP to moto in server mode.

A small loopback proxy sits between the reader and moto where a test needs an independent
count of what crossed the wire, or real HTTP faults (a 500, a body cut off mid-stream).
"""

from __future__ import annotations

import http.client
import io
import random
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import av
import numpy as np
import pytest

from local_stack.emulator import Emulator, environment
from tests.unit.worker.long_videos import encode_segment, moov_first
from thumbnailer import aws, s3io
from thumbnailer.s3io import (
    RangedS3Reader,
    S3ReadError,
    SourceChangedError,
    SourceNotFoundError,
    SourceUnreadableError,
    head_source,
    put_output,
)

MiB = 1 << 20


# --- a recording, fault-injecting HTTP proxy in front of moto ------------------------------------
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


HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    upstream = urlsplit(proxy.upstream)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _forward(self) -> None:
            request_body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            fault = proxy.next_fault(self.command)
            requested_range = self.headers.get("Range")
            if fault == "500":
                payload = b"<Error><Code>InternalError</Code><Message>injected</Message></Error>"
                # Recorded before answering: the client may look at the log as soon as it has the reply.
                proxy.record(Exchange(self.command, self.path, requested_range, 500, len(payload)))
                self.send_response(500)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            connection = http.client.HTTPConnection(upstream.hostname or "", upstream.port, timeout=30)
            headers = {name: value for name, value in self.headers.items() if name.lower() not in HOP_BY_HOP}
            connection.request(self.command, self.path, body=request_body, headers=headers)
            response = connection.getresponse()
            body = response.read()
            connection.close()
            sent = body[: len(body) // 2] if fault == "truncate" else body
            if self.command == "HEAD":
                sent = b""
            proxy.record(Exchange(self.command, self.path, requested_range, response.status, len(sent)))
            self.send_response(response.status)
            for name, value in response.getheaders():
                if name.lower() not in HOP_BY_HOP | {"content-length"}:
                    self.send_header(name, value)
            # HEAD announces the object's length without a body.
            self.send_header("Content-Length", response.getheader("Content-Length") or str(len(body)))
            self.end_headers()
            self.wfile.write(sent)
            self.wfile.flush()
            if fault == "truncate":  # announce the whole body, send half, hang up
                self.close_connection = True

        do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _forward

    return Handler


@pytest.fixture
def fault_proxy(worker_emulator: Emulator) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream=worker_emulator.endpoint_url)
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


@pytest.fixture
def proxied_s3(fault_proxy: FaultProxy, worker_emulator: Emulator) -> Iterator[Any]:
    """The worker's own cached client (its real retry config) pointed at the proxy by environment."""
    variables = {**worker_emulator.environment, "AWS_ENDPOINT_URL": fault_proxy.endpoint_url}
    with environment(variables):
        aws.s3_client.cache_clear()
        try:
            yield aws.s3_client()
        finally:
            aws.s3_client.cache_clear()


# --- buckets and objects -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def s3(worker_emulator: Emulator) -> Any:
    return worker_emulator.client("s3")


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"s3io-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def _random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _read_exactly(reader: RangedS3Reader, length: int) -> bytes:
    """read() until `length` bytes or the end: a raw reader returns short reads where its cache ends."""
    chunks = []
    while length > 0 and (chunk := reader.read(length)):
        chunks.append(chunk)
        length -= len(chunk)
    return b"".join(chunks)


# --- test videos (the 100 MB ones are shared: conftest.big_videos) ---------------------------------
@pytest.fixture(scope="module")
def small_videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """4 s, 160x120, with the moov atom at the front ("fast") or at the end ("end")."""
    folder = tmp_path_factory.mktemp("small-videos")
    made = {place: folder / f"small-{place}.mp4" for place in ("fast", "end")}
    for place, path in made.items():
        encode_segment(path, frames=100, width=160, height=120, noise=False, faststart=place == "fast")
        assert moov_first(path) == (place == "fast")
    return made


def _middle_frame(file: Any) -> tuple[int, np.ndarray]:
    """Seek to the middle (to the keyframe before it), decode one frame: its pts and pixels."""
    with av.open(file) as container:
        stream = container.streams.video[0]
        container.seek(container.duration // 2)
        frame = next(container.decode(stream))
        assert frame.pts is not None
        return frame.pts, frame.to_ndarray(format="rgb24")


# --- ranges ----------------------------------------------------------------------------------------
def test_random_reads_match_the_uploaded_bytes_and_every_get_is_ranged(
    s3: Any, bucket: str, fault_proxy: FaultProxy, proxied_s3: Any
) -> None:
    data = _random_bytes(3 * MiB + 12345, seed=1)
    key = "videos/My clip ü+1 (final).mp4"  # spaces, unicode, '+': read exactly as named
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    source = head_source(bucket, key, client=proxied_s3)
    block = 64 * 1024
    reader = RangedS3Reader(source, client=proxied_s3, block_size=block, cache_blocks=4)
    rng = random.Random(2)

    edges = [(block - 10, 20), (2 * block - 1, 2), (5 * block, 3 * block + 7), (len(data) - 5, 100)]
    randoms = [(rng.randrange(len(data)), rng.choice([1, 100, 4096, 70_000, 200_000])) for _ in range(150)]
    for offset, length in edges + randoms:
        assert reader.seek(offset) == offset
        assert _read_exactly(reader, length) == data[offset : offset + length], (offset, length)
        assert reader.tell() == min(offset + length, len(data))
        assert reader.cached_bytes <= 4 * block

    # At and past the end: a short read, then empty reads that cost no request.
    assert reader.seek(-3, io.SEEK_END) == len(data) - 3
    assert reader.read(10) == data[-3:]
    requests_before = reader.stats.requests
    assert reader.read(10) == b""
    assert reader.seek(len(data) + 100) == len(data) + 100
    assert reader.read(1) == b""
    assert reader.stats.requests == requests_before
    # Relative seeks.
    reader.seek(1000)
    reader.seek(-500, io.SEEK_CUR)
    assert reader.read(10) == data[500:510]
    with pytest.raises(ValueError, match="negative"):
        reader.seek(-1)

    # The proxy's view matches the reader's own count; every GET asked for a bounded range.
    gets = fault_proxy.gets()
    assert len(gets) == reader.stats.requests == len(reader.stats.ranges)
    assert sum(get.body_bytes for get in gets) == reader.stats.bytes_read
    assert [get.range for get in gets] == [f"bytes={a}-{b - 1}" for a, b in reader.stats.ranges]
    assert all(0 < b - a <= s3io.MAX_BLOCKS_PER_REQUEST * block for a, b in reader.stats.ranges)

    # Small sequential reads (PyAV reads 32 KiB at a time): one GET per block, not per read.
    sequential = RangedS3Reader(source, client=proxied_s3, block_size=block, cache_blocks=4)
    chunks = iter(lambda: sequential.read(10_000), b"")
    assert b"".join(chunks) == data
    assert sequential.stats.requests == -(-len(data) // block)
    assert sequential.stats.bytes_read == len(data)


def test_read_ahead_fetches_from_the_read_position_to_the_block_end(s3: Any, bucket: str) -> None:
    data = _random_bytes(1000, seed=3)
    s3.put_object(Bucket=bucket, Key="a.bin", Body=data)
    reader = RangedS3Reader(head_source(bucket, "a.bin", client=s3), client=s3, block_size=256)
    reader.seek(300)
    assert reader.read(10) == data[300:310]
    assert reader.read(100) == data[310:410]  # served from the read-ahead
    reader.seek(260)  # earlier in the same block: only the missing bytes are fetched
    assert reader.read(50) == data[260:310]
    reader.seek(500)  # a short read of what is held, then the next block fetched from its start
    assert reader.read(100) == data[500:512]
    assert reader.read(88) == data[512:600]
    reader.seek(990)
    assert reader.read(100) == data[990:]  # the last block ends at EOF
    assert reader.stats.ranges == [(300, 512), (260, 300), (512, 768), (990, 1000)]


def test_prefetch_fetches_ranges_in_parallel_then_reads_cost_nothing(
    s3: Any, bucket: str, fault_proxy: FaultProxy, proxied_s3: Any
) -> None:
    data = _random_bytes(40 * 65536, seed=4)
    s3.put_object(Bucket=bucket, Key="k.bin", Body=data)
    block = 65536
    reader = RangedS3Reader(
        head_source(bucket, "k.bin", client=proxied_s3), client=proxied_s3, block_size=block
    )
    ranges = [
        (3 * block + 100, 3 * block + 5000),
        (10 * block, 12 * block + 1),
        (30 * block - 10, 30 * block + 10),
    ]
    reader.prefetch(ranges, max_workers=4)
    assert len(fault_proxy.gets()) == reader.stats.requests == 3
    requests = reader.stats.requests
    for start, end in ranges:
        reader.seek(start)
        assert reader.read(end - start) == data[start:end]
    assert reader.stats.requests == requests

    # Reading while a prefetch runs in another thread: same bytes, no block fetched twice.
    other = RangedS3Reader(
        head_source(bucket, "k.bin", client=proxied_s3), client=proxied_s3, block_size=block
    )
    wanted = [(i * block, i * block + 10) for i in range(0, 32, 2)]
    prefetching = threading.Thread(target=other.prefetch, args=(wanted,))
    prefetching.start()
    for start, end in wanted:
        other.seek(start)
        assert other.read(end - start) == data[start:end]
    prefetching.join()
    fetched = [range(a // block, (b - 1) // block + 1) for a, b in other.stats.ranges]
    blocks = [index for run in fetched for index in run]
    assert len(blocks) == len(set(blocks))


def test_prefetch_is_capped_at_the_cache_size(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k.bin", Body=_random_bytes(20 * 1024, seed=5))
    reader = RangedS3Reader(
        head_source(bucket, "k.bin", client=s3), client=s3, block_size=1024, cache_blocks=3
    )
    assert reader.cache_limit == 3 * 1024
    reader.prefetch([(i * 1024, i * 1024 + 1000) for i in range(0, 20, 2)])
    assert sorted(reader.stats.ranges) == [(0, 1000), (2048, 3048), (4096, 5096)]  # 4000 > limit
    assert reader.cached_bytes == 3000


def test_prefetch_fetches_exact_ranges_and_reads_fill_only_the_gaps(s3: Any, bucket: str) -> None:
    data = _random_bytes(10 * 1024, seed=6)
    s3.put_object(Bucket=bucket, Key="k.bin", Body=data)
    reader = RangedS3Reader(head_source(bucket, "k.bin", client=s3), client=s3, block_size=1024)
    # Exact pieces, not to the block end; one straddling blocks is one GET; two meeting in a
    # block (5, 7) become one piece; clipped to the object.
    reader.prefetch([(100, 300), (1500, 2600), (5100, 5200), (5900, 6000), (9900, 20_000)])
    assert sorted(reader.stats.ranges) == [(100, 300), (1500, 2600), (5100, 6000), (9900, 10240)]
    assert reader.cached_bytes == 200 + 1100 + 900 + 340
    requests = reader.stats.requests
    for start, end in [(100, 300), (1500, 2600), (5150, 5950), (9900, 10240)]:
        reader.seek(start)
        assert reader.read(end - start) == data[start:end]
    assert reader.stats.requests == requests
    # Reading around a held piece fetches only what is missing: the gap before it, then from its
    # end to the block end (read-ahead), joined into one piece per block.
    reader.seek(50)
    assert _read_exactly(reader, 400) == data[50:450]
    assert reader.stats.ranges[requests:] == [(50, 100), (300, 1024)]
    reader.seek(0)
    assert _read_exactly(reader, 1024) == data[:1024]
    assert reader.stats.ranges[requests + 2 :] == [(0, 50)]
    assert reader.cached_bytes == 1024 + 1100 + 900 + 340


# --- through PyAV ----------------------------------------------------------------------------------
@pytest.mark.parametrize("moov", ["fast", "end"])
def test_pyav_decodes_the_same_frame_as_from_a_local_file(
    s3: Any, bucket: str, small_videos: dict[str, Path], moov: str
) -> None:
    path = small_videos[moov]
    s3.put_object(Bucket=bucket, Key="videos/small.mp4", Body=path.read_bytes())
    reader = RangedS3Reader(head_source(bucket, "videos/small.mp4", client=s3), client=s3)
    pts, pixels = _middle_frame(reader)
    local_pts, local_pixels = _middle_frame(str(path))
    assert pts == local_pts > 0
    np.testing.assert_array_equal(pixels, local_pixels)


@pytest.mark.parametrize("moov", ["fast", "end"])
def test_pyav_seek_in_a_100mb_video_reads_under_3_percent(
    s3: Any, bucket: str, big_videos: dict[str, Path], moov: str, fault_proxy: FaultProxy, proxied_s3: Any
) -> None:
    path = big_videos[moov]
    size = path.stat().st_size
    assert size >= 100 * 10**6
    with path.open("rb") as file:
        s3.upload_fileobj(file, bucket, "videos/big.mp4")  # straight to moto, not through the proxy
    try:
        reader = RangedS3Reader(head_source(bucket, "videos/big.mp4", client=proxied_s3), client=proxied_s3)
        pts, pixels = _middle_frame(reader)
    finally:  # the emulator lives for the session: free the 100 MB
        s3.delete_object(Bucket=bucket, Key="videos/big.mp4")
    local_pts, local_pixels = _middle_frame(str(path))
    assert pts == local_pts > 0
    np.testing.assert_array_equal(pixels, local_pixels)
    transferred = sum(get.body_bytes for get in fault_proxy.gets())
    assert transferred == reader.stats.bytes_read < 0.03 * size
    assert len(fault_proxy.gets()) == reader.stats.requests <= 10


# --- pinning to what HEAD saw ------------------------------------------------------------------------
def test_overwrite_between_reads_fails_loudly_without_versioning(s3: Any, bucket: str) -> None:
    old = _random_bytes(4096, seed=6)
    s3.put_object(Bucket=bucket, Key="v.mp4", Body=old)
    source = head_source(bucket, "v.mp4", client=s3)
    assert source.version_id is None and source.etag
    reader = RangedS3Reader(source, client=s3, block_size=1024)
    assert reader.read(100) == old[:100]
    s3.put_object(
        Bucket=bucket, Key="v.mp4", Body=_random_bytes(4096, seed=7)
    )  # same size: only If-Match sees it
    reader.seek(2048)
    with pytest.raises(SourceChangedError, match=r"s3://.*/v\.mp4 was overwritten"):
        reader.read(100)
    requests = reader.stats.requests
    with pytest.raises(SourceChangedError):  # final: no new request
        reader.read(100)
    assert reader.stats.requests == requests


def test_overwrite_during_pyav_decoding_surfaces_as_source_changed(
    s3: Any, bucket: str, small_videos: dict[str, Path]
) -> None:
    data = small_videos["fast"].read_bytes()
    s3.put_object(Bucket=bucket, Key="v.mp4", Body=data)
    reader = RangedS3Reader(head_source(bucket, "v.mp4", client=s3), client=s3, block_size=2048)
    with av.open(reader, buffer_size=2048) as container:  # small reads: the middle is not read yet
        s3.put_object(Bucket=bucket, Key="v.mp4", Body=data[::-1])
        with pytest.raises(SourceChangedError):
            container.seek(container.duration // 2)
            next(container.decode(video=0))


def test_versioned_source_reads_the_pinned_version_after_an_overwrite(s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    old = _random_bytes(5000, seed=8)
    first = s3.put_object(Bucket=bucket, Key="v.mp4", Body=old)["VersionId"]
    source = head_source(bucket, "v.mp4", client=s3)  # no version asked: pinned to the one HEAD saw
    assert source.version_id == first
    reader = RangedS3Reader(source, client=s3, block_size=1024)
    assert reader.read(1500) == old[:1500]
    s3.put_object(Bucket=bucket, Key="v.mp4", Body=_random_bytes(9000, seed=9))
    assert reader.read() == old[1500:]
    assert s3.get_object(Bucket=bucket, Key="v.mp4")["ContentLength"] == 9000


def test_size_change_without_etag_or_version_is_detected(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="v.bin", Body=_random_bytes(3000, seed=10))
    source = head_source(bucket, "v.bin", client=s3)
    unpinned = s3io.SourceObject(source.bucket, source.key, None, source.size, None, None, {})
    reader = RangedS3Reader(unpinned, client=s3, block_size=1024)
    s3.put_object(Bucket=bucket, Key="v.bin", Body=_random_bytes(5000, seed=11))
    with pytest.raises(SourceChangedError, match="Content-Range"):
        reader.read(10)


def test_object_deleted_after_head_is_not_found(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="gone.mp4", Body=b"x" * 100)
    reader = RangedS3Reader(head_source(bucket, "gone.mp4", client=s3), client=s3)
    s3.delete_object(Bucket=bucket, Key="gone.mp4")
    with pytest.raises(SourceNotFoundError, match=r"gone\.mp4"):
        reader.read(10)


def test_archived_object_is_unreadable_not_missing(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="cold.mp4", Body=b"x" * 100, StorageClass="GLACIER")
    reader = RangedS3Reader(head_source(bucket, "cold.mp4", client=s3), client=s3)
    with pytest.raises(SourceUnreadableError, match=r"cold\.mp4 is archived") as raised:
        reader.read(10)
    assert not isinstance(raised.value, SourceNotFoundError)


# --- retries over real HTTP faults -----------------------------------------------------------------
def test_server_errors_are_retried_by_the_client(
    s3: Any, bucket: str, fault_proxy: FaultProxy, proxied_s3: Any
) -> None:
    data = _random_bytes(300_000, seed=12)
    s3.put_object(Bucket=bucket, Key="r.bin", Body=data)
    reader = RangedS3Reader(
        head_source(bucket, "r.bin", client=proxied_s3), block_size=100_000
    )  # cached client
    fault_proxy.get_faults[:] = ["500", "500"]
    reader.seek(150_000)
    assert reader.read(100_000) == data[150_000:250_000]
    statuses = [get.status for get in fault_proxy.gets()]
    assert statuses == [500, 500, 206]  # two failures, then one GET for both blocks
    assert reader.stats.requests == 1
    assert reader.stats.retries == 2


def test_a_body_cut_off_mid_stream_is_read_again(
    s3: Any, bucket: str, fault_proxy: FaultProxy, proxied_s3: Any
) -> None:
    data = _random_bytes(200_000, seed=13)
    s3.put_object(Bucket=bucket, Key="t.bin", Body=data)
    reader = RangedS3Reader(head_source(bucket, "t.bin", client=proxied_s3), client=proxied_s3)
    fault_proxy.get_faults[:] = ["truncate"]
    assert reader.read() == data
    gets = fault_proxy.gets()
    assert [get.body_bytes for get in gets] == [100_000, 200_000]
    assert reader.stats.summary() == {"requests": 2, "bytes_read": len(data), "retries": 1}


def test_a_body_that_keeps_failing_gives_a_clear_error(
    s3: Any, bucket: str, fault_proxy: FaultProxy, proxied_s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3.put_object(Bucket=bucket, Key="t.bin", Body=_random_bytes(10_000, seed=14))
    monkeypatch.setattr(s3io, "BODY_RETRY_BACKOFF_SECONDS", 0.01)
    reader = RangedS3Reader(head_source(bucket, "t.bin", client=proxied_s3), client=proxied_s3)
    fault_proxy.get_faults[:] = ["truncate"] * s3io.BODY_READ_ATTEMPTS
    with pytest.raises(
        S3ReadError, match=rf"t\.bin: bytes 0-9999 could not be read in {s3io.BODY_READ_ATTEMPTS}"
    ):
        reader.read(10)
    assert len(fault_proxy.gets()) == s3io.BODY_READ_ATTEMPTS


def test_cached_client_has_explicit_retries_and_a_large_pool(worker_emulator: Emulator) -> None:
    with environment(worker_emulator.environment):
        aws.s3_client.cache_clear()
        try:
            client = aws.s3_client()
            assert aws.s3_client() is client
            assert client.meta.endpoint_url == worker_emulator.endpoint_url  # AWS_ENDPOINT_URL honoured
            config = client.meta.config
            assert config.retries == {"mode": "standard", "total_max_attempts": 5}
            assert config.max_pool_connections >= 16
            assert config.connect_timeout and config.read_timeout
        finally:
            aws.s3_client.cache_clear()


# --- head_source and put_output ---------------------------------------------------------------------
def test_head_source_reports_size_etag_type_and_lowercased_metadata(s3: Any, bucket: str) -> None:
    put = s3.put_object(
        Bucket=bucket,
        Key="videos/a.mp4",
        Body=b"abc" * 100,
        ContentType="video/mp4",
        Metadata={"Thumbnail-At": "12.5", "thumbnail-FORMAT": "webp"},
    )
    source = head_source(bucket, "videos/a.mp4", client=s3)
    assert source == s3io.SourceObject(
        bucket=bucket,
        key="videos/a.mp4",
        version_id=None,
        size=300,
        etag=put["ETag"],
        content_type="video/mp4",
        metadata={"thumbnail-at": "12.5", "thumbnail-format": "webp"},
    )


def test_head_source_missing_key_version_or_bucket_is_source_not_found(s3: Any, bucket: str) -> None:
    with pytest.raises(SourceNotFoundError, match=rf"s3://{bucket}/videos/missing\.mp4 does not exist"):
        head_source(bucket, "videos/missing.mp4", client=s3)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="videos/a.mp4", Body=b"x")
    with pytest.raises(SourceNotFoundError, match=r"videos/a\.mp4 \(version no-such-version\)"):
        head_source(bucket, "videos/a.mp4", version_id="no-such-version", client=s3)
    with pytest.raises(SourceNotFoundError, match="no-such-bucket-s3io"):
        head_source("no-such-bucket-s3io", "videos/a.mp4", client=s3)


def test_put_output_sets_type_cache_control_and_metadata(s3: Any, bucket: str) -> None:
    body = _random_bytes(2048, seed=15)
    put_output(
        bucket,
        "thumbnails/a.jpg",
        body,
        content_type="image/jpeg",
        cache_control="public, max-age=86400",
        metadata={"source-key": "videos/a.mp4", "frame-time": "12.5"},
        client=s3,
    )
    head = s3.head_object(Bucket=bucket, Key="thumbnails/a.jpg")
    assert head["ContentType"] == "image/jpeg"
    assert head["CacheControl"] == "public, max-age=86400"
    assert head["Metadata"] == {"source-key": "videos/a.mp4", "frame-time": "12.5"}
    assert s3.get_object(Bucket=bucket, Key="thumbnails/a.jpg")["Body"].read() == body
