"""The physical minimum against a tiny generated video, checked by demuxing every packet."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from bench.minimum import physical_minimum
from devkit.mp4_boxes import top_level_boxes
from devkit.synthetic_video import H264, encode_mp4

FPS, GOP, SECONDS = 10, 10, 4


def _encode(path: Path, faststart: bool) -> None:
    h264 = H264(64, 48, FPS, options={"x264-params": f"keyint={GOP}:min-keyint={GOP}:scenecut=0"})
    rng = np.random.default_rng(1)
    frames = []
    for index in range(FPS * SECONDS):
        frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), format="rgb24")
        frame.pts = index
        frames.append(frame)
    encode_mp4(path, h264, frames, faststart=faststart)


def _gops_by_demuxing(path: Path) -> list[tuple[float, int]]:
    """(keyframe pts in seconds, bytes of the GOP's packets), from the packets themselves."""
    gops: list[tuple[float, int]] = []
    with av.open(str(path)) as container:
        for packet in container.demux(video=0):
            if packet.size == 0:
                continue
            if packet.is_keyframe:
                gops.append((float(packet.pts * packet.time_base), 0))
            start, size = gops[-1]
            gops[-1] = (start, size + packet.size)
    return gops


@pytest.mark.parametrize("faststart", [True, False])
def test_minimum_is_the_moov_box_plus_the_gop_holding_the_frame(tmp_path: Path, faststart: bool) -> None:
    path = tmp_path / "tiny.mp4"
    _encode(path, faststart)
    boxes = {kind: (offset, size) for kind, offset, size in top_level_boxes(path)}
    assert sum(size for _, size in boxes.values()) == path.stat().st_size
    gops = _gops_by_demuxing(path)
    assert [start for start, _ in gops] == [0.0, 1.0, 2.0, 3.0]
    for position, gop_index in ((0.0, 0), (0.95, 0), (1.0, 1), (2.5, 2), (3.9, 3)):
        minimum = physical_minimum(path, position)
        assert minimum.moov_at_end is not faststart
        assert minimum.moov_bytes == boxes["moov"][1]
        assert minimum.keyframe_s == gops[gop_index][0]
        assert minimum.gop_bytes == gops[gop_index][1]
        assert minimum.total == boxes["moov"][1] + gops[gop_index][1]


def test_a_file_that_is_not_iso_bmff_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "junk.mp4"
    path.write_bytes(b"\x00\x00\x00\x04junk")
    with pytest.raises(ValueError, match="corrupt box header"):
        top_level_boxes(path)
