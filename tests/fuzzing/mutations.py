"""Seeded, describable mutations of MP4/MOV files: the damage real uploads and hostile ones carry.

Every mutation is a pure function of (data, rng): the same seed gives the same bytes, so a failing
case is reproduced from its seed and description alone. Structural edits (`splice`) keep the file
parseable around the damage: parent box sizes and chunk offsets follow inserted or removed bytes.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf", b"mvex", b"moof", b"traf"}
VISUAL_ENTRIES = {b"avc1", b"avc3", b"hvc1", b"hev1", b"mp4v", b"av01", b"vp09", b"apcn", b"apch", b"jpeg"}
VISUAL_ENTRY_HEADER = 8 + 78  # box header + VisualSampleEntry fields, then its child boxes
TABLES = (b"stsz", b"stco", b"co64", b"stss", b"stts", b"ctts", b"stsc")
EXTREMES = (0, 1, 2, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF)


@dataclass(frozen=True)
class Box:
    kind: bytes
    offset: int
    size: int
    header: int  # 8, or 16 for a 64-bit size
    parents: tuple[int, ...]  # offsets of the enclosing boxes, outermost first

    @property
    def end(self) -> int:
        return self.offset + self.size

    @property
    def body(self) -> int:
        return self.offset + self.header


def boxes(data: bytes) -> list[Box]:
    """Every box found by walking containers (and visual sample entries), in file order."""
    found: list[Box] = []
    _walk(data, 0, len(data), (), found)
    return found


def _walk(data: bytes, start: int, end: int, parents: tuple[int, ...], found: list[Box]) -> None:
    offset = start
    while offset + 8 <= end and len(found) < 10_000:
        size, kind = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1 and offset + 16 <= end:
            (size,), header = struct.unpack_from(">Q", data, offset + 8), 16
        elif size == 0:
            size = end - offset
        if size < header or offset + size > end:
            return
        box = Box(kind, offset, size, header, parents)
        found.append(box)
        inner = (*parents, offset)
        if kind in CONTAINERS:
            _walk(data, box.body, box.end, inner, found)
        elif kind == b"stsd":
            _walk(data, box.body + 8, box.end, inner, found)
        elif kind in VISUAL_ENTRIES:
            _walk(data, offset + VISUAL_ENTRY_HEADER, box.end, inner, found)
        offset += size


def splice(data: bytes, at: int, remove: int, insert: bytes, owners: Sequence[int]) -> bytes:
    """Replace data[at:at+remove] by `insert`; the sizes of the boxes at `owners` (offsets: the
    boxes that hold the change) and every chunk offset past the change follow."""
    delta = len(insert) - remove
    out = bytearray(data[:at] + insert + data[at + remove :])
    for box in boxes(data):
        if box.offset in owners and box.header == 8:
            struct.pack_into(">I", out, box.offset, box.size + delta)
        if box.kind in (b"stco", b"co64") and not at <= box.offset < at + max(remove, 1):
            _shift_chunk_offsets(data, out, box, at, delta)
    return bytes(out)


def _shift_chunk_offsets(data: bytes, out: bytearray, box: Box, at: int, delta: int) -> None:
    wide = box.kind == b"co64"
    fmt, step = (">Q", 8) if wide else (">I", 4)
    count = struct.unpack_from(">I", data, box.body + 4)[0] if box.size >= box.header + 8 else 0
    where = box.offset if box.offset < at else box.offset + delta  # the table itself may have moved
    for i in range(min(count, (box.size - box.header - 8) // step)):
        (value,) = struct.unpack_from(fmt, data, box.body + 8 + i * step)
        if value >= at:
            struct.pack_into(fmt, out, where + box.header + 8 + i * step, (value + delta) % (1 << 8 * step))


@dataclass(frozen=True)
class Mutation:
    name: str
    apply: Callable[[bytes, random.Random, Sequence[bytes]], tuple[bytes, str]]


def _pick(rng: random.Random, data: bytes, kinds: Sequence[bytes] | None = None) -> Box | None:
    found = [b for b in boxes(data) if kinds is None or b.kind in kinds]
    return rng.choice(found) if found else None


def _put(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    if offset >= 0 and offset + struct.calcsize(fmt) <= len(out):
        struct.pack_into(fmt, out, offset, value % (1 << 8 * struct.calcsize(fmt)))
    return bytes(out)


def bit_flips(data: bytes, rng: random.Random, _: Sequence[bytes]) -> tuple[bytes, str]:
    """Flip a few bits in the file's head, or in its moov box."""
    moov = _pick(rng, data, [b"moov"])
    start, end = (moov.offset, moov.end) if moov and rng.random() < 0.7 else (0, min(len(data), 65536))
    out = bytearray(data)
    flipped = [rng.randrange(start, end) for _ in range(rng.randint(1, 8))] if end > start else []
    for at in flipped:
        out[at] ^= 1 << rng.randrange(8)
    return bytes(out), f"bit flips at {flipped}"


