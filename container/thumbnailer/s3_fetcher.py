"""Open the source with one ranged GET, then GET byte ranges of exactly that version: checked,
retried and counted.

The first GET (`open_source`) answers what a HEAD would (size from Content-Range, version, ETag,
content type, metadata) and brings the object's first bytes. Every later GET is pinned to the
object it saw (VersionId and If-Match), so an overwrite during the read fails loudly instead of
mixing bytes of two objects.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from thumbnailer.aws import s3_client
from thumbnailer.errors import MissingCredentialsError, S3ReadError, SourceChangedError
from thumbnailer.logs import service_name
from thumbnailer.s3_errors import describe, raise_classified

if TYPE_CHECKING:  # the stubs are a dev dependency, absent from the image
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import GetObjectOutputTypeDef

# A Powertools child of the worker logger: JSON lines with its keys (correlation id), not plain text.
logger = Logger(service=service_name(), child=True)

# The first GET's length, one read block: the file type box and a front moov box of up to ~8
# minutes of 1080p30 with audio (with the first keyframe after it in shorter files), or the first
# keyframe when the moov box is at the end. A larger moov box comes in one more GET (its size is
# in its header). 1 MiB caught the benchmark's 10-minute moov box (0.58 MB) in one GET but read
# 2.4x the physical minimum of a 640x360 file (tests/unit/worker/test_worker_budget.py).
FIRST_READ_BYTES = 512 * 1024
# botocore retries the request itself; a body cut off mid-stream is ours to retry.
BODY_READ_ATTEMPTS = 4
BODY_RETRY_BACKOFF_SECONDS = 0.2
_TRANSIENT_BODY_ERRORS = (
    ResponseStreamingError,
    IncompleteReadError,
    ReadTimeoutError,
    ConnectionClosedError,
)


@dataclass(frozen=True)
class SourceObject:
    """What HEAD says about the source; every GET is pinned to it."""

    bucket: str
    key: str
    version_id: str | None
    size: int
    etag: str | None  # as S3 returns it, quoted: usable in If-Match as is
    content_type: str | None
    metadata: dict[str, str]  # S3 user metadata: keys lower-case, without x-amz-meta-

    @property
    def uri(self) -> str:
        version = f"?versionId={self.version_id}" if self.version_id else ""
        return f"s3://{self.bucket}/{self.key}{version}"


@dataclass
class ReadStats:
    """What a fetcher moved: GETs issued, body bytes received, the byte ranges [start, end) asked."""

    requests: int = 0
    bytes_read: int = 0
    ranges: list[tuple[int, int]] = field(default_factory=list)
    retries: int = 0  # botocore's request retries plus our body-read retries


def head_source(
    bucket: str, key: str, version_id: str | None = None, client: S3Client | None = None
) -> SourceObject:
    """HEAD the source: its size (so seeking to the end costs no request), ETag, version and metadata."""
    s3 = client or s3_client()
    params: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version_id:
        params["VersionId"] = version_id
    try:
        head = s3.head_object(**params)
    except ClientError as error:
        raise_classified(error, bucket, key, version_id)
    except (NoCredentialsError, PartialCredentialsError) as error:
        raise _no_credentials(bucket, key, error) from None
    return SourceObject(
        bucket=bucket,
        key=key,
        # Pin to the version HEAD saw even when none was asked for (versioned bucket).
        version_id=head.get("VersionId") or version_id,
        size=int(head["ContentLength"]),
        etag=head.get("ETag"),
        content_type=head.get("ContentType"),
        metadata={name.lower(): value for name, value in head.get("Metadata", {}).items()},
    )


def _no_credentials(bucket: str, key: str, error: Exception) -> MissingCredentialsError:
    return MissingCredentialsError(
        f"no AWS credentials to read s3://{bucket}/{key} ({error}): set them (aws configure, "
        "AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY); for the local stack "
        "(make local-up), set AWS_ENDPOINT_URL to its endpoint and any credentials, e.g. "
        "AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing"
    )


@dataclass(frozen=True)
class OpenedSource:
    """The source as the first GET saw it, its first bytes, and what that GET cost."""

    source: SourceObject
    head: bytes  # bytes [0, len(head)) of the object
    stats: ReadStats


def open_source(
    bucket: str,
    key: str,
    version_id: str | None = None,
    client: S3Client | None = None,
    first_bytes: int = FIRST_READ_BYTES,
) -> OpenedSource:
    """GET the object's first bytes; the response says what HEAD would (no separate HEAD).

    Pinned to `version_id` when given; later GETs are pinned to the version and ETag it returns.
    An empty object has no byte to range over (S3 answers 416): it is described by a HEAD.
    """
    s3 = client or s3_client()
    params: dict[str, Any] = {"Bucket": bucket, "Key": key, "Range": f"bytes=0-{first_bytes - 1}"}
    if version_id:
        params["VersionId"] = version_id
    stats = ReadStats()
    where = describe(bucket, key, version_id)
    for attempt in range(1, BODY_READ_ATTEMPTS + 1):
        try:
            response = s3.get_object(**params)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "InvalidRange":
                return OpenedSource(head_source(bucket, key, version_id, s3), b"", stats)
            raise_classified(error, bucket, key, version_id)
        except (NoCredentialsError, PartialCredentialsError) as error:
            raise _no_credentials(bucket, key, error) from None
        stats.requests += 1
        stats.retries += int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0))
        size = _total_size(response, first_bytes, where)
        try:
            body = response["Body"].read()
        except _TRANSIENT_BODY_ERRORS as error:
            logger.warning(
                "reading %s bytes 0-%d failed (attempt %d): %s", where, first_bytes - 1, attempt, error
            )
            stats.retries += 1
            time.sleep(BODY_RETRY_BACKOFF_SECONDS * attempt)
            continue
        finally:
            response["Body"].close()
        if len(body) != min(first_bytes, size):
            raise S3ReadError(f"{where}: asked for {min(first_bytes, size)} bytes, got {len(body)}")
        stats.bytes_read += len(body)
        stats.ranges.append((0, len(body)))
        return OpenedSource(_described(bucket, key, version_id, size, response), body, stats)
    raise S3ReadError(f"{where}: its first bytes could not be read in {BODY_READ_ATTEMPTS} attempts")


def _total_size(response: GetObjectOutputTypeDef, first_bytes: int, where: str) -> int:
    """The object's size: Content-Range's total, or the length of a whole small object."""
    content_range = response.get("ContentRange")
    if content_range:
        total = content_range.rpartition("/")[2]
        if total.isdigit():
            return int(total)
    length = int(response.get("ContentLength", -1))
    if content_range is None and 0 <= length <= first_bytes:
        return length  # the server sent the whole object: it is that small
    response["Body"].close()
    raise S3ReadError(
        f"{where}: the server ignored the range (Content-Range {content_range!r}, {length} bytes)"
    )


def _described(
    bucket: str, key: str, version_id: str | None, size: int, response: GetObjectOutputTypeDef
) -> SourceObject:
    return SourceObject(
        bucket=bucket,
        key=key,
        # Pin to the version the GET returned even when none was asked for (versioned bucket).
        version_id=response.get("VersionId") or version_id,
        size=size,
        etag=response.get("ETag"),
        content_type=response.get("ContentType"),
        metadata={name.lower(): value for name, value in response.get("Metadata", {}).items()},
    )


class RangeFetcher:
    """Ranged GETs of one pinned source; safe to call from several threads at once."""

    def __init__(self, source: SourceObject, client: S3Client | None = None) -> None:
        self.source = source
        self.stats = ReadStats()
        self._client = client or s3_client()
        self._lock = threading.Lock()  # guards stats

    def get(self, start: int, end: int) -> bytes:
        """One ranged GET of [start, end), its body read with bounded retries."""
        params = self._params(start, end)
        failure: Exception | None = None
        for attempt in range(1, BODY_READ_ATTEMPTS + 1):
            response = self._request(params)
            try:
                body = response["Body"].read()
            except _TRANSIENT_BODY_ERRORS as error:
                failure = error
                self._note_retry(start, end, attempt, error)
                continue
            finally:
                response["Body"].close()
            self._check_response(response.get("ContentRange"), start, end, len(body))
            with self._lock:
                self.stats.bytes_read += len(body)
                self.stats.ranges.append((start, end))
            return body
        raise S3ReadError(
            f"{self.source.uri}: bytes {start}-{end - 1} could not be read "
            f"in {BODY_READ_ATTEMPTS} attempts: {failure}"
        )

    def _params(self, start: int, end: int) -> dict[str, Any]:
        source = self.source
        params: dict[str, Any] = {
            "Bucket": source.bucket,
            "Key": source.key,
            "Range": f"bytes={start}-{end - 1}",
        }
        if source.version_id:
            params["VersionId"] = source.version_id
        # Also with a version id: the "null" version of an unversioned key can be overwritten in place.
        if source.etag:
            params["IfMatch"] = source.etag
        return params

    def _request(self, params: dict[str, Any]) -> GetObjectOutputTypeDef:
        """The GET itself (botocore retries it); S3's errors on the source classified."""
        try:
            response = self._client.get_object(**params)
        except ClientError as error:
            raise_classified(error, self.source.bucket, self.source.key, self.source.version_id)
        with self._lock:
            self.stats.requests += 1
            self.stats.retries += int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0))
        return response

    def _note_retry(self, start: int, end: int, attempt: int, error: Exception) -> None:
        logger.warning(
            "reading %s bytes %d-%d failed (attempt %d): %s", self.source.uri, start, end - 1, attempt, error
        )
        with self._lock:
            self.stats.retries += 1
        time.sleep(BODY_RETRY_BACKOFF_SECONDS * attempt)

    def _check_response(self, content_range: str | None, start: int, end: int, received: int) -> None:
        expected = f"bytes {start}-{end - 1}/{self.source.size}"
        if content_range != expected or received != end - start:
            # Without a version or ETag to pin to, a new size is the only sign of an overwrite.
            raise SourceChangedError(
                f"{self.source.uri}: asked for {expected}, got Content-Range {content_range!r} "
                f"with {received} bytes: the object changed or the server ignored the range"
            )
