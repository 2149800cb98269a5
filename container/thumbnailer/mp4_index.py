"""The bytes FFmpeg will read to decode the frame at a time, from the video track's sample tables.

Read from the moov box's bytes before FFmpeg has parsed them, so the frame's group of pictures
can be fetched alongside the first samples FFmpeg's stream probe reads, instead of in a GET of
its own after the probe. A prediction only: `extract.frame_at` still fetches (what is missing
of) the exact range from FFmpeg's own index, and decodes the same frame either way. Only the
simple layouts are predicted (one edit, or an empty edit then one; no fragments): anything else
gives None and costs nothing.
"""

from __future__ import annotations

import bisect
import struct
from array import array
from dataclasses import dataclass
from fractions import Fraction

from thumbnailer.mp4_layout import box_list

_CONTAINERS = {b"trak", b"mdia", b"minf", b"stbl", b"edts"}
_TABLES = {b"mdhd", b"hdlr", b"elst", b"ctts", b"stts", b"stss", b"stsc", b"stsz", b"stco", b"co64"}
# A larger group of pictures (or a damaged table) is left to frame_at's own prefetch.
MAX_SPAN_BYTES = 8 << 20


@dataclass(frozen=True)
class VideoTrack:
    """What FFmpeg's index of the video track holds, as the sample tables give it."""

    timescale: int
    shift: int  # media-time ticks subtracted from each decode time (the edit list)
    duration: int  # ticks of the presentation (the edit's length, or the media's)
    deltas: list[tuple[int, int]]  # stts: (sample count, duration)
    syncs: array[int] | None  # stss: 1-based sample numbers; None: every sample is one
    chunks_map: list[tuple[int, int]]  # stsc: (first chunk, 1-based; samples per chunk)
    sizes: array[int]  # stsz: every sample's size
    offsets: array[int]  # stco/co64: every chunk's offset


def video_track(holder: bytes, movie_timescale: int | None = None) -> VideoTrack | None:
    """The first video track's tables from the moov box's bytes (`moov_holder`'s range)."""
    data = memoryview(holder)
    for kind, start, end in box_list(data, 0, len(data)):
        if kind != b"moov":
            continue
        movie = _movie_timescale(data, start, end)
        for child, trak_start, trak_end in box_list(data, start, end):
            tables = dict(_tables(data, trak_start, trak_end)) if child == b"trak" else {}
            if bytes(tables.get(b"hdlr", b"")[8:12]) == b"vide":
                return _track(tables, movie_timescale or movie)
    return None


def gop_span(
    track: VideoTrack, seconds: float | None, percent: float | None, lookahead: int
) -> tuple[int, int] | None:
    """Bytes [start, end) `extract._packets_span` will ask for the frame at `seconds` (or at
    `percent` of the duration, as pipeline._pick places it): from the sync sample at or before
    the target (by decode time, as FFmpeg's index holds) to `lookahead` samples past it."""
    if percent is not None:
        duration = track.duration / track.timescale
        seconds = min(duration * percent / 100.0, duration - 0.001)
    if seconds is None:
        return None
    # As Video.pts_at: decimal arithmetic to the microsecond.
    exact = Fraction(repr(float(max(seconds, 0.0)))) + Fraction(1, 1_000_000)
    target = int(exact * track.timescale) + track.shift  # in raw decode time
    after = _samples_at_or_before(track.deltas, target)  # samples whose decode time <= target
    count = len(track.sizes)
    if not after or after > count:
        return None
    key = _sync_at_or_before(track.syncs, after)
    last = min(after + lookahead, count)
    positions = _positions(track, key, last)
    if positions is None:
        return None
    start = positions[0]
    end = max(positions[i - key] + track.sizes[i] for i in range(max(after - 1, key), last))
    return (start, end) if 0 <= start < end and end - start <= MAX_SPAN_BYTES else None


def _samples_at_or_before(deltas: list[tuple[int, int]], target: int) -> int:
    """How many samples start (decode time) at or before `target` ticks."""
    if target < 0:
        return 0
    time = samples = 0
    for count, delta in deltas:
        if delta and target < time + count * delta:
            return samples + (target - time) // delta + 1
        time += count * delta
        samples += count
    return samples


def _sync_at_or_before(syncs: array[int] | None, samples: int) -> int:
    """The 0-based index of the last sync sample among the first `samples`."""
    if syncs is None:
        return samples - 1
    found = bisect.bisect_right(syncs, samples)
    return syncs[found - 1] - 1 if found else 0


def _positions(track: VideoTrack, first: int, last: int) -> list[int] | None:
    """Byte positions of samples [first, last) (0-based), from the chunk tables."""
    chunk, sample = _chunk_of(track.chunks_map, len(track.offsets), first)
    if chunk < 0:
        return None
    position = track.offsets[chunk] + sum(track.sizes[sample:first])
    per_chunk = _samples_in(track.chunks_map, chunk)
    positions = []
    for index in range(first, last):
        if index - sample >= per_chunk:
            chunk, sample = chunk + 1, index
            if chunk >= len(track.offsets):
                return None
            position, per_chunk = track.offsets[chunk], _samples_in(track.chunks_map, chunk)
        positions.append(position)
        position += track.sizes[index]
    return positions