def truncate(data: bytes, rng: random.Random, _: Sequence[bytes]) -> tuple[bytes, str]:
    keep = rng.choice([0, rng.randrange(max(1, len(data))), rng.randrange(max(1, min(len(data), 4096)))])
    return data[:keep], f"truncated to {keep} bytes"


def box_size(data: bytes, rng: random.Random, _: Sequence[bytes]) -> tuple[bytes, str]:
    box = _pick(rng, data)
    if box is None:
        return data, "no box"
    value = rng.choice([0, 1, 7, 0xFFFFFFFF, box.size + rng.randint(-16, 16), rng.getrandbits(32)])
    return _put(data, box.offset, ">I", value), f"{box.kind!r} at {box.offset} size {box.size} -> {value}"


def delete_box(data: bytes, rng: random.Random, _: Sequence[bytes]) -> tuple[bytes, str]:
    box = _pick(rng, data)
    if box is None:
        return data, "no box"
    return splice(data, box.offset, box.size, b"", box.parents), f"deleted {box.kind!r} at {box.offset}"


def duplicate_box(data: bytes, rng: random.Random, _: Sequence[bytes]) -> tuple[bytes, str]:
    box = _pick(rng, data)
    if box is None or box.size > 1 << 20:
        return data, "no small box"
    copy = data[box.offset : box.end]
    return splice(data, box.end, 0, copy, box.parents), f"duplicated {box.kind!r} at {box.offset}"


