"""Invariants every plan must keep, on random workloads (uniform and ragged batches, MHA/GQA/MQA,
head_dim 64/128/256, odd contexts, q_len 1) and random plan options.

- The attention launch's segment table covers every (sequence, kv-head, q-block, KV tile) exactly
  once, and its KV bytes are the workload's KV bytes once per q-block (128-head MQA has two).
- FA2: one CTA per output. FlashDecoding: DOMAIN.md §2's split ranges, one combine row per output.
- Stream-K: per-CTA tile counts differ by at most one; every output split across CTAs has exactly
  one host, which only waits on lower program ids (the CPU interpreter runs programs in id order);
  its peers are exactly the other CTAs touching it; a CTA hosts at most one output and is a peer of
  at most one.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from attnsim import strategies
from attnsim.errors import InputError
from attnsim.simulator.hardware import PRESETS
from attnsim.simulator.occupancy import resident_capacity
from plan_helpers import plan
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.partition.common import outputs as plan_outputs
from attnsim.simulator.partition.flashdecoding import combine_pieces
from attnsim.planner.choose import make_plan
from attnsim.simulator.schedule import ROLE_COMPLETE, ROLE_PEER
from attnsim.simulator.workload import DecodeWorkload

from sim_helpers import (
    assert_common_invariants, assert_host_reductions, assert_peers_publish_after_streaming, expected_tiles,
    fa2_heuristic_for, planned, segments_by_output,
)

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
STRATEGIES = strategies.predictable()  # every modelled strategy, from the registry
H100 = PRESETS["h100-sxm"]


@pytest.mark.parametrize("strategy", STRATEGIES)
@PROPERTY
@given(data=st.data())
def test_every_kv_tile_is_covered_exactly_once(strategy, data):
    sched, _, _ = data.draw(planned(strategy))
    assert_common_invariants(sched)


@PROPERTY
@given(planned("fa2"))
def test_fa2_runs_one_cta_per_output_over_its_whole_context(case):
    sched, _, _ = case
    segs, tiles = sched.attention.segments, expected_tiles(sched)
    assert sched.grid == len(tiles) == len(segs)
    assert len(sched.launches) == 1 and len(sched.reductions) == 0 and sched.splits == 1
    assert (segs.cta == np.arange(sched.grid)).all()
    assert (segs.first_tile == 0).all() and (segs.role == ROLE_COMPLETE).all()
    for r in range(len(segs)):
        assert segs.n_tiles[r] == tiles[(segs.seq[r], segs.kv_head[r], segs.q_block[r])]


@PROPERTY
@given(planned("flashdecoding"))
@example((plan("flashdecoding", DecodeWorkload.build(1, 8, 1, 128, 1000), H100, PlanConfig(splits=7)),
          PlanConfig(splits=7), H100))  # 8 tiles in 7 splits: nbps 2, splits 4..6 are empty
def test_flashdecoding_splits_follow_fa2_ranges(case):
    """Split s of an output with n tiles covers [s*nbps, min((s+1)*nbps, n)), nbps = ceil(n/splits)."""
    sched, config, gpu = case
    if config.splits:
        assert sched.splits == config.splits
    elif config.kv_tile_tokens is None:  # FA2's own block_n: its heuristic exactly
        assert sched.splits == fa2_heuristic_for(sched.workload, gpu, sched.kv_tile_tokens)
    splits = sched.splits
    tiles = expected_tiles(sched)
    outputs = list(tiles)  # seq-major, then kv_head, then q_block: the plan's output order
    assert sched.grid == len(outputs) * splits
    segs = sched.attention.segments
    seen = set()
    for r in range(len(segs)):
        out, s = divmod(int(segs.cta[r]), splits)
        key = (int(segs.seq[r]), int(segs.kv_head[r]), int(segs.q_block[r]))
        assert key == outputs[out]
        n = tiles[key]
        nbps = -(-n // splits)
        assert segs.first_tile[r] == s * nbps
        assert segs.n_tiles[r] == min((s + 1) * nbps, n) - s * nbps
        seen.add(int(segs.cta[r]))
    # CTAs without a segment are exactly the empty trailing splits.
    for cta in set(range(sched.grid)) - seen:
        out, s = divmod(cta, splits)
        n = tiles[outputs[out]]
        assert s * -(-n // splits) >= n
    if splits == 1:
        assert len(sched.launches) == 1 and len(sched.reductions) == 0
        assert (segs.role == ROLE_COMPLETE).all()
        return
    assert (segs.role == ROLE_PEER).all()
    assert [l.name for l in sched.launches] == ["attention", "combine"]
    pieces = combine_pieces(sched.workload, plan_outputs(sched.workload, sched.kv_tile_tokens))  # MLA columns; row blocks
    assert sched.launches[1].grid == len(outputs) * pieces
    red, rows = sched.reductions, segments_by_output(sched)
    assert len(red) == len(outputs) and (red.host_cta == -1).all()
    for i in range(len(red)):
        key = (int(red.seq[i]), int(red.kv_head[i]), int(red.q_block[i]))
        assert sorted(red.peers_of(i).tolist()) == sorted(int(segs.cta[r]) for r in rows[key])


@PROPERTY
@given(planned("streamk"))
def test_streamk_grid_and_even_shares(case):
    sched, config, gpu = case
    total = sum(expected_tiles(sched).values())
    capacity = resident_capacity(gpu, sched.attention.resources)
    assert sched.grid == min(config.grid or capacity, total)
    tiles = sched.attention.cta_tiles
    assert tiles.sum() == total
    assert tiles.max() - tiles.min() <= 1, "stream-K shares differ by at most one tile"


@PROPERTY
@given(planned("streamk"))
@example((plan("streamk", DecodeWorkload.build(1, 1, 1, 64, 2000), H100, PlanConfig(grid=7)),
          PlanConfig(grid=7), H100))  # one output over 7 CTAs: one host, six peers
def test_streamk_hosts_and_peers(case):
    assert_host_reductions(case[0])


@PROPERTY
@given(planned("streamk"))
def test_streamk_peers_publish_when_their_partial_is_streamed(case):
    """peer_done_bytes = KV bytes the peer CTA has streamed up to and including its partial."""
    assert_peers_publish_after_streaming(case[0])


def test_streamk_refuses_a_grid_larger_than_resident_capacity():
    workload = DecodeWorkload.build(4, 32, 8, 128, 65536)
    capacity = make_plan("streamk", workload, H100).capacity
    # The stream-K kernel's compiled resources (8 warps, 72 KB of shared memory): 2 CTAs/SM on 132 SMs.
    assert capacity == 264
    assert plan("streamk", workload, H100, PlanConfig(grid=capacity)).grid == capacity
    with pytest.raises(InputError) as err:
        plan("streamk", workload, H100, PlanConfig(grid=capacity + 1))
    assert err.value.field == "grid"


def test_schedule_tables_are_read_only():
    sched = plan("streamk", DecodeWorkload.build(2, 8, 2, 128, 3000), H100, PlanConfig(grid=50))
    with pytest.raises(ValueError):
        sched.attention.segments.n_tiles[0] = 99
    with pytest.raises(dataclasses.FrozenInstanceError):
        sched.splits = 3
