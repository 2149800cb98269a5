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
            return (offset, end) if end > len(head) else None
        if end > len(head):
            tail_ok = kind == b"mdat" and 0 < size - end <= MAX_TAIL_BYTES
            return (end, size) if tail_ok else None
        offset = end
    return None
