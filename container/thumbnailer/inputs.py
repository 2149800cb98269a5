"""The pipeline's inputs: a local file (the CLI) or one S3 object version read by ranged GETs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from thumbnailer.errors import SourceNotFoundError, SupersededError, UnusableVideoError
from thumbnailer.extract import DECODER_LOOKAHEAD_PACKETS, Prefetch
from thumbnailer.mp4_index import gop_span, video_track
from thumbnailer.mp4_layout import first_samples, moov_holder, touching_held
from thumbnailer.options import TimeSpec
from thumbnailer.s3_fetcher import OpenedSource, ReadStats, SourceObject, head_source
from thumbnailer.s3_reader import RangedS3Reader

# The read-ahead of FFmpeg's 32 KiB reads (the moov box, the probe's first packets). The frame's
# packets and auto's keyframes are prefetched as exact ranges, so blocks only round the rest:
# mid-video in the benchmark's 10-minute 1080p file, 256 KiB read 2.0 MB in 5 GETs, 512 KiB
# 2.3 MB in 4, 1 MiB 2.8 MB in 3 (and auto 5 MB in 23 GETs at 512 KiB).
READ_BLOCK_SIZE = 512 * 1024
# S3 refuses user metadata over 2 KB (names and values, UTF-8); `thumbnail-time` is added per output.
MAX_METADATA_BYTES = 2048 - 64


class LocalInput:
    """A file on disk: nothing to prefetch, no requests to count."""

    prefetch: Prefetch | None = None

    def __init__(self, path: Path) -> None:
        self.path = path
        self.description: dict[str, Any] = {"path": str(path), "size": path.stat().st_size}
        self.output_metadata: dict[str, str] = {}
        self.warnings: list[str] = []

    @contextlib.contextmanager
    def open(self, at: TimeSpec | None = None) -> Iterator[IO[bytes]]:
        if not self.description["size"]:
            raise UnusableVideoError(f"{self.path} is an empty file (0 bytes)", "empty_file")
        with self.path.open("rb") as handle:
            yield handle

    def io_stats(self) -> dict[str, Any]:
        return {}

    def check_current(self) -> None:
        """A local file is read as it is now."""


class S3Input:
    """Ranged reads of one pinned object version; the manifest gets the readers' request counts."""

    def __init__(self, opened: OpenedSource | SourceObject, job: Mapping[str, Any] | None = None) -> None:
        if isinstance(opened, SourceObject):  # described by a HEAD: nothing read yet
            opened = OpenedSource(opened, b"", ReadStats())
        source = self.source = opened.source
        self.description = _describe(source, job)
        self.output_metadata = source_metadata(source)
        self.warnings: list[str] = []  # about the source itself, for the manifest
        self._head = opened.head
        self._opening = opened.stats
        self._readers: list[RangedS3Reader] = []

    @property
    def prefetch(self) -> Prefetch | None:
        return self._prefetch

    @contextlib.contextmanager
    def open(self, at: TimeSpec | None = None) -> Iterator[IO[bytes]]:
        """The reader, with what FFmpeg reads first already fetched; with `at` (a time or a
        percentage), the frame's group of pictures too, alongside the probe's first samples."""
        if not self.source.size:
            raise UnusableVideoError(f"{self.source.uri} is an empty object (0 bytes)", "empty_object")
        reader = RangedS3Reader(self.source, block_size=READ_BLOCK_SIZE, head=self._head)
        self._readers.append(reader)
        try:
            _prefetch_index_and_probe(reader, self._head, at)
            yield reader  # type: ignore[misc]  # a RawIOBase: PyAV only needs read/seek
        finally:
            reader.close()

    def io_stats(self) -> dict[str, Any]:
        stats = [self._opening, *(r.stats for r in self._readers)]
        return {
            "requests": sum(s.requests for s in stats),
            "bytes_read": sum(s.bytes_read for s in stats),
            "retries": sum(s.retries for s in stats),
            "object_size": self.source.size,
        }

    def check_current(self) -> None:
        """HEAD without a version id: the key's current version must still be the one read.

        Two uploads of one key start two jobs; without this, the one finishing last would write
        last, an older version's thumbnails over a newer one's (the sweep catches what races past).
        """
        source = self.source
        try:
            current = head_source(source.bucket, source.key)
        except SourceNotFoundError:
            raise SupersededError(f"{source.uri} was deleted while it was processed") from None
        same = (
            current.version_id == source.version_id
            if source.version_id
            else (current.etag or "").strip('"') == (source.etag or "").strip('"')
        )
        if not same:
            raise SupersededError(
                f"{source.uri} is no longer the current version (now {current.version_id or current.etag})"
            )

    def _prefetch(self, ranges: Sequence[tuple[int, int]]) -> None:
        # Into the reader open now (the pipeline opens one at a time).
        if self._readers and not self._readers[-1].closed:
            self._readers[-1].prefetch(ranges)


