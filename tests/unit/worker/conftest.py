"""Fixtures for the worker's tests: the emulator, synthetic clips and the ~100 MB videos, once per session."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devkit.environment import overlaid_environment
from devkit.mp4_boxes import moov_first
from local_stack.emulator import Emulator, running_emulator
from tests.unit.worker.fault_proxy import FaultProxy, serving
from tests.unit.worker.long_videos import encode_segment, repeat_to_size
from tests.unit.worker.synthetic import Clip, make_clip
from thumbnailer import aws

VFR_DURATIONS_MS = [40, 10, 100, 33, 33, 250, 17, 17, 17, 500, 60, 20, 80, 33, 33, 33, 200, 45, 45, 45] * 3


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that needs the ~100 MB videos is `heavy` (`make unit` leaves those out)."""
    for item in items:
        if "big_videos" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.heavy)


@pytest.fixture(scope="session")
def worker_emulator() -> Iterator[Emulator]:
    """One moto server (real HTTP on loopback) for the worker tests; tests use their own buckets."""
    with running_emulator() as emulator:
        yield emulator


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Clip]:
    """Barcode clips: moov at the end and at the front, variable frame rate, a black intro."""
    folder = tmp_path_factory.mktemp("clips")
    return {
        "moov_end": make_clip(folder / "moov_end.mp4", frames=90),
        "moov_front": make_clip(folder / "moov_front.mp4", frames=90, faststart=True),
        "vfr": make_clip(folder / "vfr.mp4", frames=len(VFR_DURATIONS_MS), durations_ms=VFR_DURATIONS_MS),
        "black_intro": make_clip(folder / "black_intro.mp4", frames=120, black_frames=45, gop=15),
    }


@pytest.fixture(scope="session")
def big_videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """>= 100 MB, 640x360 H.264 with B-frames and interleaved AAC, 196 s, a keyframe every second
    (about 350 KB, the frames after it 4-12 KB), moov at the front ("fast") or the end ("end")."""
    folder = tmp_path_factory.mktemp("big-videos")
    segment = folder / "segment.mp4"
    encode_segment(
        segment, frames=100, width=640, height=360, noise=True, faststart=False, bframes=2, audio=True
    )
    made = {place: folder / f"big-{place}.mp4" for place in ("fast", "end")}
    for place, path in made.items():
        repeat_to_size(segment, path, min_bytes=100 * 10**6, faststart=place == "fast")
        assert moov_first(path) == (place == "fast")
    return made


# --- S3 I/O: the worker's client behind a recording, fault-injecting proxy ---------------------------
@pytest.fixture
def fault_proxy(worker_emulator: Emulator) -> Iterator[FaultProxy]:
    """A proxy in front of the emulator: what crossed the wire, and faults on the next GETs."""
    with serving(worker_emulator.endpoint_url) as proxy:
        yield proxy


@pytest.fixture
def proxied_s3(fault_proxy: FaultProxy, worker_emulator: Emulator) -> Iterator[Any]:
    """The worker's own cached client (its real retry config) pointed at the proxy by environment."""
    variables = {**worker_emulator.environment, "AWS_ENDPOINT_URL": fault_proxy.endpoint_url}
    with overlaid_environment(variables):
        aws.s3_client.cache_clear()
        try:
            yield aws.s3_client()
        finally:
            aws.s3_client.cache_clear()


@pytest.fixture
def task_s3(worker_emulator: Emulator) -> Iterator[Any]:
    """A client for a task test's own checks; the worker's cached client is pointed at moto by environment."""
    with overlaid_environment(worker_emulator.environment):
        aws.s3_client.cache_clear()
        try:
            yield worker_emulator.client("s3")
        finally:
            aws.s3_client.cache_clear()


@pytest.fixture
def task_bucket(task_s3: Any) -> str:
    """A versioned bucket of the test's own, as the stack's is."""
    name = f"task-{uuid.uuid4().hex[:12]}"
    task_s3.create_bucket(Bucket=name)
    task_s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name
