"""FlashMLA's schedule (simulator/partition/flashmla.py): the greedy cut of Σ(blocks + 5) over SM
parts, against a hand-worked example and as properties; its grid of parts x q-blocks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnsim.errors import InputError
from attnsim.simulator.hardware import PRESETS
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.partition.flashmla import FIXED_OVERHEAD_BLOCKS, greedy_cut
from attnsim.simulator.schedule import ROLE_COMPLETE, ROLE_PEER
from attnsim.simulator.workload import DecodeWorkload
from plan_helpers import plan

H100 = PRESETS["h100-sxm"]


def test_the_cut_of_a_worked_example():
    """Blocks [5, 11] over 5 parts: payload ceil((16 + 10) / 5) + 5 = 11. Part 0 takes all of
    sequence 0 (5 + 5 = 10) and has 1 left, too little for a piece; part 1 takes 11 - 5 = 6 blocks of
    sequence 1, part 2 the other 5 (+ 5 = 10); parts 3 and 4 get nothing."""
    assert greedy_cut(np.array([5, 11]), 5, 5) == [(0, 0, 0, 5), (1, 1, 0, 6), (2, 1, 6, 5)]


@settings(max_examples=200, deadline=None)
@given(blocks=st.lists(st.integers(1, 300), min_size=1, max_size=40), parts=st.integers(1, 140),
       overhead=st.integers(1, 8))
def test_the_cut_covers_every_block_once_within_each_parts_payload(blocks, parts, overhead):
    pieces = greedy_cut(np.array(blocks), parts, overhead)
    payload = -(-(sum(blocks) + overhead * len(blocks)) // parts) + overhead
    covered = {s: [] for s in range(len(blocks))}
    for part, seq, first, n in pieces:
        covered[seq].append((first, n))
        assert n >= 1 and 0 <= part < parts
    for seq, runs in covered.items():  # contiguous, in order, exactly the sequence's blocks
        assert runs[0][0] == 0 and all(a + n == b for (a, n), (b, _) in zip(runs, runs[1:]))
        assert sum(n for _, n in runs) == blocks[seq]
    for part in range(parts):
        assert sum(n + overhead for p, _, _, n in pieces if p == part) <= payload
    assert [p for p, *_ in pieces] == sorted(p for p, *_ in pieces)


def mla(heads: int, contexts, rank: int = 512) -> DecodeWorkload:
    return DecodeWorkload.build(len(contexts), heads, 1, rank + 64, list(contexts), dtype="bfloat16",
                                kv_lora_rank=rank)


@pytest.mark.parametrize("heads, grid", [(16, 132), (64, 132), (128, 132), (8, 132)])
def test_default_grid_is_flashmlas_parts_times_q_blocks(heads, grid):
    assert plan("flashmla", mla(heads, [4000, 9000]), H100).grid == grid


def test_every_q_block_runs_the_same_cut_and_split_outputs_are_combined():
    sched = plan("flashmla", mla(128, [20000, 700, 3000]), H100, PlanConfig(grid=12))
    segs, parts = sched.attention.segments, 6
    for qb in (0, 1):
        rows = segs.q_block == qb
        assert (segs.cta[rows] // parts == qb).all()
    first = segs.q_block == 0
    for field in ("seq", "first_tile", "n_tiles", "role"):
        assert (getattr(segs, field)[first] == getattr(segs, field)[~first]).all()
    assert sched.notes["overhead_units"] == FIXED_OVERHEAD_BLOCKS  # 64-token units (tile 32)
    red = sched.reductions
    split = {(int(s), int(b)) for s, b in zip(red.seq, red.q_block)}
    for i in range(len(segs)):
        role = ROLE_PEER if (int(segs.seq[i]), int(segs.q_block[i])) in split else ROLE_COMPLETE
        assert segs.role[i] == role
    for r in range(len(red)):
        peers = red.peers_of(r)
        assert list(peers) == sorted(peers) and len(sched.launches) == 2


def test_a_grid_that_is_not_whole_parts_is_refused():
    with pytest.raises(InputError) as err:
        plan("flashmla", mla(128, [4000]), H100, PlanConfig(grid=7))
    assert err.value.field == "grid"


def test_a_larger_tile_cuts_in_its_own_units():
    sched = plan("flashmla", mla(16, [5000, 300]), H100, PlanConfig(kv_tile_tokens=128, grid=3))
    assert sched.notes["unit_tokens"] == 128 and sched.notes["overhead_units"] == 3  # 5 x 64 tokens, rounded up
