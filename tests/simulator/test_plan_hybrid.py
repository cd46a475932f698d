"""Data-parallel + stream-K (partition/hybrid.py), on random workloads and options:

- every (sequence, kv-head, q-block, KV tile) covered once; rows sorted by CTA;
- outputs i < dp run whole on CTA i % g, first on their CTA and in ascending order; dp is a
  multiple of g (default: all full waves but the last);
- the rest is stream-K: per-CTA stream-K tiles differ by at most one, hosts hold an output's first
  tile and wait only on lower program ids, peers publish after their DP bytes too;
- dp = 0 is stream-K's plan exactly, dp = every output has no reductions.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from attnsim.errors import InputError
from attnsim.simulator.hardware import PRESETS
from attnsim.simulator.occupancy import resident_capacity
from plan_helpers import plan
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.schedule import ROLE_COMPLETE, ROLE_HOST, ROLE_PEER, Reductions, SegmentTable
from attnsim.simulator.workload import DecodeWorkload

from sim_helpers import (
    assert_common_invariants, assert_host_reductions, assert_peers_publish_after_streaming, expected_tiles, planned,
)

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
H100 = PRESETS["h100-sxm"]


def output_index(sched) -> np.ndarray:
    """Each segment's output in common.outputs order (seq, kv_head, q_block). int64 [n_segments]."""
    segs, w = sched.attention.segments, sched.workload
    q_blocks = len({key[2] for key in expected_tiles(sched)})
    return (segs.seq * w.kv_heads + segs.kv_head) * q_blocks + segs.q_block


def dp_tiles_per_cta(sched) -> np.ndarray:
    segs, dp = sched.attention.segments, sched.notes["dp_outputs"]
    is_dp = output_index(sched) < dp
    return np.bincount(segs.cta[is_dp], weights=segs.n_tiles[is_dp], minlength=sched.grid)


@PROPERTY
@given(planned("hybrid"))
def test_every_kv_tile_is_covered_exactly_once(case):
    sched, _, _ = case
    event(f"dp {'> 0' if sched.notes['dp_outputs'] else '= 0'}, reductions {'> 0' if len(sched.reductions) else '= 0'}")
    assert_common_invariants(sched)
    assert sched.strategy == "hybrid" and sched.splits == 0 and len(sched.launches) == 1


