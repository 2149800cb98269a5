"""Fixtures shared by the worker's tests. Owned jointly by the worker helpers: only add fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_stack.emulator import Emulator, environment, running_emulator
from tests.unit.worker.fault_proxy import FaultProxy, serving
from thumbnailer import aws


@pytest.fixture(scope="session")
def worker_emulator() -> Iterator[Emulator]:
    """One moto server (real HTTP on loopback) for the worker tests; tests use their own buckets."""
    with running_emulator() as emulator:
        yield emulator


# --- WORKER-CORE: synthetic clips, made once per session -----------------------------------------
VFR_DURATIONS_MS = [40, 10, 100, 33, 33, 250, 17, 17, 17, 500, 60, 20, 80, 33, 33, 33, 200, 45, 45, 45] * 3


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Barcode clips (moov at end / at front, VFR, black intro) and a geometry clip."""
    from tests.unit.worker import synthetic

    folder = tmp_path_factory.mktemp("clips")
    return {
        "moov_end": synthetic.make_clip(folder / "moov_end.mp4", frames=90),
        "moov_front": synthetic.make_clip(folder / "moov_front.mp4", frames=90, faststart=True),
        "vfr": synthetic.make_clip(
            folder / "vfr.mp4", frames=len(VFR_DURATIONS_MS), durations_ms=VFR_DURATIONS_MS
        ),
        "black_intro": synthetic.make_clip(folder / "black_intro.mp4", frames=120, black_frames=45, gop=15),
    }


# --- WORKER-PERF: ~100 MB videos for byte budgets, made once per session ---------------------------
@pytest.fixture(scope="session")
def big_videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """>= 100 MB, 640x360 H.264 with B-frames and interleaved AAC, 196 s, a keyframe every second
    (about 350 KB, the frames after it 4-12 KB), moov at the front ("fast") or the end ("end")."""
    from tests.unit.worker.long_videos import encode_segment, moov_first, repeat_to_size

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
    with environment(variables):
        aws.s3_client.cache_clear()
        try:
            yield aws.s3_client()
        finally:
            aws.s3_client.cache_clear()
