"""Where an MP4's moov box lies, from the top-level box headers in the file's first bytes.

The reader fetches the moov box in one GET instead of FFmpeg's 32 KiB reads rounded to blocks
one after another (a 40-minute 1080p file's moov box is 2.3 MB). Nothing here is trusted beyond
that: a wrong guess costs bytes, never correctness (FFmpeg still parses the file itself).
"""

from __future__ import annotations

import struct

# The bytes after the first mdat box fetched at once when the moov box is at the end: a moov
# box (with perhaps a free or udta box) is rarely larger; a bigger tail is left to block reads.
MAX_TAIL_BYTES = 16 << 20
_HEADER = struct.Struct(">I4s")
_LARGE_SIZE = struct.Struct(">Q")


def moov_range(head: bytes, size: int) -> tuple[int, int] | None:
    """The byte range [start, end) holding the moov box, where it runs past `head`; else None.

    `head` is the file's first bytes, `size` the file's. A moov box inside `head` needs nothing;
    one starting inside it is fetched to its end; past an mdat box whose end is known, the file's
    tail (when at most MAX_TAIL_BYTES). Not an MP4 (no ftyp box first), or a tail too long: None.
    """
    holder = moov_holder(head, size)
    return holder if holder is not None and holder[1] > len(head) else None


def moov_holder(head: bytes, size: int) -> tuple[int, int] | None:
    """The byte range [start, end) that holds the moov box: the box itself (inside `head` or
    starting in it), or the file's tail after an mdat box (see `moov_range`); None when unknown."""
    offset, first = 0, True
    while offset + _HEADER.size <= len(head):
        box_size, kind = _HEADER.unpack_from(head, offset)
        if first and kind != b"ftyp":
            return None
        first = False
        if box_size == 1 and offset + 16 <= len(head):
            (box_size,) = _LARGE_SIZE.unpack_from(head, offset + 8)
        elif box_size == 0:
            box_size = size - offset
        if box_size < _HEADER.size:
            return None  # damaged: leave it to FFmpeg
        end = min(offset + box_size, size)
        if kind == b"moov":
            return offset, end
        if end > len(head):
            tail_ok = kind == b"mdat" and 0 < size - end <= MAX_TAIL_BYTES
            return (end, size) if tail_ok else None
        offset = end
    return None


# --- the first sample of each track, from the moov box ------------------------------------------
# FFmpeg's stream probe (avformat_find_stream_info) reads the first packet of every track and
# decodes the video's first keyframe to learn its pixel format: those bytes are fetched as exact
# ranges right after the moov box, instead of the 512 KiB blocks its 32 KiB reads would fetch one
# after another (two GETs for the 10-minute benchmark file's 0.65 MB keyframe and audio packet).
_CONTAINERS = {b"trak", b"mdia", b"minf", b"stbl"}
MAX_FIRST_SAMPLE_BYTES = 8 << 20  # a larger first sample (or a damaged table) is left to block reads
MAX_TRACKS = 8


def first_samples(holder: bytes, size: int) -> list[tuple[int, int]]:
    """The byte range [start, end) of each track's first sample, from the moov box's bytes.

    `holder` is the bytes of `moov_holder`'s range (top-level boxes, the moov box among them),
    `size` the file's. A track whose tables are missing, damaged or point outside the file is
    left out: FFmpeg reads it as it would.
    """
    data = memoryview(holder)
    ranges: list[tuple[int, int]] = []
    for kind, start, end in box_list(data, 0, len(data)):
        if kind != b"moov":
            continue
        for child, trak_start, trak_end in box_list(data, start, end):
            if child == b"trak" and len(ranges) < MAX_TRACKS:
                found = _first_sample(dict(_tables(data, trak_start, trak_end)), size)
                ranges += [found] if found is not None else []
    return ranges


def touching_held(
    ranges: list[tuple[int, int]], held: list[tuple[int, int]], block_size: int
) -> list[tuple[int, int]]:
    """`ranges`, each one that shares a cache block with `held` bytes but does not reach them
    stretched to touch them: a block holds one contiguous piece, so a piece apart from the held
    one in its block would replace it (an mdat header between the moov box and the first sample,
    an audio packet just before a moov box at the end). Costs at most a block's worth of bytes."""
    out = []
    for first, last in ranges:
        start, end = first, last
        for held_start, held_end in held:
            if held_end <= start and (held_end - 1) // block_size == start // block_size:
                start = held_end
            if end <= held_start and (end - 1) // block_size == held_start // block_size:
                end = held_start
        out.append((start, end))
    return out


def box_list(data: memoryview, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, payload start, end) of the boxes in data[start:end], until one is implausible."""
    found: list[tuple[bytes, int, int]] = []
    offset = start
    while offset + _HEADER.size <= end and len(found) < 1000:
        box_size, kind = _HEADER.unpack_from(data, offset)
        header = _HEADER.size
        if box_size == 1 and offset + 16 <= end:
            (box_size,) = _LARGE_SIZE.unpack_from(data, offset + 8)
            header = 16
        if box_size < header or offset + box_size > end:
            break
        found.append((bytes(kind), offset + header, offset + box_size))
        offset += box_size
    return found


def _tables(data: memoryview, start: int, end: int) -> list[tuple[bytes, memoryview]]:
    """The sample-table boxes (stsz, stco, co64) under a trak: (type, payload)."""
    found: list[tuple[bytes, memoryview]] = []
    for kind, payload, box_end in box_list(data, start, end):
        if kind in _CONTAINERS:
            found += _tables(data, payload, box_end)
        elif kind in (b"stsz", b"stco", b"co64"):
            found.append((kind, data[payload:box_end]))
    return found


def _first_sample(tables: dict[bytes, memoryview], size: int) -> tuple[int, int] | None:
    """The first chunk's offset (stco/co64) and the first sample's size (stsz): its byte range."""
    stsz, stco, co64 = (tables.get(kind, memoryview(b"")) for kind in (b"stsz", b"stco", b"co64"))
    if len(stsz) < 12 or not (len(stco) >= 12 or len(co64) >= 16):
        return None
    sample_size, count = struct.unpack_from(">II", stsz, 4)  # after version and flags
    if not sample_size and len(stsz) >= 16:
        (sample_size,) = struct.unpack_from(">I", stsz, 12)  # the first entry of the table
    if len(stco) >= 12:
        entries, offset = struct.unpack_from(">II", stco, 4)
    else:
        entries, offset = struct.unpack_from(">IQ", co64, 4)
    end = offset + sample_size
    if not count or not entries or not 0 < sample_size <= MAX_FIRST_SAMPLE_BYTES or end > size:
        return None
    return offset, end
