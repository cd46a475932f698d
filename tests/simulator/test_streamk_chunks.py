"""Stream-K cut at fixed chunks (partition/streamk_chunks.py): every tile once, each sequence's chunk
boundaries a function of its own length (whatever the batch and grid), chunks dealt to CTAs in order, and
the options it needs refused by name."""

from __future__ import annotations

import numpy as np
import pytest

from attnsim.errors import InputError
from attnsim.plans.plan import resolve_plan
from attnsim.profiles import resolve_gpu
from attnsim.simulator.schedule import LAST_ARRIVAL, ROLE_COMPLETE
from attnsim.simulator.workload import DecodeWorkload

H200 = resolve_gpu("h200")
OPTIONS = {"epilogue": "last", "chunk_tokens": 256, "kv_tile_tokens": 64}


def cuts(plan, seq: int) -> list[tuple[int, int, int]]:
    """(kv_head, first tile, tiles) of sequence `seq`'s segments, sorted."""
    s = plan.schedule.attention.segments
    rows = np.flatnonzero(s.seq == seq)
    return sorted(zip(s.kv_head[rows].tolist(), s.first_tile[rows].tolist(), s.n_tiles[rows].tolist()))


def test_every_tile_once_and_a_sequences_cuts_its_own():
    alone = resolve_plan("streamk", DecodeWorkload.build(1, 8, 2, 128, 3000), H200, OPTIONS)
    batch = resolve_plan("streamk", DecodeWorkload.build(4, 8, 2, 128, [700, 3000, 64, 9000]), H200, OPTIONS)
    s = batch.schedule.attention.segments
    tiles = -(-np.array([700, 3000, 64, 9000]) // 64)
    for seq, n in enumerate(tiles):
        for head in range(2):
            mine = sorted((f, k) for h, f, k in cuts(batch, seq) if h == head)
            assert [f for f, _ in mine] == list(range(0, n, 4)) and sum(k for _, k in mine) == n
    assert cuts(alone, 0) == cuts(batch, 1)  # 3,000 tokens: 12 chunks of 4 tiles per head, in any batch
    assert (np.diff(s.cta) >= 0).all() and s.cta.max() < batch.schedule.attention.grid
    single = s.seq == 2  # 64 tokens: one chunk, stored directly
    assert (s.role[single] == ROLE_COMPLETE).all()
    red = batch.schedule.reductions
    assert (red.host_cta == LAST_ARRIVAL).all() and len(red) == 3 * 2  # the three longer sequences x 2 heads
    assert "grid=" not in batch.spec and batch.spec == alone.spec  # the chunks decide the work


def test_max_splits_caps_a_long_sequence():
    plan = resolve_plan("streamk", DecodeWorkload.build(1, 8, 8, 128, 100_000), H200, {**OPTIONS, "max_splits": 8})
    head0 = [k for h, _, k in cuts(plan, 0) if h == 0]  # 1,563 tiles: 8 chunks of ceil(1563 / 8) = 196, the last 191
    assert head0 == [196] * 7 + [191] and len(cuts(plan, 0)) == 8 * 8


@pytest.mark.parametrize("options, field", [({"chunk_tokens": 256}, "chunk_tokens"),  # needs epilogue=last
                                            ({**OPTIONS, "chunk_tokens": 100}, "chunk_tokens"),  # not whole tiles
                                            ({"max_splits": 4, "epilogue": "last"}, "max_splits")])  # no chunk
def test_options_it_cannot_run_are_refused_by_name(options, field):
    with pytest.raises(InputError) as info:
        resolve_plan("streamk", DecodeWorkload.build(2, 8, 2, 128, 4096), H200, options)
    assert info.value.field == field
