"""`auto`: a representative frame, never the black intro when better frames exist."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.unit.worker.synthetic import Clip, make_clip, read_barcode
from thumbnailer.auto import representative_frame, score_frame, score_luma
from thumbnailer.probe import open_video


def test_black_intro_is_avoided(clips: dict[str, Any]) -> None:
    clip: Clip = clips["black_intro"]  # 45 black frames, then textured numbered frames
    prefetched: list[list[tuple[int, int]]] = []
    with clip.path.open("rb") as handle, open_video(handle) as video:
        picked = representative_frame(video, prefetch=lambda ranges: prefetched.append(list(ranges)))
        index = read_barcode(picked.frame.to_image())
        assert index >= 45
        assert picked.time == pytest.approx(clip.times[index], abs=1e-3)
        assert score_frame(picked.frame).usable and picked.warnings == []
        # The keyframes' byte ranges were handed over for one parallel fetch before decoding.
        assert len(prefetched) == 1
        assert sorted(prefetched[0]) == sorted((pos, pos + size) for _, pos, size in video.keyframes())


def test_short_clip_whose_only_keyframe_is_black(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "one_gop.mp4", frames=30, gop=60, black_frames=5)
    with clip.path.open("rb") as handle, open_video(handle) as video:
        assert len(video.keyframes()) == 1
        picked = representative_frame(video)
    assert read_barcode(picked.frame.to_image()) >= 5
    assert picked.warnings == []


def test_all_black_video_still_gives_a_frame_with_a_warning(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "black.mp4", frames=20, black_frames=20)
    with clip.path.open("rb") as handle, open_video(handle) as video:
        picked = representative_frame(video)
    assert picked.frame is not None
    assert any("representative" in w for w in picked.warnings)


def test_scores_reject_black_white_flat_and_prefer_sharp() -> None:
    rng = np.random.default_rng(1)
    detailed = rng.integers(0, 256, (90, 160)).astype(np.float32)
    blurred = np.kron(rng.integers(60, 200, (9, 16)), np.ones((10, 10))).astype(np.float32)
    assert not score_luma(np.zeros((90, 160), np.float32)).usable
    assert not score_luma(np.full((90, 160), 250, np.float32)).usable
    assert not score_luma(np.full((90, 160), 128, np.float32)).usable
    assert score_luma(detailed).usable and score_luma(blurred).usable
    assert score_luma(detailed).value > score_luma(blurred).value
