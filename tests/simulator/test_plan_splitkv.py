"""The single-launch split-KV plan (partition/splitkv.py) and how the engine bills its merge.

Plan, on random workloads (uniform and ragged, MHA/GQA/MQA, odd contexts) and split counts:
- every KV tile covered exactly once; FA2's split ranges; CTAs numbered split-major
  (output + split x outputs), so rows 0 .. outputs - 1 are every output's split 0;
- one LAST_ARRIVAL reduction per output when S > 1, whose peers are all S CTAs in split order
  (empty splits too: they arrive), each published after its own split's bytes;
- the default S: the largest power of two <= 64 whose CTAs stay within CTAS_PER_SM per SM and one
  resident wave, at most the longest sequence's tiles.
Engine: the merge (fixup_fixed_us + fixup_per_peer_us x S) lands on the split that finishes last,
and only there; with more CTAs than slots it holds that slot, delaying the CTA that takes it next.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plan_helpers import plan
from attnsim.simulator.engine import simulate
from attnsim.simulator.hardware import PRESETS, CostParams
from attnsim.simulator.occupancy import resident_capacity
from attnsim.simulator.partition.common import PlanConfig, outputs
from attnsim.simulator.partition.splitkv import CTAS_PER_SM
from attnsim.simulator.schedule import LAST_ARRIVAL, ROLE_COMPLETE, ROLE_PEER
from attnsim.simulator.workload import DecodeWorkload

from sim_helpers import assert_common_invariants, expected_tiles, gpu_specs, workloads

NAME = "splitkv"
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
H100 = PRESETS["h100-sxm"]


@st.composite
def split_plans(draw):
    workload, gpu = draw(workloads()), draw(gpu_specs())
    config = PlanConfig(kv_tile_tokens=draw(st.sampled_from([None, 16, 32, 64])),
                        splits=draw(st.one_of(st.none(), st.integers(1, 40))))
    return plan(NAME, workload, gpu, config), config, gpu


@PROPERTY
@given(split_plans())
def test_split_major_ctas_cover_every_tile_once_with_fa2_ranges(case):
    sched, config, _ = case
    assert_common_invariants(sched)
    if config.splits:
        assert sched.splits == config.splits
    splits, tiles = sched.splits, expected_tiles(sched)
    keys = list(tiles)  # seq-major outputs: the plan's output order
    n_out = len(keys)
    assert sched.grid == n_out * splits and len(sched.launches) == 1
    segs = sched.attention.segments
    assert (segs.cta[:n_out] == np.arange(n_out)).all() and (segs.first_tile[:n_out] == 0).all()
    for r in range(len(segs)):
        split, out = divmod(int(segs.cta[r]), n_out)
        assert (int(segs.seq[r]), int(segs.kv_head[r]), int(segs.q_block[r])) == keys[out]
        n = tiles[keys[out]]
        per = -(-n // splits)
        assert (segs.first_tile[r], segs.n_tiles[r]) == (split * per, min(per, n - split * per))
    assert (segs.role == (ROLE_PEER if splits > 1 else ROLE_COMPLETE)).all()


@PROPERTY
@given(split_plans())
def test_each_split_output_is_merged_by_its_last_arrival_among_all_its_splits(case):
    sched = case[0]
    red, segs, splits = sched.reductions, sched.attention.segments, sched.splits
    if splits == 1:
        assert len(red) == 0
        return
    n_out = sched.grid // splits
    assert len(red) == n_out and (red.host_cta == LAST_ARRIVAL).all()
    kv_bytes = dict(zip(segs.cta.tolist(), segs.kv_bytes.tolist()))
    for o in range(n_out):
        assert (red.seq[o], red.kv_head[o], red.q_block[o]) == (segs.seq[o], segs.kv_head[o], segs.q_block[o])
        peers = red.peers_of(o).tolist()
        assert peers == [o + s * n_out for s in range(splits)]
        done = red.peer_done_bytes[red.peer_offsets[o]:red.peer_offsets[o + 1]]
        assert done.tolist() == [kv_bytes.get(p, 0.0) for p in peers]


@PROPERTY
@given(workload=workloads(max_batch=64, max_context=40000), gpu=gpu_specs())
def test_default_splits_are_the_largest_power_of_two_within_the_target_ctas(workload, gpu):
    sched = plan(NAME, workload, gpu, PlanConfig())
    s, n_out = sched.splits, sched.grid // sched.splits
    target = min(resident_capacity(gpu, sched.attention.resources), CTAS_PER_SM * gpu.sm_count)
    cap = min(64, -(-workload.max_context // sched.kv_tile_tokens))
    assert s & (s - 1) == 0 and 1 <= s <= max(1, cap)
    assert s == 1 or n_out * s <= target
    assert 2 * s > cap or n_out * 2 * s > target  # twice as many would pass a cap or the target


def _flat_cost(**fields) -> CostParams:
    """Streaming at a fixed rate, no knee effects worth mentioning; fixed costs as given."""
    return CostParams(cta_stream_gbps_per_warp=10.0, launch_overhead_us=3.0, cta_fixed_us=0.5, segment_fixed_us=0.0,
                      bw_knee=50.0, l2_dirty_fraction=0.0, **fields)


def _with(gpu, params):
    return dataclasses.replace(gpu, cost={"default": params, NAME: params})


@pytest.mark.parametrize("splits", [2, 8, 16])
def test_uniform_single_wave_pays_the_merge_once_on_top(splits):
    workload = DecodeWorkload.build(1, 32, 8, 128, 16384)
    sched = plan(NAME, workload, H100, PlanConfig(splits=splits))
    without = simulate(sched, _with(H100, _flat_cost(fixup_fixed_us=0.0, fixup_per_peer_us=0.0)))
    merged = simulate(sched, _with(H100, _flat_cost(fixup_fixed_us=0.7, fixup_per_peer_us=0.05)))
    # group 4: one row step of the merge, its splits 8 at a time (d 128) + the prologue's round
    assert merged.total_us - without.total_us == pytest.approx(0.7 + 0.05 * (-(-splits // 8) + 1), rel=1e-9)


def test_the_merge_lands_on_the_split_that_ends_last_and_only_there():
    """Seq 1 is 3x longer: its splits end last; every output's merge goes to the CTA that ended last."""
    workload = DecodeWorkload.build(2, 8, 2, 128, [4000, 12000])
    sched = plan(NAME, workload, H100, PlanConfig(splits=4))
    base = simulate(sched, _with(H100, _flat_cost(fixup_fixed_us=0.0, fixup_per_peer_us=0.0))).launches[0]
    merged = simulate(sched, _with(H100, _flat_cost(fixup_fixed_us=2.0, fixup_per_peer_us=0.0))).launches[0]
    extra = merged.cta_end_us - base.cta_end_us
    red = sched.reductions
    expected = np.zeros(sched.grid)
    for o in range(len(red)):
        peers = red.peers_of(o)
        last = peers[np.lexsort((peers, base.cta_end_us[peers]))[-1]]  # latest end, ties: highest id
        expected[last] = 2.0
    assert extra == pytest.approx(expected, abs=1e-9)
    assert (np.flatnonzero(expected) >= 2 * workload.kv_heads).all()  # the last arrivals are of seq 1's splits