@PROPERTY
@given(planned("hybrid"))
def test_dp_outputs_run_whole_first_on_cta_i_mod_grid(case):
    sched, config, gpu = case
    segs, grid, dp = sched.attention.segments, sched.grid, sched.notes["dp_outputs"]
    n_outputs = len(expected_tiles(sched))
    capacity = resident_capacity(gpu, sched.attention.resources)
    assert grid == min(config.grid or capacity, sched.notes["total_tiles"])
    wanted = max(0, n_outputs // grid - 1) * grid if config.dp_outputs is None else config.dp_outputs
    assert dp == min(wanted, n_outputs) // grid * grid
    out = output_index(sched)
    for cta in range(grid):
        mine = out[segs.cta == cta]
        dp_mine = np.arange(cta, dp, grid)  # ascending, before anything else
        assert (mine[:len(dp_mine)] == dp_mine).all() and (mine[len(dp_mine):] >= dp).all()
    is_dp = out < dp
    assert (segs.role[is_dp] == ROLE_COMPLETE).all() and (segs.first_tile[is_dp] == 0).all()
    assert np.bincount(out[is_dp], minlength=dp).max(initial=1) == 1  # one segment each


@PROPERTY
@given(planned("hybrid"))
def test_stream_k_part_is_shared_evenly(case):
    sched, _, _ = case
    sk = sched.attention.cta_tiles - dp_tiles_per_cta(sched)
    assert sk.sum() == sched.notes["sk_tiles"]
    assert sk.max() - sk.min() <= 1, "stream-K shares differ by at most one tile"


def ragged_case(grid: int, dp_outputs: int | None = None):
    """40 outputs of ragged lengths (5 sequences x 8 kv-heads) on a small grid: DP waves, then peers."""
    workload = DecodeWorkload.build(5, 32, 8, 128, [100, 2000, 37, 900, 4000])
    config = PlanConfig(kv_tile_tokens=32, grid=grid, dp_outputs=dp_outputs)
    return plan("hybrid", workload, H100, config), config, H100


@PROPERTY
@given(planned("hybrid"))
@example(ragged_case(7))  # dp 28: four DP waves, 12 outputs shared by 7 CTAs
@example(ragged_case(3, 30))  # dp 30, ten outputs shared by 3 CTAs
def test_hosts_wait_on_lower_ids_and_peers_publish_after_their_dp_work(case):
    sched, _, _ = case
    assert_host_reductions(sched)
    assert_peers_publish_after_streaming(sched)


def assert_same_tables(a, b) -> None:
    assert a.grid == b.grid and a.kv_tile_tokens == b.kv_tile_tokens
    for table, cls in ((a.attention.segments, SegmentTable), (a.reductions, Reductions)):
        other = b.attention.segments if cls is SegmentTable else b.reductions
        for f in dataclasses.fields(cls):
            assert np.array_equal(getattr(table, f.name), getattr(other, f.name)), f.name
    for name in ("cta_read_bytes", "cta_write_bytes", "cta_tiles", "cta_segments"):
        assert np.array_equal(getattr(a.attention, name), getattr(b.attention, name)), name


@PROPERTY
@given(planned("hybrid"))
def test_zero_dp_is_stream_k(case):
    sched, config, gpu = case
    config = dataclasses.replace(config, dp_outputs=0)
    assert_same_tables(plan("hybrid", sched.workload, gpu, config), plan("streamk", sched.workload, gpu, config))


@PROPERTY
@given(planned("hybrid"), st.data())
def test_all_dp_is_fa2_on_a_persistent_grid(case, data):
    sched, config, gpu = case
    n_outputs = len(expected_tiles(sched))
    capacity = resident_capacity(gpu, sched.attention.resources)
    grid = data.draw(st.sampled_from([k for k in range(1, min(n_outputs, capacity) + 1) if n_outputs % k == 0]))
    whole = plan("hybrid", sched.workload, gpu, dataclasses.replace(config, grid=grid, dp_outputs=n_outputs))
    segs = whole.attention.segments
    assert whole.grid == grid and whole.notes["dp_outputs"] == n_outputs and whole.notes["sk_tiles"] == 0
    assert len(whole.reductions) == 0 and len(segs) == n_outputs and (segs.role == ROLE_COMPLETE).all()
    assert (segs.cta == output_index(whole) % grid).all()


def test_hand_worked_two_ctas_one_dp_wave():
    """contexts 37, 300, 129 at 16-token tiles: 3, 19, 9 tiles per output, 2 kv-heads -> outputs
    [3, 3, 19, 19, 9, 9]. grid 2, dp 2: outputs 0, 1 whole on CTAs 0, 1; the other 56 tiles in two
    chunks of 28: program 1 runs chunk 0 (output 2 whole, output 3 tiles 0..8 as host), program 0
    runs chunk 1 (output 3 tiles 9..18 as peer, outputs 4 and 5 whole)."""
    workload = DecodeWorkload.build(3, 8, 2, 64, [37, 300, 129])
    sched = plan("hybrid", workload, H100, PlanConfig(kv_tile_tokens=16, grid=2, dp_outputs=3))
    segs, red = sched.attention.segments, sched.reductions
    assert sched.notes["dp_outputs"] == 2 and sched.notes["share"] == 28
    assert segs.cta.tolist() == [0, 0, 0, 0, 1, 1, 1]
    assert output_index(sched).tolist() == [0, 3, 4, 5, 1, 2, 3]
    assert segs.first_tile.tolist() == [0, 9, 0, 0, 0, 0, 0]
    assert segs.n_tiles.tolist() == [3, 10, 9, 9, 3, 19, 9]
    assert segs.role.tolist() == [ROLE_COMPLETE, ROLE_PEER, ROLE_COMPLETE, ROLE_COMPLETE,
                                  ROLE_COMPLETE, ROLE_COMPLETE, ROLE_HOST]
    assert red.host_cta.tolist() == [1] and red.peer_cta.tolist() == [0]
    token_bytes = 2 * 64 * 2  # K + V, fp16, d 64
    assert red.peer_done_bytes.tolist() == [(37 + (300 - 9 * 16)) * token_bytes]  # DP output, then the peer
    assert sched.attention.cta_tiles.tolist() == [31, 31]


def test_default_dp_leaves_between_one_and_two_waves_to_stream_k():
    workload = DecodeWorkload.build(7, 8, 2, 64, 1000)  # 14 outputs
    sched = plan("hybrid", workload, H100, PlanConfig(kv_tile_tokens=64, grid=4))
    assert sched.notes["dp_outputs"] == 8  # 14 // 4 = 3 waves: 2 run DP, 6 outputs are shared
    assert plan("hybrid", workload, H100, PlanConfig(kv_tile_tokens=64, grid=8)).notes["dp_outputs"] == 0


def test_negative_dp_outputs_is_refused():
    with pytest.raises(InputError) as err:
        plan("hybrid", DecodeWorkload.build(2, 8, 2, 64, 100), H100, PlanConfig(dp_outputs=-1))
    assert err.value.field == "dp_outputs"
