"""A bounded LRU cache of a file's aligned blocks, with claims so no two threads fetch one block.

It knows nothing of where bytes come from: a reader asks it what to fetch (a `Claim`), fetches,
`store`s the bytes and `release`s the claim. Each block holds one contiguous piece (a prefetched
packet need not start at the block's start); pieces that touch or overlap are merged.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import NamedTuple

from aws_lambda_powertools import Logger

from thumbnailer.logs import service_name

# A Powertools child of the worker logger: JSON lines with its keys (correlation id), not plain text.
logger = Logger(service=service_name(), child=True)


class Piece(NamedTuple):
    """A cached block's one contiguous piece: `data` from `offset` (relative to the block's start)."""

    offset: int
    data: bytes

    @property
    def end(self) -> int:
        return self.offset + len(self.data)


class Claim(NamedTuple):
    """Bytes [start, end) one thread fetches; `blocks` are claimed (others wait) until released."""

    start: int
    end: int
    blocks: Sequence[int]


class BlockCache:
    """The blocks of a file of `size` bytes, at most `max_blocks` blocks' worth of bytes held."""

    def __init__(self, size: int, block_size: int, max_blocks: int) -> None:
        if block_size <= 0 or max_blocks <= 0:
            raise ValueError("block_size and cache_blocks must be positive")
        self.size = size
        self.block_size = block_size
        self.max_blocks = max_blocks
        self.limit = max_blocks * block_size  # bytes
        self._lock = threading.Lock()
        self._blocks: OrderedDict[int, Piece] = OrderedDict()
        self._held_bytes = 0
        self._in_flight: dict[int, threading.Event] = {}

    @property
    def cached_bytes(self) -> int:
        """Bytes held now (bounded by `limit`)."""
        with self._lock:
            return self._held_bytes

    def copy_into(self, start: int, end: int, target: memoryview) -> int:
        """Copy the held bytes from `start` on (contiguous, up to `end`) into target; how many."""
        written = 0
        with self._lock:
            while start + written < end:
                index, piece = self._piece_at(start + written)
                relative = start + written - index * self.block_size
                if piece is None or not piece.offset <= relative < piece.end:
                    break
                self._blocks.move_to_end(index)
                chunk = piece.data[relative - piece.offset : relative - piece.offset + end - start - written]
                target[written : written + len(chunk)] = chunk
                written += len(chunk)
        return written

    def claim_read(self, position: int, end: int, max_blocks: int) -> Claim | threading.Event:
        """What a read at `position` (wanting bytes up to `end`) should fetch, or the event to wait on
        when another thread is fetching that block.

        The claim runs to the end of the block and over the following blocks the read needs that
        are wholly missing (at most `max_blocks` in all). In a block holding a piece from a later
        offset (an earlier read or a prefetch began inside it), only the gap before that piece.
        """
        size = self.block_size
        with self._lock:
            first, held = self._piece_at(position)
            waiting = self._in_flight.get(first)
            if waiting is not None:
                return waiting
            if held is not None and held.offset > position - first * size:
                blocks, stop = [first], first * size + held.offset
            else:
                blocks = self._missing_run(first, (end - 1) // size, max_blocks)
                stop = (blocks[-1] + 1) * size
            self._mark_in_flight(blocks)
        return Claim(position, min(stop, self.size), blocks)

    def claim_ranges(self, ranges: Sequence[tuple[int, int]]) -> list[Claim]:
        """Claims for exactly these byte ranges [start, end), less what is held or in flight.

        Ranges meeting in a block become one claim (a block holds one contiguous piece). At most
        `limit` bytes are claimed: more would evict each other before being read.
        """
        claims: list[Claim] = []
        claimed_bytes = 0
        with self._lock:
            for range_start, end in _spans(ranges, self.size, self.block_size):
                start = self._first_missing(range_start, end)
                blocks = range(start // self.block_size, (end - 1) // self.block_size + 1)
                if start >= end or any(index in self._in_flight for index in blocks):
                    continue
                if claimed_bytes + end - start > self.limit:
                    logger.debug("prefetch capped at the cache size (%d bytes)", self.limit)
                    break
                self._mark_in_flight(blocks)
                claimed_bytes += end - start
                claims.append(Claim(start, end, blocks))
        return claims

    def store(self, start: int, data: bytes) -> None:
        """Hold `data` (the bytes from `start`) block by block, evicting the least recently used."""
        end = start + len(data)
        with self._lock:
            position = start
            while position < end:
                index, held = self._piece_at(position)
                relative = position - index * self.block_size
                chunk = data[position - start : position - start + self.block_size - relative]
                piece = _merged(held, relative, chunk)
                self._held_bytes += len(piece.data) - (len(held.data) if held else 0)
                self._blocks[index] = piece
                self._blocks.move_to_end(index)
                position += len(chunk)
            while self._held_bytes > self.limit:
                _, evicted = self._blocks.popitem(last=False)
                self._held_bytes -= len(evicted.data)

    def release(self, claim: Claim) -> None:
        """End a claim (fetched or failed): wake whoever waits on its blocks."""
        with self._lock:
            for index in claim.blocks:
                event = self._in_flight.pop(index, None)
                if event is not None:
                    event.set()

    def clear(self) -> None:
        with self._lock:
            self._blocks.clear()
            self._held_bytes = 0

    # --- with the lock held -----------------------------------------------------------------------
    def _piece_at(self, position: int) -> tuple[int, Piece | None]:
        """The block index holding `position` and its held piece."""
        index = position // self.block_size
        return index, self._blocks.get(index)

    def _missing_run(self, first: int, last_wanted: int, max_blocks: int) -> list[int]:
        """`first` and the wholly missing blocks after it, up to `last_wanted` and the size limits."""
        last = min(last_wanted, first + min(max_blocks, self.max_blocks) - 1)
        run = [first]
        for index in range(first + 1, last + 1):
            if index in self._blocks or index in self._in_flight:
                break
            run.append(index)
        return run

    def _mark_in_flight(self, blocks: Sequence[int]) -> None:
        for index in blocks:
            self._in_flight[index] = threading.Event()

    def _first_missing(self, start: int, end: int) -> int:
        """The first position from `start` on (up to `end`) not held."""
        position = start
        while position < end:
            index, piece = self._piece_at(position)
            relative = position - index * self.block_size
            if piece is None or not piece.offset <= relative < piece.end:
                break
            position = index * self.block_size + piece.end
        return min(position, end)


def _spans(ranges: Sequence[tuple[int, int]], size: int, block_size: int) -> list[tuple[int, int]]:
    """The ranges clipped to [0, size), sorted, merged where they overlap or meet in a block."""
    spans: list[tuple[int, int]] = []
    for start, end in sorted((max(a, 0), min(b, size)) for a, b in ranges):
        if end <= start:
            continue
        if spans and start // block_size <= (spans[-1][1] - 1) // block_size:
            spans[-1] = (spans[-1][0], max(spans[-1][1], end))
        else:
            spans.append((start, end))
    return spans


def _merged(held: Piece | None, offset: int, data: bytes) -> Piece:
    """A block's new piece: `data` at `offset`, joined to the held piece when they touch or overlap."""
    if held is None or offset > held.end or offset + len(data) < held.offset:
        return Piece(offset, data)
    head = held.data[: max(0, offset - held.offset)]
    tail = held.data[max(0, offset + len(data) - held.offset) :]
    return Piece(min(offset, held.offset), head + data + tail)
