"""ISO BMFF (MP4, MOV) box headers read before the demuxer parses them, for the limits they imply.

The demuxer reads the moov box whole and expands its sample tables per sample: a 20-byte stsz
can claim billions of samples. Only box headers are read here (the moov's size, each track's
sample count), so the check costs a few small reads of bytes the demuxer reads next anyway.
"""

from __future__ import annotations

import struct
from typing import IO

from thumbnailer import limits

# Boxes on the way from moov to a track's sample tables.
_PATH = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}
_MAX_BOXES = 10_000  # headers walked at most: a file of tiny boxes is not walked forever


def check(fileobj: IO[bytes], size: int) -> None:
    """Refuse (LimitExceededError) a moov box or sample count over the limits; other files pass."""
    for kind, offset, box_size, header in _children(fileobj, 0, size):
        if kind == b"moov":
            limits.check_moov(box_size)
            limits.check_samples(_samples(fileobj, offset + header, offset + box_size))
    fileobj.seek(0)


def _samples(fileobj: IO[bytes], start: int, end: int) -> int:
    """Samples the stsz/stz2 tables under [start, end) claim, in all tracks."""
    total = 0
    for kind, offset, box_size, header in _children(fileobj, start, end):
        if kind in _PATH:
            total += _samples(fileobj, offset + header, offset + box_size)
        elif kind in (b"stsz", b"stz2"):
            fileobj.seek(offset + header + 8)  # version/flags, sample size (or field size)
            count = fileobj.read(4)
            total += struct.unpack(">I", count)[0] if len(count) == 4 else 0
    return total


def _children(fileobj: IO[bytes], start: int, end: int) -> list[tuple[bytes, int, int, int]]:
    """(type, offset, size, header length) of the boxes in [start, end), until one is implausible."""
    found: list[tuple[bytes, int, int, int]] = []
    offset = start
    while offset + 8 <= end and len(found) < _MAX_BOXES:
        fileobj.seek(offset)
        head = fileobj.read(16)
        if len(head) < 8:
            break
        size, kind = struct.unpack(">I4s", head[:8])
        header = 8
        if size == 1 and len(head) == 16:
            size, header = struct.unpack(">Q", head[8:])[0], 16
        elif size == 0:
            size = end - offset
        if size < header or not kind.isascii() or not kind.strip(b" ").isalnum():
            break  # not a box: the demuxer decides what the file is
        found.append((kind, offset, min(size, end - offset), header))
        offset += size
    return found
