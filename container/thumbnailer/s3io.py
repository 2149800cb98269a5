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
from thumbnailer.errors import S3ReadError, SourceChangedError, SourceNotFoundError, SourceUnreadableError

if TYPE_CHECKING:  # the stubs are a dev dependency, absent from the image
    from collections.abc import Buffer

    from mypy_boto3_s3 import S3Client

__all__ = [
    "RangedS3Reader",
    "ReadStats",
    "S3ReadError",
    "SourceChangedError",
    "SourceNotFoundError",
    "SourceObject",
    "SourceUnreadableError",
    "head_source",
    "put_output",
    "s3_client",
]

logger = logging.getLogger(__name__)

# botocore retries the request itself; a body cut off mid-stream is ours to retry.
BODY_READ_ATTEMPTS = 4
BODY_RETRY_BACKOFF_SECONDS = 0.2
# A read's GET covers the following missing blocks it needs, up to this many in all.
MAX_BLOCKS_PER_REQUEST = 8
_TRANSIENT_BODY_ERRORS = (
    ResponseStreamingError,
    IncompleteReadError,
    ReadTimeoutError,
    ConnectionClosedError,
)


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
    """A cached block's one contiguous piece: `data` from `offset` (relative to the block's start)."""

    offset: int
    data: bytes

    @property
    def end(self) -> int:
        return self.offset + len(self.data)


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
    """Map an S3 error on the source to SourceNotFoundError/SourceUnreadableError; anything else unchanged."""
    code = str(error.response.get("Error", {}).get("Code", ""))
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    where = _describe(bucket, key, version_id)
    classified: Exception = error
    # Specific codes first: S3 sends InvalidObjectState with a 403, PreconditionFailed with a 412.
    if code == "NoSuchBucket":
        classified = SourceNotFoundError(f"bucket {bucket!r} does not exist, reading {where}")
    elif code == "PreconditionFailed" or status == 412:
        classified = SourceChangedError(f"{where} was overwritten while being read (its ETag changed)")
    elif code == "InvalidObjectState":
        classified = SourceUnreadableError(f"{where} is archived and must be restored before it can be read")
    elif code == "InvalidRange":
        classified = SourceUnreadableError(f"{where}: range not satisfiable ({error})")
    elif code in {"NoSuchKey", "NoSuchVersion", "NotFound", "404"} or status == 404:
        classified = SourceNotFoundError(f"{where} does not exist ({code})")
    elif code in {"AccessDenied", "Forbidden", "403"} or status == 403:
        # Without s3:ListBucket, S3 answers 403 for a missing key too.
        classified = SourceNotFoundError(f"{where} cannot be read: access denied (or it does not exist)")
    elif status == 400 and version_id and code in {"400", "InvalidArgument", "BadRequest"}:
        classified = SourceNotFoundError(f"{where}: invalid version id ({code})")
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

    A read the cache cannot serve fetches from its position to the end of the block (read-ahead:
    PyAV reads 32 KiB at a time), together with the following missing blocks it needs. `prefetch`
    fetches exact byte ranges (keyframes) instead. Memory stays bounded: the cache holds at most
    `cache_blocks` blocks' worth of bytes (least recently used blocks evicted). `read` is for one
    thread (PyAV's); `prefetch` may run alongside it from worker threads.
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
        # PyAV hands this name to FFmpeg as the input's URL. With a scheme (s3://) FFmpeg takes the
        # input for a network stream and grows its own buffer to the distance between interleaved
        # tracks (ff_configure_buffers_for_index: 2 MB on a 1080p MP4), so every buffered read
        # fetches megabytes. This reader caches blocks itself: FFmpeg must see a local file.
        self.name = f"file:{source.uri}"
        self.block_size = block_size
        self.cache_blocks = cache_blocks
        self.cache_limit = cache_blocks * block_size  # bytes
        self.stats = ReadStats()
        self._client = client or s3_client()
        self._position = 0
        self._lock = threading.Lock()
        self._cache: OrderedDict[int, _Block] = OrderedDict()
        self._cached_bytes = 0
        self._in_flight: dict[int, threading.Event] = {}
        # A classified failure is final: FFmpeg retries reads, S3 would only answer the same.
        self._failure: SourceNotFoundError | SourceUnreadableError | None = None

    @property
    def size(self) -> int:
        return self.source.size

    @property
    def cached_bytes(self) -> int:
        """Bytes held in the block cache now (bounded by cache_limit)."""
        with self._lock:
            return self._cached_bytes

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
        """Read from the cache, or GET when the cache holds nothing at the position.

        May return fewer bytes than asked (as raw files may) where cached bytes run out.
        """
        self._check_open()
        target = memoryview(buffer).cast("B")
        start = self._position
        end = min(start + len(target), self.size)
        if end <= start:
            return 0
        if self._failure is not None:
            raise self._failure
        position = start
        try:
            while position < end:
                at = position - start
                copied = self._copy_held(position, end, target[at:])
                if not copied:
                    if position > start:
                        # A short read of what the cache held: FFmpeg fills its 32 KiB buffer
                        # past a prefetched packet and asks again only if it needs those bytes.
                        break
                    fetched = self._fetch_for_read(position, end)
                    if fetched is None:
                        continue  # another thread was fetching it: look again
                    copied = min(len(fetched), end - position)
                    target[at : at + copied] = fetched[:copied]
                position += copied
        except (SourceNotFoundError, SourceUnreadableError) as failure:
            self._failure = failure
            raise
        self._position = position
        return position - start

    def close(self) -> None:
        with self._lock:
            self._cache.clear()
            self._cached_bytes = 0
        super().close()

    # --- prefetch ---------------------------------------------------------------------------
    def prefetch(self, ranges: Sequence[tuple[int, int]], max_workers: int = 8) -> None:
        """Fetch exactly these byte ranges [start, end) (e.g. keyframes), one parallel GET each.

        Ranges meeting in a block are fetched as one (a block holds one contiguous piece); bytes
        already held or in flight are not fetched again. At most `cache_limit` bytes are fetched:
        more would evict each other before being read.
        """
        self._check_open()
        if self._failure is not None:
            raise self._failure
        pieces: list[tuple[int, int, range]] = []
        claimed_bytes = 0
        with self._lock:
            for range_start, end in self._spans(ranges):
                start = self._first_missing(range_start, end)
                indexes = range(start // self.block_size, (end - 1) // self.block_size + 1)
                if start >= end or any(index in self._in_flight for index in indexes):
                    continue
                if claimed_bytes + end - start > self.cache_limit:
                    logger.debug("prefetch capped at the cache size (%d bytes)", self.cache_limit)
                    break
                for index in indexes:
                    self._in_flight[index] = threading.Event()
                claimed_bytes += end - start
                pieces.append((start, end, indexes))
        if not pieces:
            return
        with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(pieces)))) as pool:
            futures = [pool.submit(self._fetch_piece, start, end, indexes) for start, end, indexes in pieces]
            errors = [error for future in futures if (error := future.exception()) is not None]
        for error in errors:
            if isinstance(error, SourceNotFoundError | SourceUnreadableError):
                self._failure = error
        if errors:
            raise errors[0]

    # --- blocks -----------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed reader")

    def _spans(self, ranges: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
        """The ranges clipped to the object, sorted, merged where they overlap or meet in a block."""
        spans: list[tuple[int, int]] = []
        for start, end in sorted((max(a, 0), min(b, self.size)) for a, b in ranges):
            if end <= start:
                continue
            if spans and start // self.block_size <= (spans[-1][1] - 1) // self.block_size:
                spans[-1] = (spans[-1][0], max(spans[-1][1], end))
            else:
                spans.append((start, end))
        return spans

    def _piece_at(self, position: int) -> tuple[int, _Block | None]:
        """The block index holding `position` and its cached piece (call with the lock held)."""
        index = position // self.block_size
        return index, self._cache.get(index)

    def _first_missing(self, start: int, end: int) -> int:
        """The first position from `start` on (up to `end`) not held in the cache (lock held)."""
        position = start
        while position < end:
            index, block = self._piece_at(position)
            relative = position - index * self.block_size
            if block is None or not block.offset <= relative < block.end:
                break
            position = index * self.block_size + block.end
        return min(position, end)

    def _copy_held(self, start: int, end: int, target: memoryview) -> int:
        """Copy the cached bytes from `start` on (contiguous, up to `end`) into target; how many."""
        written = 0
        with self._lock:
            while start + written < end:
                index, block = self._piece_at(start + written)
                relative = start + written - index * self.block_size
                if block is None or not block.offset <= relative < block.end:
                    break
                self._cache.move_to_end(index)
                piece = block.data[relative - block.offset : relative - block.offset + end - start - written]
                target[written : written + len(piece)] = piece
                written += len(piece)
        return written

    def _fetch_for_read(self, position: int, end: int) -> bytes | None:
        """GET the bytes from `position` on, as a read needs them; None if another thread has them.

        The GET runs to the end of the block and over the following blocks the read needs that
        are wholly missing. In a block holding a piece from a later offset (an earlier read or a
        prefetch began inside it), only the gap before that piece is fetched.
        """
        size = self.block_size
        with self._lock:
            first, held = self._piece_at(position)
            waiting = self._in_flight.get(first)
            if waiting is None:
                run = [first]
                relative = position - first * size
                if held is not None and held.offset > relative:
                    stop = first * size + held.offset
                else:
                    last = min((end - 1) // size, first + min(MAX_BLOCKS_PER_REQUEST, self.cache_blocks) - 1)
                    for index in range(first + 1, last + 1):
                        if index in self._cache or index in self._in_flight:
                            break
                        run.append(index)
                    stop = (run[-1] + 1) * size
                for index in run:
                    self._in_flight[index] = threading.Event()
        if waiting is not None:
            waiting.wait()
            return None
        return self._fetch_piece(position, min(stop, self.size), run)

    def _fetch_piece(self, start: int, end: int, claimed: Sequence[int]) -> bytes:
        """GET [start, end), cache it block by block, then wake whoever waits on the claimed blocks."""
        try:
            data = self._get_range(start, end)
            with self._lock:
                position = start
                while position < end:
                    index, held = self._piece_at(position)
                    relative = position - index * self.block_size
                    chunk = data[position - start : position - start + self.block_size - relative]
                    piece = _merged(held, relative, chunk)
                    self._cached_bytes += len(piece.data) - (len(held.data) if held else 0)
                    self._cache[index] = piece
                    self._cache.move_to_end(index)
                    position += len(chunk)
                while self._cached_bytes > self.cache_limit:
                    _, evicted = self._cache.popitem(last=False)
                    self._cached_bytes -= len(evicted.data)
            return data
        finally:
            self._release(claimed)

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
        raise S3ReadError(
            f"{source.uri}: bytes {start}-{end - 1} could not be read "
            f"in {BODY_READ_ATTEMPTS} attempts: {failure}"
        )

    def _check_response(self, content_range: str | None, start: int, end: int, received: int) -> None:
        expected = f"bytes {start}-{end - 1}/{self.size}"
        if content_range != expected or received != end - start:
            # Without a version or ETag to pin to, a new size is the only sign of an overwrite.
            raise SourceChangedError(
                f"{self.source.uri}: asked for {expected}, got Content-Range {content_range!r} "
                f"with {received} bytes: the object changed or the server ignored the range"
            )


def _merged(held: _Block | None, offset: int, data: bytes) -> _Block:
    """A block's new piece: `data` at `offset`, joined to the held piece when they touch or overlap."""
    if held is None or offset > held.end or offset + len(data) < held.offset:
        return _Block(offset, data)
    head = held.data[: max(0, offset - held.offset)]
    tail = held.data[max(0, offset + len(data) - held.offset) :]
    return _Block(min(offset, held.offset), head + data + tail)
