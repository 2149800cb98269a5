"""The physical minimum a reader must fetch for one frame: the moov box plus the frame's GOP."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av

from devkit.mp4_boxes import top_level_boxes


@dataclass(frozen=True)
class Minimum:
    moov_bytes: int
    moov_at_end: bool
    gop_bytes: int
    keyframe_s: float

    @property
    def total(self) -> int:
        return self.moov_bytes + self.gop_bytes


def physical_minimum(path: Path, position_s: float) -> Minimum:
    """Bytes of the moov box plus the video packets of the GOP holding the frame shown at `position_s`.

    The GOP runs from the last keyframe at or before the position to the next keyframe; its
    packets' sizes come from the demuxer's index (read from moov, no decoding).
    """
    boxes = top_level_boxes(path)
    moov = next((b for b in boxes if b[0] == "moov"), None)
    mdat = next((b for b in boxes if b[0] == "mdat"), None)
    if moov is None or mdat is None:
        raise ValueError(f"{path}: no moov or mdat box")
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        entries = stream.index_entries
        time_base = stream.time_base
        start = stream.start_time or 0
        target = start + round(position_s / time_base)
        keys = [i for i, e in enumerate(entries) if e.is_keyframe]
        # Index entries are in decode order and carry dts; a keyframe's pts is its dts plus the
        # stream's reorder delay, which the first keyframe shows (its pts is the start time).
        delay = start - entries[0].timestamp
        first = max((i for i in keys if entries[i].timestamp + delay <= target), default=keys[0])
        following = next((i for i in keys if i > first), len(entries))
        gop = sum(entries[i].size for i in range(first, following))
        keyframe_s = float((entries[first].timestamp + delay - start) * time_base)
    return Minimum(moov_bytes=moov[2], moov_at_end=moov[1] > mdat[1], gop_bytes=gop, keyframe_s=keyframe_s)
