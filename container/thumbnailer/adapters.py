"""Inputs for the pipeline: a local file or an S3 object read by ranged GETs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from thumbnailer.pipeline import Input
from thumbnailer.s3_fetcher import SourceObject
from thumbnailer.s3_reader import RangedS3Reader

# The read-ahead of FFmpeg's 32 KiB reads (the moov box, the probe's first packets). The frame's
# packets and auto's keyframes are prefetched as exact ranges, so blocks only round the rest:
# mid-video in the benchmark's 10-minute 1080p file, 256 KiB read 2.0 MB in 5 GETs, 512 KiB
# 2.3 MB in 4, 1 MiB 2.8 MB in 3 (and auto 5 MB in 23 GETs at 512 KiB).
READ_BLOCK_SIZE = 512 * 1024


def local_input(path: Path) -> Input:
    @contextlib.contextmanager
    def opener() -> Iterator[IO[bytes]]:
        with path.open("rb") as handle:
            yield handle

    size = path.stat().st_size
    return Input(open=opener, description={"path": str(path), "size": size})


def s3_input(source: SourceObject, job: Mapping[str, Any] | None = None) -> Input:
    """Ranged reads of one pinned object version; the manifest gets the reader's request counts."""
    readers: list[RangedS3Reader] = []

    @contextlib.contextmanager
    def opener() -> Iterator[IO[bytes]]:
        reader = RangedS3Reader(source, block_size=READ_BLOCK_SIZE)
        readers.append(reader)
        try:
            yield reader  # type: ignore[misc]  # a RawIOBase: PyAV only needs read/seek
        finally:
            reader.close()

    def prefetch(ranges: Any) -> None:
        if readers and not readers[-1].closed:
            readers[-1].prefetch(ranges)

    def io_stats() -> dict[str, Any]:
        return {
            "requests": sum(r.stats.requests for r in readers),
            "bytes_read": sum(r.stats.bytes_read for r in readers),
            "retries": sum(r.stats.retries for r in readers),
            "object_size": source.size,
        }

    description: dict[str, Any] = {
        "uri": source.uri,
        "bucket": source.bucket,
        "key": source.key,
        "version_id": source.version_id,
        "etag": source.etag,
        "size": source.size,
    }
    for name in ("request_id", "event_time"):
        if job and job.get(name) is not None:
            description[name] = job[name]
    return Input(
        open=opener,
        description=description,
        output_metadata=source_metadata(source),
        prefetch=prefetch,
        io_stats=io_stats,
    )


# S3 refuses user metadata over 2 KB (names and values, UTF-8); `thumbnail-time` is added per output.
MAX_METADATA_BYTES = 2048 - 64


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
