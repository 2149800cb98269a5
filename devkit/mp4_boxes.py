"""The top-level boxes of an MP4 (ISO BMFF) file, read from their headers alone."""

from __future__ import annotations

import struct
from pathlib import Path


def top_level_boxes(path: Path) -> list[tuple[str, int, int]]:
    """(type, offset, size) of each top-level box, in file order."""
    boxes = []
    file_size = path.stat().st_size
    with path.open("rb") as handle:
        offset = 0
        while offset + 8 <= file_size:
            handle.seek(offset)
            size, kind = struct.unpack(">I4s", handle.read(8))
            if size == 1:  # 64-bit size follows the type
                (size,) = struct.unpack(">Q", handle.read(8))
            elif size == 0:  # box runs to the end of the file
                size = file_size - offset
            if size < 8:
                raise ValueError(f"{path}: corrupt box header at {offset}")
            boxes.append((kind.decode("latin-1"), offset, size))
            offset += size
    return boxes


def moov_first(path: Path) -> bool:
    """Whether the moov box precedes the mdat box."""
    order = [kind for kind, _, _ in top_level_boxes(path) if kind in {"moov", "mdat"}]
    if not order:
        raise ValueError(f"{path}: no moov or mdat box")
    return order[0] == "moov"