def sample_table(data: bytes, rng: random.Random, _: Sequence[bytes]) -> tuple[bytes, str]:
    """An entry count or an entry of stsz/stco/stss/stts/ctts/stsc set to an extreme or random value."""
    box = _pick(rng, data, TABLES)
    if box is None:
        return data, "no sample table"
    first = box.body + (12 if box.kind == b"stsz" else 8)  # after version/flags, (size,) count
    entries = max(0, (box.end - first) // 4)
    if rng.random() < 0.3 or not entries:
        field = box.body + (8 if box.kind == b"stsz" else 4)
        what = "count"
    else:
        field = first + 4 * rng.randrange(entries)
        what = f"word {(field - first) // 4}"
    value = rng.choice([*EXTREMES, rng.getrandbits(32)])
    return _put(data, field, ">I", value), f"{box.kind!r} {what} -> {value}"


def dimensions(data: bytes, rng: random.Random, _: Sequence[bytes]) -> tuple[bytes, str]:
    """Width or height of tkhd (16.16 fixed point) or of the visual sample entry set absurd."""
    box = _pick(rng, data, [b"tkhd", *VISUAL_ENTRIES])
    if box is None:
        return data, "no tkhd or sample entry"
    side = rng.randrange(2)
    if box.kind == b"tkhd":
        value = rng.choice([0, 1, 0xFFFF, 0x7FFF, rng.getrandbits(16)]) << 16
        return _put(data, box.end - 8 + 4 * side, ">I", value), f"tkhd side {side} -> {value >> 16}"
    value = rng.choice([0, 1, 0xFFFF, 0x7FFF, 16384, rng.getrandbits(16)])
    return _put(data, box.offset + 32 + 2 * side, ">H", value), f"{box.kind!r} side {side} -> {value}"


def pixel_aspect(data: bytes, rng: random.Random, _: Sequence[bytes]) -> tuple[bytes, str]:
    """A pasp box with extreme spacings: changed in place, or added to the visual sample entry."""
    h = rng.choice([0, 1, 17, 1000, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, rng.getrandbits(32)])
    v = rng.choice([0, 1, 3, 0xFFFF, 0xFFFFFFFF, rng.getrandbits(32)])
    return with_pasp(data, h, v), f"pasp {h}:{v}"


def with_pasp(data: bytes, h_spacing: int, v_spacing: int) -> bytes:
    """`data` whose video sample entry carries pasp h_spacing:v_spacing (the pixel aspect ratio)."""
    body = struct.pack(">II", h_spacing, v_spacing)
    found = boxes(data)
    pasp = next((b for b in found if b.kind == b"pasp"), None)
    if pasp is not None:
        return data[: pasp.body] + body + data[pasp.body + 8 :]
    entry = next((b for b in found if b.kind in VISUAL_ENTRIES), None)
    if entry is None:
        return data
    return splice(data, entry.end, 0, struct.pack(">I4s", 16, b"pasp") + body, (*entry.parents, entry.offset))


def mdat_garbage(data: bytes, rng: random.Random, _: Sequence[bytes]) -> tuple[bytes, str]:
    """Random bytes over a range of the media data: what the decoder meets, not the demuxer."""
    mdat = _pick(rng, data, [b"mdat"])
    if mdat is None or mdat.size <= mdat.header:
        return data, "no mdat"
    at = rng.randrange(mdat.body, mdat.end)
    length = min(rng.choice([1, 16, 512, 8192, 65536]), mdat.end - at)
    return data[:at] + rng.randbytes(length) + data[at + length :], f"mdat garbage {length} at {at}"


def spliced(data: bytes, rng: random.Random, others: Sequence[bytes]) -> tuple[bytes, str]:
    """The head of this file and the tail of another (a botched concatenation or upload)."""
    if not others:
        return data, "nothing to splice"
    other = rng.choice(others)
    cut, other_cut = rng.randrange(len(data) + 1), rng.randrange(len(other) + 1)
    return data[:cut] + other[other_cut:], f"first {cut} bytes + another file from {other_cut}"


def lying_sync_table(data: bytes, rng: random.Random, _: Sequence[bytes]) -> tuple[bytes, str]:
    """Mark random samples as sync samples (keyframes) in stss, as some muxers wrongly do."""
    sample_count = next((b for b in boxes(data) if b.kind == b"stsz"), None)
    if sample_count is None:
        return data, "no stsz"
    count = struct.unpack_from(">I", data, sample_count.body + 8)[0]
    marked = sorted(rng.sample(range(1, count + 1), min(count, rng.randint(1, 8)))) if count else []
    return mark_sync_samples(data, marked), f"stss marks samples {marked}"


def mark_sync_samples(data: bytes, samples: Sequence[int]) -> bytes:
    """Add 1-based sample numbers to the first stss (sorted, without duplicates)."""
    stss = next((b for b in boxes(data) if b.kind == b"stss"), None)
    if stss is None:
        return data
    count = struct.unpack_from(">I", data, stss.body + 4)[0]
    present = struct.unpack_from(f">{count}I", data, stss.body + 8)
    merged = sorted({*present, *samples})
    table = struct.pack(f">4sI{len(merged)}I", data[stss.body : stss.body + 4], len(merged), *merged)
    return splice(data, stss.body, stss.size - stss.header, table, (*stss.parents, stss.offset))


MUTATIONS = tuple(
    Mutation(f.__name__, f)
    for f in (
        bit_flips,
        truncate,
        box_size,
        delete_box,
        duplicate_box,
        sample_table,
        dimensions,
        pixel_aspect,
        mdat_garbage,
        spliced,
        lying_sync_table,
    )
)


@dataclass(frozen=True)
class Case:
    """One fuzz input: which source, which seed, what was done to it, and the resulting bytes."""

    source: str
    seed: int
    description: str
    data: bytes


def mutate(name: str, data: bytes, seed: int, others: Sequence[bytes] = ()) -> Case:
    """One to three mutations of `data`, chosen and applied from `seed` alone."""
    rng = random.Random(seed)
    steps = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        mutation = rng.choice(MUTATIONS)
        data, what = mutation.apply(data, rng, others)
        steps.append(f"{mutation.name}: {what}")
    return Case(name, seed, "; ".join(steps), data)
