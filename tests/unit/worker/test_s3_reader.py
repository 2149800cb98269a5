"""The seekable reader PyAV reads, over real HTTP to moto: reads, read-ahead, prefetch, finality.

The block cache's own rules are tested without HTTP (test_block_cache.py), GETs and their
retries in test_s3_fetcher.py; here, what a reader asks of S3 and what PyAV gets from it.
"""

from __future__ import annotations

import io
import random
import threading
import uuid
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from devkit.mp4_boxes import moov_first
from local_stack.emulator import Emulator
from tests.unit.worker.fault_proxy import FaultProxy
from tests.unit.worker.long_videos import encode_segment
from thumbnailer import s3_reader
from thumbnailer.errors import SourceChangedError
from thumbnailer.s3_fetcher import head_source
from thumbnailer.s3_reader import RangedS3Reader

MiB = 1 << 20


@pytest.fixture(scope="module")
def s3(worker_emulator: Emulator) -> Any:
    return worker_emulator.client("s3")


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"reader-{uuid.uuid4().hex[:12]}"
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
    assert all(0 < b - a <= s3_reader.MAX_BLOCKS_PER_REQUEST * block for a, b in reader.stats.ranges)

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


def test_a_read_over_several_missing_blocks_is_one_get(s3: Any, bucket: str) -> None:
    data = _random_bytes(300_000, seed=12)
    s3.put_object(Bucket=bucket, Key="r.bin", Body=data)
    reader = RangedS3Reader(head_source(bucket, "r.bin", client=s3), client=s3, block_size=100_000)
    reader.seek(150_000)
    assert reader.read(100_000) == data[150_000:250_000]
    assert reader.stats.ranges == [(150_000, 300_000)]  # to the end of the second block


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


# --- failures: final, and raised through PyAV ---------------------------------------------------------
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
