"""A seekable, read-only file over one S3 object version (what PyAV reads), with parallel prefetch.

Nothing goes to disk and no GET asks for the whole object: reads are served from a bounded
block cache, filled by ranged GETs, so PyAV can seek to the moov atom and to one keyframe and
read only those bytes.
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from thumbnailer.block_cache import BlockCache, Claim
from thumbnailer.errors import SourceNotFoundError, SourceUnreadableError
from thumbnailer.s3_fetcher import RangeFetcher, ReadStats, SourceObject

if TYPE_CHECKING:  # the stubs are a dev dependency, absent from the image
    from collections.abc import Buffer

    from mypy_boto3_s3 import S3Client

# A read's GET covers the following missing blocks it needs, up to this many in all.
MAX_BLOCKS_PER_REQUEST = 8
# Failures S3 would only repeat: the reader keeps raising them without asking again.
_FINAL_FAILURES = (SourceNotFoundError, SourceUnreadableError)


class RangedS3Reader(io.RawIOBase):
    """A read-only, seekable file over one S3 object version, fetched in aligned blocks by ranged GETs.

    A read the cache cannot serve fetches from its position to the end of the block (read-ahead:
    PyAV reads 32 KiB at a time) and the following missing blocks it needs; `prefetch` fetches exact
    ranges (keyframes); `head` (the first GET's bytes) starts the cache. At most `cache_blocks`
    blocks' worth of bytes are held (least recently used evicted). `read` is for one thread
    (PyAV's); `prefetch` may run alongside it from worker threads.
    """

    def __init__(
        self,
        source: SourceObject,
        client: S3Client | None = None,
        block_size: int = 1 << 20,
        cache_blocks: int = 32,
        head: bytes = b"",
    ) -> None:
        cache = BlockCache(source.size, block_size, cache_blocks)  # checks the sizes first
        super().__init__()
        self.source = source
        # PyAV hands this name to FFmpeg as the input's URL. With a scheme (s3://) FFmpeg takes the
        # input for a network stream and grows its own buffer to the distance between interleaved
        # tracks (ff_configure_buffers_for_index: 2 MB on a 1080p MP4), so every buffered read
        # fetches megabytes. This reader caches blocks itself: FFmpeg must see a local file.
        self.name = f"file:{source.uri}"
        self.cache_limit = cache.limit  # bytes
        self._cache = cache
        if head:  # the object's first bytes, from the GET that opened it: the first blocks
            cache.store(0, head[: source.size])
        self._fetcher = RangeFetcher(source, client)
        self._position = 0
        # A classified failure is final: FFmpeg retries reads, S3 would only answer the same.
        self._failure: SourceNotFoundError | SourceUnreadableError | None = None

    @property
    def size(self) -> int:
        return self.source.size

    @property
    def stats(self) -> ReadStats:
        """The GETs made so far, their bytes and retries."""
        return self._fetcher.stats

    @property
    def cached_bytes(self) -> int:
        """Bytes held in the block cache now (bounded by cache_limit)."""
        return self._cache.cached_bytes

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
        self._position = _seek_target(offset, whence, self._position, self.size)
        return self._position

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
        position = start
        with self._final_failures():
            while position < end:
                copied = self._cache.copy_into(position, end, target[position - start :])
                if not copied:
                    if position > start:
                        # A short read of what the cache held: FFmpeg fills its 32 KiB buffer
                        # past a prefetched packet and asks again only if it needs those bytes.
                        break
                    copied = self._read_missing(position, end, target[position - start :])
                position += copied
        self._position = position
        return position - start

    def close(self) -> None:
        self._cache.clear()
        super().close()

    # --- prefetch ---------------------------------------------------------------------------
    def prefetch(self, ranges: Sequence[tuple[int, int]], max_workers: int = 8) -> None:
        """Fetch exactly these byte ranges [start, end) (e.g. keyframes), one parallel GET each.

        Ranges meeting in a block are fetched as one (a block holds one contiguous piece); bytes
        already held or in flight are not fetched again. At most `cache_limit` bytes are fetched:
        more would evict each other before being read.
        """
        self._check_open()
        with self._final_failures():
            claims = self._cache.claim_ranges(ranges)
            if not claims:
                return
            errors = _run_all(self._fetch, claims, max_workers)
            # A final failure among them is kept, even when another is raised.
            for error in errors:
                if isinstance(error, _FINAL_FAILURES):
                    self._failure = error
            if errors:
                raise errors[0]

    # --- fetching -----------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed reader")

    @contextlib.contextmanager
    def _final_failures(self) -> Iterator[None]:
        """Raise a final failure seen before; remember one raised now."""
        if self._failure is not None:
            raise self._failure
        try:
            yield
        except _FINAL_FAILURES as failure:
            self._failure = failure
            raise

    def _read_missing(self, position: int, end: int, target: memoryview) -> int:
        """GET the bytes from `position` on into target; how many (0: another thread had them)."""
        claim = self._cache.claim_read(position, end, MAX_BLOCKS_PER_REQUEST)
        if isinstance(claim, threading.Event):
            claim.wait()
            return 0
        fetched = self._fetch(claim)
        copied = min(len(fetched), end - position)
        target[:copied] = fetched[:copied]
        return copied

    def _fetch(self, claim: Claim) -> bytes:
        """GET a claim's bytes and cache them; its blocks are released whatever happens."""
        try:
            data = self._fetcher.get(claim.start, claim.end)
            self._cache.store(claim.start, data)
            return data
        finally:
            self._cache.release(claim)


def _seek_target(offset: int, whence: int, position: int, size: int) -> int:
    """The position a seek(offset, whence) moves to, from `position` in a file of `size` bytes."""
    if whence == io.SEEK_SET:
        target = offset
    elif whence == io.SEEK_CUR:
        target = position + offset
    elif whence == io.SEEK_END:
        target = size + offset
    else:
        raise ValueError(f"invalid whence {whence}")
    if target < 0:
        raise ValueError(f"negative seek position {target}")
    return target


def _run_all(
    fetch: Callable[[Claim], bytes], claims: Sequence[Claim], max_workers: int
) -> list[BaseException]:
    """Fetch every claim on a thread pool, all of them even when some fail; the failures."""
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(claims)))) as pool:
        futures = [pool.submit(fetch, claim) for claim in claims]
        return [error for future in futures if (error := future.exception()) is not None]
