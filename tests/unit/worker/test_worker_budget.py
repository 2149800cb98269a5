"""Byte budgets: what the worker reads from S3 for one thumbnail of a ~100 MB video.

Through the CLI as the task runs it, over real HTTP to moto. The physical minimum for an exact
frame (the moov box plus the group of pictures holding the frame) comes from the file's own
boxes and index (bench/minimum.py), not from the worker. Counts, not timings.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest

from bench.minimum import physical_minimum
from devkit.environment import overlaid_environment
from devkit.mp4_boxes import top_level_boxes
from local_stack.emulator import Emulator
from thumbnailer import aws
from thumbnailer.__main__ import main as cli_main

MiB = 1 << 20
AUTO_SAMPLES = 20


@pytest.fixture(scope="module")
def uploaded(worker_emulator: Emulator, big_videos: dict[str, Path]) -> Iterator[tuple[str, dict[str, Path]]]:
    """Both 100 MB videos in a bucket, the worker's client pointed at moto; deleted afterwards."""
    bucket = f"budget-{uuid.uuid4().hex[:12]}"
    with overlaid_environment(worker_emulator.environment):
        aws.s3_client.cache_clear()
        s3 = worker_emulator.client("s3")
        s3.create_bucket(Bucket=bucket)
        for place, path in big_videos.items():
            with path.open("rb") as file:
                s3.upload_fileobj(file, bucket, f"videos/big-{place}.mp4")
        try:
            yield bucket, big_videos
        finally:  # the emulator lives for the session: free the 200 MB
            for place in big_videos:
                s3.delete_object(Bucket=bucket, Key=f"videos/big-{place}.mp4")
            aws.s3_client.cache_clear()


def _thumbnail(source: str, out: Path, at: str) -> tuple[dict[str, Any], bytes]:
    assert cli_main([source, "--out", str(out), "--at", at, "--format", "png"]) == 0
    name = Path(source).name
    return json.loads((out / f"{name}.json").read_text()), (out / f"{name}.png").read_bytes()


@pytest.mark.parametrize("place", ["fast", "end"])
def test_an_exact_frame_mid_video_reads_at_most_twice_the_physical_minimum(
    uploaded: tuple[str, dict[str, Path]], place: str, tmp_path: Path
) -> None:
    bucket, videos = uploaded
    path = videos[place]
    at = 98.48  # 12 frames into the GOP that starts at 98 s, mid-way through the 196 s video
    manifest, png = _thumbnail(f"s3://{bucket}/videos/big-{place}.mp4", tmp_path / "s3", str(at))
    minimum = physical_minimum(path, at)
    assert minimum.keyframe_s == pytest.approx(98.0)
    assert manifest["frame"]["time"] == pytest.approx(at, abs=1e-3)
    read = manifest["io"]["bytes_read"]
    assert read <= 2 * minimum.total, (read, minimum)
    # The same picture as from the local file: the ranged reads fed the decoder the right bytes.
    local_manifest, local_png = _thumbnail(str(path), tmp_path / "local", str(at))
    assert local_manifest["frame"]["time"] == manifest["frame"]["time"]
    assert local_png == png


@pytest.mark.parametrize("place", ["fast", "end"])
def test_auto_reads_about_the_sampled_keyframes(
    uploaded: tuple[str, dict[str, Path]], place: str, tmp_path: Path
) -> None:
    bucket, videos = uploaded
    path = videos[place]
    manifest, _ = _thumbnail(f"s3://{bucket}/videos/big-{place}.mp4", tmp_path, "auto")
    moov = next(size for kind, _, size in top_level_boxes(path) if kind == "moov")
    with av.open(str(path)) as container:
        keyframes = [e.size for e in container.streams.video[0].index_entries if e.is_keyframe]
    # The moov box, the samples' keyframes (at most the 20 largest) and the first MiB (the
    # container's probe decodes the first keyframe): not the GOPs after each keyframe.
    budget = moov + sum(sorted(keyframes)[-AUTO_SAMPLES:]) + MiB
    read = manifest["io"]["bytes_read"]
    assert read <= budget, (read, budget)
    assert read < 0.1 * path.stat().st_size
    assert manifest["io"]["requests"] <= AUTO_SAMPLES + 5  # one GET per keyframe, in parallel