def test_a_merging_cta_holds_its_slot_when_ctas_queue_for_slots():
    """More CTAs than slots: the CTA dispatched onto a last arrival's slot starts after its merge."""
    workload = DecodeWorkload.build(64, 32, 32, 128, 2048)
    gpu = dataclasses.replace(H100, sm_count=4)
    sched = plan(NAME, workload, gpu, PlanConfig(splits=2))
    n_out = outputs(workload, sched.kv_tile_tokens).count
    assert sched.grid > resident_capacity(gpu, sched.attention.resources)
    base = simulate(sched, _with(gpu, _flat_cost(fixup_fixed_us=0.0, fixup_per_peer_us=0.0)))
    merged = simulate(sched, _with(gpu, _flat_cost(fixup_fixed_us=5.0, fixup_per_peer_us=0.0)))
    tl = merged.launches[0]
    mergers = np.flatnonzero(tl.cta_end_us - tl.cta_stream_end_us > 1.0)  # 0.5 us fixed + 5 us merge
    assert len(mergers) == n_out
    followed = 0
    for m in mergers:
        later = [c for c in range(sched.grid) if tl.cta_slot[c] == tl.cta_slot[m] and tl.cta_start_us[c] > tl.cta_start_us[m]]
        if later:
            followed += 1
            assert tl.cta_start_us[later].min() >= tl.cta_end_us[m] - 1e-9
    assert followed > 0
    assert merged.total_us > base.total_us + 5.0


@PROPERTY
@given(workloads(), st.sampled_from([1, 2, 4, 8]), st.one_of(st.none(), st.integers(1, 6)))
def test_fixed_chunks_cut_each_sequence_as_balanced_does(workload, chunk_tiles, max_splits):
    """splitkv:chunk_tokens=C[,max_splits=M]: balanced's chunks in balanced's LPT CTA order (per_o =
    max(C, ceil(n / M)) tiles a chunk), one CTA each and none empty, in one launch: an output of one
    chunk is complete, the chunks of a longer one are merged by their last arrival, peers in KV order."""
    config = PlanConfig(kv_tile_tokens=16, chunk_tokens=16 * chunk_tiles, max_splits=max_splits)
    sched = plan(NAME, workload, H100, config)
    twin = plan("balanced", workload, H100, config)
    segs, ref, outs = sched.attention.segments, twin.attention.segments, outputs(workload, 16)
    for column in ("cta", "seq", "kv_head", "q_block", "first_tile", "n_tiles", "role"):
        assert getattr(segs, column).tolist() == getattr(ref, column).tolist(), column
    assert len(sched.launches) == 1 and sched.grid == len(segs) and (segs.n_tiles > 0).all()
    per = np.maximum(chunk_tiles, -(-outs.tiles // max_splits) if max_splits else np.zeros_like(outs.tiles))
    pieces = -(-outs.tiles // per)  # chunks of each output
    red = sched.reductions
    assert len(red) == int((pieces > 1).sum()) and (red.host_cta == LAST_ARRIVAL).all()
    for r in range(len(red)):
        peers = red.peers_of(r)
        assert (np.diff(peers) == 1).all() and (segs.first_tile[peers] == np.arange(len(peers)) * segs.n_tiles[peers[0]]).all()
    assert sched.options == {"chunk_tokens": 16 * chunk_tiles, **({"max_splits": max_splits} if max_splits else {})}


@pytest.mark.parametrize("config, field", [
    (PlanConfig(kv_tile_tokens=16, chunk_tokens=64, splits=4), "splits"),
    (PlanConfig(kv_tile_tokens=16, max_splits=4), "max_splits"),
    (PlanConfig(kv_tile_tokens=16, chunk_tokens=40), "chunk_tokens"),
])
def test_chunk_options_that_contradict_are_refused_naming_the_field(config, field):
    from attnsim.errors import InputError
    with pytest.raises(InputError) as err:
        plan(NAME, DecodeWorkload.build(2, 8, 2, 64, [300, 90]), H100, config)
    assert err.value.field == field
