"""The worker's S3 side: HEAD the source, read it by ranged GETs as a seekable file, write outputs.

Nothing goes to disk and no GET asks for the whole object: the reader fetches aligned blocks
into a bounded LRU cache, so PyAV can seek to the moov atom and to one keyframe and read only
those bytes. Every GET is pinned to the object HEAD saw (VersionId and If-Match), so an
overwrite during the read fails loudly instead of mixing bytes of two objects.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from thumbnailer.aws import s3_client

if TYPE_CHECKING:  # the stubs are a dev dependency, absent from the image
    from collections.abc import Buffer

    from mypy_boto3_s3 import S3Client

__all__ = [
    "RangedS3Reader",
    "ReadStats",
    "S3ReadFailed",
    "SourceChanged",
    "SourceNotFound",
    "SourceObject",
    "SourceUnreadable",
    "head_source",
    "put_output",
    "s3_client",
]

logger = logging.getLogger(__name__)

# botocore retries the request itself; a body cut off mid-stream is ours to retry.
BODY_READ_ATTEMPTS = 4
BODY_RETRY_BACKOFF_SECONDS = 0.2
# Contiguous missing blocks are fetched in one GET, up to this many (prefetch runs in parallel).
MAX_BLOCKS_PER_REQUEST = 8
_TRANSIENT_BODY_ERRORS = (
    ResponseStreamingError,
    IncompleteReadError,
    ReadTimeoutError,
    ConnectionClosedError,
)


class SourceNotFound(Exception):
    """The source object (or the version asked for) does not exist or may not be read."""


class SourceUnreadable(Exception):
    """The source exists but its bytes cannot be read as HEAD described them (archived, changed)."""


class SourceChanged(SourceUnreadable):
    """The source was overwritten while being read: its ETag or size no longer match what HEAD saw."""


class S3ReadFailed(Exception):
    """S3 kept failing to deliver a range (network, cut-off bodies) after every retry.

    Not the source's fault, so not a SourceUnreadable: running the task again may succeed.
    """


@dataclass(frozen=True)
class SourceObject:
    """What HEAD says about the source; the reader pins every GET to it."""

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


class _Block(NamedTuple):
    """A cached block: its bytes from `offset` (relative to the block's start) to its end or EOF."""

    offset: int
    data: bytes


@dataclass
class ReadStats:
    """What a reader moved: GETs issued, body bytes received, the byte ranges [start, end) asked."""

    requests: int = 0
    bytes_read: int = 0
    ranges: list[tuple[int, int]] = field(default_factory=list)
    retries: int = 0  # botocore's request retries plus our body-read retries

    def summary(self) -> dict[str, int]:
        """The counts, for a log line or the manifest."""
        return {"requests": self.requests, "bytes_read": self.bytes_read, "retries": self.retries}


def _describe(bucket: str, key: str, version_id: str | None) -> str:
    return f"s3://{bucket}/{key}" + (f" (version {version_id})" if version_id else "")


def _classify(error: ClientError, bucket: str, key: str, version_id: str | None) -> Exception:
    """Map an S3 error on the source to SourceNotFound/SourceUnreadable; anything else unchanged."""
    code = str(error.response.get("Error", {}).get("Code", ""))
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    where = _describe(bucket, key, version_id)
    classified: Exception = error
    # Specific codes first: S3 sends InvalidObjectState with a 403, PreconditionFailed with a 412.
    if code == "NoSuchBucket":
        classified = SourceNotFound(f"bucket {bucket!r} does not exist, reading {where}")
    elif code == "PreconditionFailed" or status == 412:
        classified = SourceChanged(f"{where} was overwritten while being read (its ETag changed)")
    elif code == "InvalidObjectState":
        classified = SourceUnreadable(f"{where} is archived and must be restored before it can be read")
    elif code == "InvalidRange":
        classified = SourceUnreadable(f"{where}: range not satisfiable ({error})")
    elif code in {"NoSuchKey", "NoSuchVersion", "NotFound", "404"} or status == 404:
        classified = SourceNotFound(f"{where} does not exist ({code})")
    elif code in {"AccessDenied", "Forbidden", "403"} or status == 403:
        # Without s3:ListBucket, S3 answers 403 for a missing key too.
        classified = SourceNotFound(f"{where} cannot be read: access denied (or it does not exist)")
    elif status == 400 and version_id and code in {"400", "InvalidArgument", "BadRequest"}:
        classified = SourceNotFound(f"{where}: invalid version id ({code})")
    return classified


def _raise_classified(error: ClientError, bucket: str, key: str, version_id: str | None) -> NoReturn:
    classified = _classify(error, bucket, key, version_id)
    if classified is error:
        raise error
    raise classified from error


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
        _raise_classified(error, bucket, key, version_id)
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


def put_output(
    bucket: str,
    key: str,
    body: bytes,
    *,
    content_type: str,
    cache_control: str,
    metadata: Mapping[str, str],
    client: S3Client | None = None,
) -> None:
    """Write one output object (a thumbnail or the manifest)."""
    (client or s3_client()).put_object(
        Bucket=bucket,
        Key=key,
        Body=body,
        ContentType=content_type,
        CacheControl=cache_control,
        Metadata=dict(metadata),
    )


class RangedS3Reader(io.RawIOBase):
    """A read-only, seekable file over one S3 object version, fetched in aligned blocks by ranged GETs.

    Memory stays bounded: at most `cache_blocks` blocks are kept (least recently used evicted).
    `read` is for one thread (PyAV's); `prefetch` may run alongside it from worker threads.
    """

    def __init__(
        self,
        source: SourceObject,
        client: S3Client | None = None,
        block_size: int = 1 << 20,
        cache_blocks: int = 32,
    ) -> None:
        super().__init__()
        if block_size <= 0 or cache_blocks <= 0:
            raise ValueError("block_size and cache_blocks must be positive")
        self.source = source
        self.name = source.uri  # PyAV shows it in its errors
        self.block_size = block_size
        self.cache_blocks = cache_blocks
        self.stats = ReadStats()
        self._client = client or s3_client()
        self._position = 0
        self._lock = threading.Lock()
        self._cache: OrderedDict[int, _Block] = OrderedDict()
        self._in_flight: dict[int, threading.Event] = {}
        # A classified failure is final: FFmpeg retries reads, S3 would only answer the same.
        self._failure: SourceNotFound | SourceUnreadable | None = None

    @property
    def size(self) -> int:
        return self.source.size

    @property
    def cached_bytes(self) -> int:
        """Bytes held in the block cache now (bounded by cache_blocks * block_size)."""
        with self._lock:
            return sum(len(block.data) for block in self._cache.values())

    # --- io.RawIOBase -------------------------------------------------------------------------
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        self._check_open()
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._check_open()
        if whence == io.SEEK_SET:
            position = offset
        elif whence == io.SEEK_CUR:
            position = self._position + offset
        elif whence == io.SEEK_END:
            position = self.size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if position < 0:
            raise ValueError(f"negative seek position {position}")
        self._position = position
        return position

    def readinto(self, buffer: Buffer) -> int:
        self._check_open()
        target = memoryview(buffer).cast("B")
        start = self._position
        end = min(start + len(target), self.size)
        if end <= start:
            return 0
        if self._failure is not None:
            raise self._failure
        try:
            blocks = self._blocks(self._needs(start, end))
        except (SourceNotFound, SourceUnreadable) as failure:
            self._failure = failure
            raise
        written = 0
        for index in sorted(blocks):
            block = blocks[index]
            held_start = index * self.block_size + block.offset
            piece = block.data[max(start, held_start) - held_start : end - held_start]
            target[written : written + len(piece)] = piece
            written += len(piece)
        self._position = start + written
        return written

    def close(self) -> None:
        with self._lock:
            self._cache.clear()
        super().close()

    # --- prefetch ---------------------------------------------------------------------------
    def prefetch(self, ranges: Sequence[tuple[int, int]], max_workers: int = 8) -> None:
        """Fetch, in parallel, the blocks covering these byte ranges [start, end) (e.g. keyframes).

        At most `cache_blocks` blocks are fetched: more would evict each other before being read.
        """
        self._check_open()
        if self._failure is not None:
            raise self._failure
        needs: dict[int, int] = {}
        for range_start, range_end in ranges:
            start, end = max(range_start, 0), min(range_end, self.size)
            if end > start:
                for index, offset in self._needs(start, end).items():
                    needs[index] = min(offset, needs.get(index, offset))
        if len(needs) > self.cache_blocks:
            logger.debug("prefetch of %d blocks capped at the cache size %d", len(needs), self.cache_blocks)
            needs = {index: needs[index] for index in sorted(needs)[: self.cache_blocks]}
        claimed, _ = self._claim(needs)
        runs = _contiguous_runs(claimed, MAX_BLOCKS_PER_REQUEST)
        if not runs:
            return
        with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(runs)))) as pool:
            futures = [pool.submit(self._fetch_run, run, needs[run[0]]) for run in runs]
            errors = [error for future in futures if (error := future.exception()) is not None]
        for error in errors:
            if isinstance(error, SourceNotFound | SourceUnreadable):
                self._failure = error
        if errors:
            raise errors[0]

    # --- blocks -----------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed reader")

    def _needs(self, start: int, end: int) -> dict[int, int]:
        """The blocks covering [start, end), each with the offset in it from which bytes are needed."""
        first, last = start // self.block_size, (end - 1) // self.block_size
        return {
            index: start - first * self.block_size if index == first else 0
            for index in range(first, last + 1)
        }

    def _held(self, index: int, offset: int) -> _Block | None:
        """The cached block if it holds bytes from offset on (call with the lock held)."""
        block = self._cache.get(index)
        if block is None or block.offset > offset:
            return None
        self._cache.move_to_end(index)
        return block

    def _claim(self, needs: Mapping[int, int]) -> tuple[list[int], list[threading.Event]]:
        """Split needed blocks into those this caller must fetch and events for those in flight."""
        claimed: list[int] = []
        waits: list[threading.Event] = []
        with self._lock:
            for index, offset in sorted(needs.items()):
                if self._held(index, offset) is not None:
                    continue
                if index in self._in_flight:
                    waits.append(self._in_flight[index])
                else:
                    self._in_flight[index] = threading.Event()
                    claimed.append(index)
        return claimed, waits

    def _blocks(self, needs: Mapping[int, int]) -> dict[int, _Block]:
        """The needed blocks, from the cache or fetched (contiguous missing ones in one GET)."""
        found: dict[int, _Block] = {}
        while True:
            with self._lock:
                for index, offset in needs.items():
                    if index not in found and (block := self._held(index, offset)) is not None:
                        found[index] = block
            missing = {index: offset for index, offset in needs.items() if index not in found}
            if not missing:
                return found
            claimed, waits = self._claim(missing)
            runs = _contiguous_runs(claimed, MAX_BLOCKS_PER_REQUEST)
            try:
                for position, run in enumerate(runs):
                    found.update(self._fetch_run(run, missing[run[0]]))
                    runs[position] = []
            finally:  # a failed GET must not leave the other claimed blocks marked in flight
                self._release([index for run in runs for index in run])
            for event in waits:
                event.wait()
            # Blocks another thread fetched are picked up from the cache on the next pass
            # (fetched again if that thread failed or they were evicted meanwhile).

    def _fetch_run(self, run: Sequence[int], offset: int) -> dict[int, _Block]:
        """GET a run of claimed blocks, the first from `offset` on; cache them; wake their waiters.

        Read-ahead: the GET runs to the end of the last block. A block already held from a later
        offset (an earlier read began inside it) gets only its missing head.
        """
        try:
            first, size = run[0], self.block_size
            with self._lock:
                partial = self._cache.get(first)
            start = first * size + offset
            end = min((run[-1] + 1) * size, self.size)
            if partial is not None and len(run) == 1:
                end = first * size + partial.offset
            data = self._get_range(start, end)
            if partial is not None and len(run) == 1:
                data += partial.data
            head = size - offset
            blocks = {first: _Block(offset, data[:head])}
            for index in run[1:]:
                at = head + (index - first - 1) * size
                blocks[index] = _Block(0, data[at : at + size])
            with self._lock:
                for index, block in blocks.items():
                    self._cache[index] = block
                    self._cache.move_to_end(index)
                while len(self._cache) > self.cache_blocks:
                    self._cache.popitem(last=False)
            return blocks
        finally:
            self._release(run)

    def _release(self, blocks: Sequence[int]) -> None:
        with self._lock:
            for index in blocks:
                event = self._in_flight.pop(index, None)
                if event is not None:
                    event.set()

    def _get_range(self, start: int, end: int) -> bytes:
        """One ranged GET of [start, end), pinned to the source, its body read with bounded retries."""
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
        failure: Exception | None = None
        for attempt in range(1, BODY_READ_ATTEMPTS + 1):
            try:
                response = self._client.get_object(**params)
            except ClientError as error:
                _raise_classified(error, source.bucket, source.key, source.version_id)
            body_stream = response["Body"]
            with self._lock:
                self.stats.requests += 1
                self.stats.retries += int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0))
            try:
                body = body_stream.read()
            except _TRANSIENT_BODY_ERRORS as error:
                failure = error
                logger.warning(
                    "reading %s bytes %d-%d failed (attempt %d): %s",
                    source.uri,
                    start,
                    end - 1,
                    attempt,
                    error,
                )
                with self._lock:
                    self.stats.retries += 1
                time.sleep(BODY_RETRY_BACKOFF_SECONDS * attempt)
                continue
            finally:
                body_stream.close()
            self._check_response(response.get("ContentRange"), start, end, len(body))
            with self._lock:
                self.stats.bytes_read += len(body)
                self.stats.ranges.append((start, end))
            return body
        raise S3ReadFailed(
            f"{source.uri}: bytes {start}-{end - 1} could not be read "
            f"in {BODY_READ_ATTEMPTS} attempts: {failure}"
        )

    def _check_response(self, content_range: str | None, start: int, end: int, received: int) -> None:
        expected = f"bytes {start}-{end - 1}/{self.size}"
        if content_range != expected or received != end - start:
            # Without a version or ETag to pin to, a new size is the only sign of an overwrite.
            raise SourceChanged(
                f"{self.source.uri}: asked for {expected}, got Content-Range {content_range!r} "
                f"with {received} bytes: the object changed or the server ignored the range"
            )


def _contiguous_runs(blocks: Sequence[int], max_length: int) -> list[list[int]]:
    """Sorted block indexes grouped into runs of consecutive indexes, each at most max_length long."""
    runs: list[list[int]] = []
    for index in sorted(blocks):
        if runs and index == runs[-1][-1] + 1 and len(runs[-1]) < max_length:
            runs[-1].append(index)
        else:
            runs.append([index])
    return runs