def _describe(source: SourceObject, job: Mapping[str, Any] | None) -> dict[str, Any]:
    """The source's identity for the manifest, with the job's request id and event time."""
    description: dict[str, Any] = {
        "uri": source.uri,
        "bucket": source.bucket,
        "key": source.key,
        "version_id": source.version_id,
        "etag": source.etag,
        "size": source.size,
    }
    for name in ("request_id", "event_time", "attempt", "origin"):
        if job and job.get(name) is not None:
            description[name] = job[name]
    return description


def source_metadata(source: SourceObject) -> dict[str, str]:
    """User metadata naming the source version on every output (ASCII: S3 metadata is sent as headers)."""
    metadata = {
        "source-bucket": source.bucket,
        "source-key": quote(source.key, safe="/"),
        "source-version-id": source.version_id or "null",
        "source-etag": (source.etag or "").strip('"'),
    }
    if sum(len(name) + len(value) for name, value in metadata.items()) > MAX_METADATA_BYTES:
        # A long non-ASCII key triples when percent-encoded; the manifest names it in full.
        del metadata["source-key"]
    return metadata


def _prefetch_index_and_probe(reader: RangedS3Reader, head: bytes, at: TimeSpec | None = None) -> None:
    """Fetch what FFmpeg reads first: the moov box in one GET, then every track's first sample,
    which its stream probe reads and decodes next, as exact ranges (in parallel where apart), and
    with them the group of pictures of the frame at `at` (mp4_index), which frame_at would
    otherwise fetch in a GET of its own after the probe.

    Instead of FFmpeg's 32 KiB reads rounded to 512 KiB blocks one after another: the benchmark's
    10-minute file's 0.65 MB keyframe and first audio packet were two block GETs in a row
    (0.99 MB), now one GET of 0.70 MB. Parsed from bytes already held (the moov box), and only
    while all of it fits well within the cache (nothing evicts the moov box before FFmpeg reads it).
    """
    holder = moov_holder(head, reader.size) if head else None
    if holder is None:
        return
    start, end = holder
    if end > len(head):
        reader.prefetch([holder])  # one GET instead of FFmpeg's reads block after block
    if end - start > reader.cache_limit // 2:
        return
    reader.seek(start)
    held = reader.read(end - start) or b""
    reader.seek(0)
    if len(held) != end - start:
        return
    samples = first_samples(held, reader.size)
    budget = reader.cache_limit // 2 - (end - start)
    gop = _frame_span(held, at)
    if gop is not None and sum(e - s for s, e in [*samples, gop]) <= budget:
        samples.append(gop)
    samples = touching_held(samples, [(0, len(head)), holder], READ_BLOCK_SIZE)
    if sum(e - s for s, e in samples) <= budget:
        reader.prefetch(samples)


def _frame_span(held: bytes, at: TimeSpec | None) -> tuple[int, int] | None:
    """The bytes frame_at will prefetch for the frame at `at`, predicted from the moov box's
    tables (None for auto, or where the tables are not simple enough to predict)."""
    if at is None or at.kind == "auto":
        return None
    track = video_track(held)
    if track is None:
        return None
    if at.kind == "percent":
        return gop_span(track, None, at.value, DECODER_LOOKAHEAD_PACKETS)
    return gop_span(track, at.value, None, DECODER_LOOKAHEAD_PACKETS)