def _chunk_of(chunks_map: list[tuple[int, int]], chunks: int, index: int) -> tuple[int, int]:
    """The 0-based chunk holding sample `index` and its first sample's index; (-1, 0) if none."""
    sample = 0
    for entry, (first_chunk, per_chunk) in enumerate(chunks_map):
        next_chunk = chunks_map[entry + 1][0] if entry + 1 < len(chunks_map) else chunks + 1
        run = (next_chunk - first_chunk) * per_chunk
        if per_chunk and index < sample + run:
            skipped = (index - sample) // per_chunk
            return first_chunk - 1 + skipped, sample + skipped * per_chunk
        sample += run
    return -1, 0


def _samples_in(chunks_map: list[tuple[int, int]], chunk: int) -> int:
    found = bisect.bisect_right([first for first, _ in chunks_map], chunk + 1)
    return chunks_map[found - 1][1] if found else 0


def _movie_timescale(data: memoryview, start: int, end: int) -> int:
    for kind, payload, _ in box_list(data, start, end):
        if kind == b"mvhd" and len(data[payload:]) >= 24:
            return int(struct.unpack_from(">I", data, payload + (20 if data[payload] == 1 else 12))[0])
    return 0


def _tables(data: memoryview, start: int, end: int) -> list[tuple[bytes, memoryview]]:
    """The boxes of `_TABLES` under a trak: (type, payload)."""
    found: list[tuple[bytes, memoryview]] = []
    for kind, payload, box_end in box_list(data, start, end):
        if kind in _CONTAINERS:
            found += _tables(data, payload, box_end)
        elif kind in _TABLES:
            found.append((kind, data[payload:box_end]))
    return found


def _track(tables: dict[bytes, memoryview], movie_timescale: int) -> VideoTrack | None:
    try:
        timescale, media_duration = _mdhd(tables[b"mdhd"])
        edit = _edit(tables.get(b"elst"), timescale, movie_timescale)
        sizes = _sizes(tables[b"stsz"])
        offsets = _offsets(tables)
        stss = tables.get(b"stss")
        syncs = _u32s(stss, 8, struct.unpack_from(">I", stss, 4)[0]) if stss is not None else None
        stts, stsc = tables[b"stts"], tables[b"stsc"]
        deltas = _pairs(stts, struct.unpack_from(">I", stts, 4)[0], 8)
        chunks_map = [(a, b) for a, b, _ in _triples(stsc, struct.unpack_from(">I", stsc, 4)[0])]
    except (KeyError, struct.error, ValueError):
        return None
    if edit is None or not timescale or not sizes or not offsets or not chunks_map:
        return None
    shift, duration, media_time = edit
    if media_time and media_time != _first_composition_offset(tables.get(b"ctts")):
        # FFmpeg then shifts by more than the edit (the frame shown first is not the first one
        # decoded after it): not predicted.
        return None
    return VideoTrack(timescale, shift, duration or media_duration, deltas, syncs, chunks_map, sizes, offsets)


def _mdhd(box: memoryview) -> tuple[int, int]:
    """The media's timescale and duration."""
    layout, offset = (">IQ", 20) if box[0] == 1 else (">II", 12)
    timescale, duration = struct.unpack_from(layout, box, offset)
    return int(timescale), int(duration)


def _first_composition_offset(ctts: memoryview | None) -> int:
    if ctts is None or len(ctts) < 16 or not struct.unpack_from(">I", ctts, 4)[0]:
        return 0
    return int(struct.unpack_from(">i" if ctts[0] == 1 else ">I", ctts, 12)[0])


def _edit(elst: memoryview | None, timescale: int, movie_timescale: int) -> tuple[int, int, int] | None:
    """(ticks subtracted from decode times, the edit's length in ticks or 0, its media time);
    None: not simple."""
    if elst is None:
        return 0, 0, 0
    version, count = elst[0], struct.unpack_from(">I", elst, 4)[0]
    layout = ">Qq" if version == 1 else ">Ii"
    step = 20 if version == 1 else 12
    entries = [struct.unpack_from(layout, elst, 8 + i * step) for i in range(min(count, 3))]
    empty = 0
    if len(entries) == 2 and entries[0][1] == -1:
        empty = entries.pop(0)[0]
    if len(entries) != 1 or entries[0][1] < 0 or not movie_timescale:
        return None
    length, media_time = entries[0]
    to_media = Fraction(timescale, movie_timescale)
    return media_time - int(empty * to_media), int((empty + length) * to_media), media_time


def _sizes(stsz: memoryview) -> array[int]:
    size, count = struct.unpack_from(">II", stsz, 4)
    return array("Q", [size]) * count if size else _u32s(stsz, 12, count)


def _offsets(tables: dict[bytes, memoryview]) -> array[int]:
    if b"stco" in tables:
        stco = tables[b"stco"]
        return _u32s(stco, 8, struct.unpack_from(">I", stco, 4)[0])
    co64 = tables[b"co64"]
    count = struct.unpack_from(">I", co64, 4)[0]
    values = array("Q", bytes(co64[8 : 8 + 8 * count]))
    if len(values) != count:
        raise ValueError("co64 shorter than its count")
    values.byteswap()
    return values


def _u32s(box: memoryview, offset: int, count: int) -> array[int]:
    values = array("I", bytes(box[offset : offset + 4 * count]))
    if len(values) != count:
        raise ValueError("table shorter than its count")
    values.byteswap()
    return values


def _pairs(box: memoryview, count: int, offset: int) -> list[tuple[int, int]]:
    values = _u32s(box, offset, 2 * count)
    return list(zip(values[0::2], values[1::2], strict=True))


def _triples(box: memoryview, count: int) -> list[tuple[int, int, int]]:
    values = _u32s(box, 8, 3 * count)
    return list(zip(values[0::3], values[1::3], values[2::3], strict=True))
