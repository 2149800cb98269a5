"""The block cache alone, without HTTP: what it holds, merges and evicts, and what it asks to fetch."""

from __future__ import annotations

import random
import threading

import pytest

from thumbnailer.block_cache import BlockCache, Claim

DATA = random.Random(1).randbytes(10 * 100)  # a "file" of ten 100-byte blocks


def _held(cache: BlockCache, start: int, end: int) -> bytes:
    target = bytearray(end - start)
    copied = cache.copy_into(start, end, memoryview(target))
    return bytes(target[:copied])


def _fetch(cache: BlockCache, claim: Claim) -> None:
    """What a reader does with a claim: fetch (here, from DATA), store, release."""
    cache.store(claim.start, DATA[claim.start : claim.end])
    cache.release(claim)


def test_sizes_must_be_positive() -> None:
    for block_size, max_blocks in [(0, 1), (1, 0), (-1, 4)]:
        with pytest.raises(ValueError, match="must be positive"):
            BlockCache(len(DATA), block_size, max_blocks)


def test_a_read_claims_to_the_block_end_and_over_the_missing_blocks_it_needs() -> None:
    cache = BlockCache(len(DATA), 100, 4)
    claim = cache.claim_read(130, 350, max_blocks=8)
    assert claim == Claim(130, 400, [1, 2, 3])
    assert isinstance(claim, Claim)
    _fetch(cache, claim)
    assert _held(cache, 130, 400) == DATA[130:400]
    assert _held(cache, 100, 200) == b""  # nothing held at 100: the piece starts at 130
    # In a block holding a later piece, only the gap before it; a run stops at a held block;
    # and takes at most max_blocks, whatever the read needs.
    assert cache.claim_read(100, 200, max_blocks=8) == Claim(100, 130, [1])
    assert cache.claim_read(0, 500, max_blocks=8) == Claim(0, 100, [0])
    assert cache.claim_read(400, 1000, max_blocks=2) == Claim(400, 600, [4, 5])
    # The cache's own size caps a run too (4 blocks), and the last block ends at the file's end.
    assert cache.claim_read(600, 1000, max_blocks=8) == Claim(600, 1000, [6, 7, 8, 9])


def test_a_block_in_flight_makes_other_threads_wait_for_it() -> None:
    cache = BlockCache(len(DATA), 100, 4)
    claim = cache.claim_read(0, 50, max_blocks=8)
    assert isinstance(claim, Claim)
    waiting = cache.claim_read(20, 30, max_blocks=8)
    assert isinstance(waiting, threading.Event) and not waiting.is_set()
    assert cache.claim_ranges([(10, 20)]) == []  # in flight: not fetched twice
    _fetch(cache, claim)
    assert waiting.is_set()
    assert _held(cache, 20, 30) == DATA[20:30]


def test_pieces_that_touch_or_overlap_merge_and_others_replace() -> None:
    cache = BlockCache(len(DATA), 100, 4)
    cache.store(10, DATA[10:20])
    cache.store(20, DATA[20:40])  # touches: one piece 10-40
    cache.store(5, DATA[5:15])  # overlaps from before: 5-40
    assert _held(cache, 5, 40) == DATA[5:40]
    assert cache.cached_bytes == 35
    cache.store(60, DATA[60:70])  # apart: replaces the piece (a block holds one)
    assert _held(cache, 5, 40) == b""
    assert _held(cache, 60, 70) == DATA[60:70]
    assert cache.cached_bytes == 10


def test_a_store_across_blocks_fills_each_and_copies_stop_at_the_first_gap() -> None:
    cache = BlockCache(len(DATA), 100, 4)
    cache.store(150, DATA[150:320])
    assert _held(cache, 150, 320) == DATA[150:320]
    assert _held(cache, 150, 1000) == DATA[150:320]  # contiguous bytes only
    assert cache.cached_bytes == 170


def test_least_recently_used_blocks_are_evicted_past_the_limit() -> None:
    cache = BlockCache(len(DATA), 100, 3)
    for index in range(3):
        cache.store(index * 100, DATA[index * 100 : index * 100 + 100])
    assert _held(cache, 0, 10) == DATA[:10]  # block 0 used: block 1 is now the oldest
    cache.store(300, DATA[300:400])
    assert cache.cached_bytes == cache.limit == 300
    assert _held(cache, 100, 110) == b""
    assert _held(cache, 0, 10) == DATA[:10] and _held(cache, 300, 310) == DATA[300:310]
    cache.clear()
    assert cache.cached_bytes == 0 and _held(cache, 0, 10) == b""


def test_ranges_are_clipped_merged_in_a_block_less_what_is_held_and_capped() -> None:
    cache = BlockCache(len(DATA), 100, 4)
    cache.store(100, DATA[100:150])
    claims = cache.claim_ranges([(-5, 10), (120, 180), (510, 520), (560, 570), (990, 2000), (30, 30)])
    # (120, 180) starts after what is held; (510, 520) and (560, 570) meet in block 5.
    assert [(c.start, c.end, list(c.blocks)) for c in claims] == [
        (0, 10, [0]),
        (150, 180, [1]),
        (510, 570, [5]),
        (990, 1000, [9]),
    ]
    for claim in claims:
        _fetch(cache, claim)
    capped = BlockCache(len(DATA), 100, 2)
    assert [(c.start, c.end) for c in capped.claim_ranges([(0, 90), (200, 290), (400, 490)])] == [
        (0, 90),
        (200, 290),
    ]
