"""Fixtures shared by the worker's tests. Owned jointly by the worker helpers: only add fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from local_stack.emulator import Emulator, running_emulator


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
