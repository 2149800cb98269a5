"""HEAD and ranged GETs of the source over real HTTP to moto: pinning, error classification, retries.

A recording proxy (tests/unit/worker/fault_proxy.py) sits between the fetcher and moto where a
test needs an independent count of what crossed the wire, or real HTTP faults.
"""

from __future__ import annotations

import io
import json
import logging
import random
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from devkit.environment import overlaid_environment as environment
from local_stack.emulator import Emulator
from tests.unit.worker.fault_proxy import FaultProxy
from thumbnailer import aws, s3_fetcher
from thumbnailer.errors import S3ReadError, SourceChangedError, SourceNotFoundError, SourceUnreadableError
from thumbnailer.logs import get_logger
from thumbnailer.s3_fetcher import RangeFetcher, SourceObject, head_source
from thumbnailer.s3_reader import RangedS3Reader


@pytest.fixture(scope="module")
def s3(worker_emulator: Emulator) -> Any:
    return worker_emulator.client("s3")


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"fetch-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def _random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


# --- head_source -------------------------------------------------------------------------------------
def test_head_source_reports_size_etag_type_and_lowercased_metadata(s3: Any, bucket: str) -> None:
    put = s3.put_object(
        Bucket=bucket,
        Key="videos/a.mp4",
        Body=b"abc" * 100,
        ContentType="video/mp4",
        Metadata={"Thumbnail-At": "12.5", "thumbnail-FORMAT": "webp"},
    )
    source = head_source(bucket, "videos/a.mp4", client=s3)
    assert source == SourceObject(
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


# --- pinning to what HEAD saw ------------------------------------------------------------------------
def test_versioned_source_reads_the_pinned_version_after_an_overwrite(s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    old = _random_bytes(5000, seed=8)
    first = s3.put_object(Bucket=bucket, Key="v.mp4", Body=old)["VersionId"]
    source = head_source(bucket, "v.mp4", client=s3)  # no version asked: pinned to the one HEAD saw
    assert source.version_id == first
    fetcher = RangeFetcher(source, client=s3)
    assert fetcher.get(0, 1500) == old[:1500]
    s3.put_object(Bucket=bucket, Key="v.mp4", Body=_random_bytes(9000, seed=9))
    assert fetcher.get(1500, 5000) == old[1500:]
    assert s3.get_object(Bucket=bucket, Key="v.mp4")["ContentLength"] == 9000


def test_overwrite_without_versioning_is_seen_by_if_match(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="v.mp4", Body=_random_bytes(4096, seed=6))
    source = head_source(bucket, "v.mp4", client=s3)
    assert source.version_id is None and source.etag
    s3.put_object(Bucket=bucket, Key="v.mp4", Body=_random_bytes(4096, seed=7))  # same size
    with pytest.raises(SourceChangedError, match=r"s3://.*/v\.mp4 was overwritten"):
        RangeFetcher(source, client=s3).get(2048, 3072)


def test_size_change_without_etag_or_version_is_detected(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="v.bin", Body=_random_bytes(3000, seed=10))
    source = head_source(bucket, "v.bin", client=s3)
    unpinned = SourceObject(source.bucket, source.key, None, source.size, None, None, {})
    fetcher = RangeFetcher(unpinned, client=s3)
    s3.put_object(Bucket=bucket, Key="v.bin", Body=_random_bytes(5000, seed=11))
    with pytest.raises(SourceChangedError, match="Content-Range"):
        fetcher.get(0, 1024)


def test_object_deleted_after_head_is_not_found(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="gone.mp4", Body=b"x" * 100)
    fetcher = RangeFetcher(head_source(bucket, "gone.mp4", client=s3), client=s3)
    s3.delete_object(Bucket=bucket, Key="gone.mp4")
    with pytest.raises(SourceNotFoundError, match=r"gone\.mp4"):
        fetcher.get(0, 100)


def test_archived_object_is_unreadable_not_missing(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="cold.mp4", Body=b"x" * 100, StorageClass="GLACIER")
    fetcher = RangeFetcher(head_source(bucket, "cold.mp4", client=s3), client=s3)
    with pytest.raises(SourceUnreadableError, match=r"cold\.mp4 is archived") as raised:
        fetcher.get(0, 100)
    assert not isinstance(raised.value, SourceNotFoundError)


# --- retries over real HTTP faults -----------------------------------------------------------------
def test_server_errors_are_retried_by_the_client(
    s3: Any, bucket: str, fault_proxy: FaultProxy, proxied_s3: Any
) -> None:
    data = _random_bytes(300_000, seed=12)
    s3.put_object(Bucket=bucket, Key="r.bin", Body=data)
    fetcher = RangeFetcher(head_source(bucket, "r.bin", client=proxied_s3))  # the cached client
    fault_proxy.get_faults[:] = ["500", "500"]
    assert fetcher.get(150_000, 300_000) == data[150_000:]
    statuses = [get.status for get in fault_proxy.gets()]
    assert statuses == [500, 500, 206]  # two failures, then the GET
    assert fetcher.stats.requests == 1
    assert fetcher.stats.retries == 2


def test_a_body_cut_off_mid_stream_is_read_again(
    s3: Any, bucket: str, fault_proxy: FaultProxy, proxied_s3: Any
) -> None:
    data = _random_bytes(200_000, seed=13)
    s3.put_object(Bucket=bucket, Key="t.bin", Body=data)
    fetcher = RangeFetcher(head_source(bucket, "t.bin", client=proxied_s3), client=proxied_s3)
    fault_proxy.get_faults[:] = ["truncate"]
    assert fetcher.get(0, len(data)) == data
    gets = fault_proxy.gets()
    assert [get.body_bytes for get in gets] == [100_000, 200_000]
    stats = fetcher.stats
    assert (stats.requests, stats.bytes_read, stats.retries) == (2, len(data), 1)
    assert stats.ranges == [(0, len(data))]


def test_a_body_that_keeps_failing_gives_a_clear_error(
    s3: Any, bucket: str, fault_proxy: FaultProxy, proxied_s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3.put_object(Bucket=bucket, Key="t.bin", Body=_random_bytes(10_000, seed=14))
    monkeypatch.setattr(s3_fetcher, "BODY_RETRY_BACKOFF_SECONDS", 0.01)
    fetcher = RangeFetcher(head_source(bucket, "t.bin", client=proxied_s3), client=proxied_s3)
    fault_proxy.get_faults[:] = ["truncate"] * s3_fetcher.BODY_READ_ATTEMPTS
    with pytest.raises(
        S3ReadError, match=rf"t\.bin: bytes 0-9999 could not be read in {s3_fetcher.BODY_READ_ATTEMPTS}"
    ):
        fetcher.get(0, 10_000)
    assert len(fault_proxy.gets()) == s3_fetcher.BODY_READ_ATTEMPTS


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


@pytest.fixture
def worker_log() -> Iterator[io.StringIO]:
    """The worker logger's JSON lines, written to a buffer for the test."""
    logger = get_logger()
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        yield stream
    finally:
        handler.setStream(previous)
        logger.remove_keys(["correlation_id"])


def test_a_retry_warning_from_the_reader_is_a_json_line_with_the_correlation_id(
    s3: Any,
    bucket: str,
    fault_proxy: FaultProxy,
    proxied_s3: Any,
    monkeypatch: pytest.MonkeyPatch,
    worker_log: io.StringIO,
) -> None:
    data = _random_bytes(10_000, seed=16)
    s3.put_object(Bucket=bucket, Key="w.bin", Body=data)
    monkeypatch.setattr(s3_fetcher, "BODY_RETRY_BACKOFF_SECONDS", 0.01)
    get_logger().set_correlation_id("REQ-retry-log")
    reader = RangedS3Reader(head_source(bucket, "w.bin", client=proxied_s3), client=proxied_s3)
    fault_proxy.get_faults[:] = ["truncate"]
    assert reader.read() == data
    lines = [json.loads(line) for line in worker_log.getvalue().splitlines()]
    [warning] = [line for line in lines if line["level"] == "WARNING"]
    assert warning["correlation_id"] == "REQ-retry-log"
    assert warning["service"] == get_logger().service
    assert "w.bin bytes 0-9999 failed (attempt 1)" in warning["message"]


# --- open_source: one ranged GET instead of HEAD + GET ---------------------------------------------
def test_open_source_is_one_get_that_says_what_head_would(
    s3: Any, bucket: str, fault_proxy: FaultProxy, proxied_s3: Any
) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    data = _random_bytes(3_000_000, seed=21)
    put = s3.put_object(
        Bucket=bucket, Key="videos/o.mp4", Body=data, ContentType="video/mp4", Metadata={"Thumbnail-At": "7"}
    )
    opened = s3_fetcher.open_source(bucket, "videos/o.mp4", client=proxied_s3, first_bytes=1 << 20)
    assert opened.source == SourceObject(
        bucket, "videos/o.mp4", put["VersionId"], len(data), put["ETag"], "video/mp4", {"thumbnail-at": "7"}
    )
    assert opened.head == data[: 1 << 20]
    assert [(e.method, e.range, e.body_bytes) for e in fault_proxy.exchanges] == [
        ("GET", "bytes=0-1048575", 1 << 20)
    ]
    assert (opened.stats.requests, opened.stats.bytes_read) == (1, 1 << 20)
    # The reader starts from those bytes: reading them costs no request; later GETs are pinned.
    reader = RangedS3Reader(opened.source, client=proxied_s3, block_size=1 << 19, head=opened.head)
    assert reader.read(1 << 20) == data[: 1 << 20]
    assert reader.stats.requests == 0
    s3.put_object(Bucket=bucket, Key="videos/o.mp4", Body=b"new")
    assert reader.read(1000) == data[1 << 20 : (1 << 20) + 1000]  # the pinned version, not the new one


def test_open_source_small_and_empty_objects(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="small.mp4", Body=b"x" * 100)
    opened = s3_fetcher.open_source(bucket, "small.mp4", client=s3)
    assert (opened.source.size, opened.head) == (100, b"x" * 100)
    s3.put_object(Bucket=bucket, Key="empty.mp4", Body=b"")
    empty = s3_fetcher.open_source(bucket, "empty.mp4", client=s3)  # no byte 0 to range over: a HEAD
    assert (empty.source.size, empty.head) == (0, b"")


def test_open_source_classifies_errors_as_head_did(s3: Any, bucket: str) -> None:
    with pytest.raises(SourceNotFoundError, match=rf"s3://{bucket}/videos/missing\.mp4 does not exist"):
        s3_fetcher.open_source(bucket, "videos/missing.mp4", client=s3)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="videos/a.mp4", Body=b"x")
    with pytest.raises(SourceNotFoundError, match=r"videos/a\.mp4 \(version no-such-version\)"):
        s3_fetcher.open_source(bucket, "videos/a.mp4", version_id="no-such-version", client=s3)
    with pytest.raises(SourceNotFoundError, match="no-such-bucket-s3io"):
        s3_fetcher.open_source("no-such-bucket-s3io", "videos/a.mp4", client=s3)


def test_an_s3_input_opens_a_front_moov_video_in_three_requests(
    s3: Any, bucket: str, clips: dict[str, Any], fault_proxy: FaultProxy, proxied_s3: Any, tmp_path: Any
) -> None:
    """The CLI on s3://: the first GET, the frame's GOP, the HEAD before writing; no HEAD first."""
    from thumbnailer.__main__ import main as cli_main

    s3.upload_file(str(clips["moov_front"].path), bucket, "videos/front.mp4")
    assert cli_main([f"s3://{bucket}/videos/front.mp4", "--out", str(tmp_path), "--at", "1"]) == 0
    methods = [e.method for e in fault_proxy.exchanges]
    first = f"bytes=0-{s3_fetcher.FIRST_READ_BYTES - 1}"
    assert methods[0] == "GET" and fault_proxy.exchanges[0].range == first
    assert methods.count("HEAD") == 1 and methods[-1] == "HEAD"  # only the check before writing
    manifest = json.loads((tmp_path / "front.mp4.json").read_text())
    assert manifest["io"]["requests"] == methods.count("GET") <= 2
    assert manifest["io"]["bytes_read"] == sum(e.body_bytes for e in fault_proxy.gets())
