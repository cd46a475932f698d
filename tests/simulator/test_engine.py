"""The event engine against fluid-model times worked out by hand.

With a very sharp knee (p = 1000), n streaming CTAs share min(n * b, B): each streams at
min(b, B / n). With zero fixed costs and no dirty L2, a phase in which n CTAs stream x bytes each
lasts x / min(b, B / n). Bytes per CTA (fp16, one query row per kv-head, MHA):
  KV  = 2 (K and V) x tokens x head_dim x 2 B
  q   = rows x head_dim x 2 B read per segment; O = rows x head_dim x 2 B written
  partial = rows x (head_dim + 1) x 4 B (fp32 O + LSE), written by a peer / read by its merger
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnsim.plans.resources import COMBINE_WARPS
from attnsim.simulator.cost import BandwidthModel
from attnsim.simulator.engine import simulate
from attnsim.simulator.hardware import CostParams
from plan_helpers import plan
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.schedule import frozen_array
from attnsim.simulator.workload import DecodeWorkload

from sim_helpers import spec_with_cost

HARD_MIN = dict(launch_overhead_us=0.0, cta_fixed_us=0.0, segment_fixed_us=0.0, tile_fixed_us=0.0,
                fixup_fixed_us=0.0, fixup_per_peer_us=0.0, bw_knee=1000.0, l2_dirty_fraction=0.0)
B = 3350.0e3  # h100-sxm hbm_read_gbps in bytes/us
KV_1K_D128 = 2 * 1024 * 128 * 2  # 524288: one kv-head's K+V for 1024 tokens, d 128
Q = O = 128 * 2  # 256: one query row / output row, d 128
PARTIAL = (128 + 1) * 4  # 516


def _gpu(gbps_per_warp: float, **overrides):
    return spec_with_cost(CostParams(cta_stream_gbps_per_warp=gbps_per_warp, **{**HARD_MIN, **overrides}))


@pytest.mark.parametrize("knee", [2.5, 12.0, 100.0, 1000.0, 1e4])
def test_bandwidth_knee_is_a_smooth_min_that_never_overflows(knee):
    bw = BandwidthModel(cta_rate=16e3, hbm_rate=B, knee=knee)
    n = np.array([1, 10, 100, 209, 210, 396, 1000, 10_000, 100_000, 1_000_000])
    agg = bw.aggregate(n)
    assert np.isfinite(agg).all()
    assert (agg <= B * (1 + 1e-12)).all() and (agg <= n * 16e3 * (1 + 1e-12)).all()
    assert (np.diff(agg) >= 0).all(), "more streaming CTAs never stream less in total"
    assert (bw.per_cta(n) <= 16e3 * (1 + 1e-12)).all()
    if knee >= 1000:  # p -> inf is the hard min (within 2^(1/p) - 1 < 0.07% at the knee)
        np.testing.assert_allclose(agg, np.minimum(n * 16e3, B), rtol=1e-3)


@settings(max_examples=200, deadline=None)
@given(b=st.floats(1e3, 1e5), n=st.integers(1, 10**6), knee=st.floats(1.0, 1e4))
def test_bandwidth_model_stays_within_both_limits(b, n, knee):
    agg = float(BandwidthModel(b, B, knee).aggregate(n))
    assert 0 < agg <= min(n * b, B) * (1 + 1e-9)


@settings(max_examples=300, deadline=None)
@given(b=st.floats(1e2, 1e6), hbm=st.floats(1e5, 1e7), n=st.integers(0, 10**5), knee=st.floats(1.0, 1e4),
       math=st.one_of(st.just(np.inf), st.floats(1e2, 1e6)))
def test_per_cta_at_is_per_cta_bit_for_bit(b, hbm, n, knee, math):
    # the event loop's scalar path (per_cta_at) must not move a prediction by one ulp (engine golden)
    bw = BandwidthModel(b, hbm, knee, math, 132)
    assert bw.per_cta_at(n) == float(bw.per_cta(n))


def test_single_wave_below_saturation_streams_at_the_cta_rate():
    # fa2, 4 kv-heads x 1024 tokens: 4 CTAs of KV 524288 + q 256 + O 256 = 524800 B.
    # b = 4 warps x 25 GB/s = 1e5 B/us; 4 b = 4e5 < B -> 524800 / 1e5 = 5.248 us.
    workload = DecodeWorkload.build(1, 4, 4, 128, 1024)
    res = simulate(plan("fa2", workload, _gpu(25.0)), _gpu(25.0))
    assert res.schedule.grid == 4
    assert res.total_us == pytest.approx((KV_1K_D128 + Q + O) / 1e5, rel=1e-9)
    # Launch overhead once per launch, the per-CTA fixed time after streaming: 5.248 + 3 + 2.
    gpu = _gpu(25.0, launch_overhead_us=3.0, cta_fixed_us=2.0)
    assert simulate(plan("fa2", workload, gpu), gpu).total_us == pytest.approx(5.248 + 3.0 + 2.0, rel=1e-9)


def test_single_wave_phases_when_ctas_finish():
    # 250 CTAs (ragged fa2, 1 kv-head): 249 of 1024 tokens, one of 8192; b = 16e3 B/us.
    # Phase 1: 250 b = 4e6 > B, all stream at B / 250 until the short ones finish their
    #   524800 B: t1 = 250 x 524800 / 3.35e6 = 39.1642 us.
    # Phase 2: the long CTA alone at b: (2 x 8192 x 256 + 512 - 524800) / 16e3 = 229.376 us.
    gpu = _gpu(4.0)
    workload = DecodeWorkload.build(250, 1, 1, 128, [1024] * 249 + [8192])
    res = simulate(plan("fa2", workload, gpu), gpu)
    t1 = 250 * (KV_1K_D128 + Q + O) / B
    t2 = (2 * 8192 * 256 + Q + O - (KV_1K_D128 + Q + O)) / 16e3
    assert res.launches[0].cta_stream_end_us[0] == pytest.approx(t1, rel=1e-6)
    assert res.total_us == pytest.approx(t1 + t2, rel=1e-6)


@pytest.mark.parametrize("fixed_us, overhead_us", [(0.0, 0.0), (1.5, 4.0)])
def test_multi_wave_dispatches_the_rest_when_slots_free(fixed_us, overhead_us):
    # fa2, batch 50 x 8 kv-heads = 400 CTAs; the default CTA (128 threads, 128 regs, 64 KB smem)
    # fits 3 per SM -> 396 slots. b = 4 warps x 4 GB/s = 16e3 B/us.
    # Wave 1: 396 CTAs, 396 b = 6.34e6 > B -> each at B / 396: t1 = 396 x 524800 / 3.35e6 = 62.0379.
    # They hold their slots `fixed` more; then wave 2: 4 CTAs, 4 b < B -> 524800 / 16e3 = 32.8.
    # every SM alike: no fast SMs start the tail early (engine._tail_rate, tests/simulator/test_wave_drift.py)
    gpu = dataclasses.replace(_gpu(4.0, cta_fixed_us=fixed_us, launch_overhead_us=overhead_us), fast_sms=0)
    workload = DecodeWorkload.build(50, 8, 8, 128, 1024)
    res = simulate(plan("fa2", workload, gpu), gpu)
    tl = res.launches[0]
    assert tl.slots == 396
    work = KV_1K_D128 + Q + O
    t1 = 396 * work / B
    expected = overhead_us + t1 + fixed_us + work / 16e3 + fixed_us
    assert res.total_us == pytest.approx(expected, rel=1e-6)
    assert tl.cta_start_us[396:] == pytest.approx(np.full(4, overhead_us + t1 + fixed_us), rel=1e-6)
    assert len(set(tl.cta_slot[:396].tolist())) == 396, "the first wave uses every slot once"


def test_flashdecoding_adds_a_combine_launch():
    # 4 kv-heads x 1024 tokens in 2 splits -> 8 CTAs of 8 tiles: KV 262144 + q 256, partial 516
    # written: 262916 B at b = 1e5 (8 b < B): 2.62916 us. Combine: 4 CTAs (COMBINE_WARPS = 8 warps:
    # b = 2e5), read 2 partials (1032 B) + write O (256 B) = 1288 B: 0.00644 us. Two launch overheads of 3.
    gpu = _gpu(25.0, launch_overhead_us=3.0)
    workload = DecodeWorkload.build(1, 4, 4, 128, 1024)
    sched = plan("flashdecoding", workload, gpu, PlanConfig(splits=2, num_warps=4))  # the default 64-token tiles
    assert sched.launches[1].resources.threads == 32 * COMBINE_WARPS
    res = simulate(sched, gpu)
    assert [tl.name for tl in res.launches] == ["attention", "combine"]
    attention = (KV_1K_D128 // 2 + Q + PARTIAL) / 1e5
    combine = (2 * PARTIAL + O) / (25e3 * COMBINE_WARPS)
    assert res.launches[0].end_us == pytest.approx(3.0 + attention, rel=1e-9)
    assert res.total_us == pytest.approx(3.0 + attention + 3.0 + combine, rel=1e-9)


def _two_cta_streamk(gpu):
    # One output (1 kv-head, 1024 tokens = 16 tiles) on grid 2: chunk 0 (program 1) holds tiles
    # 0-7 and hosts; chunk 1 (program 0) holds tiles 8-15 and is its peer. At 4 warps with the default
    # tiles a CTA streams like the kernel's default 8 (its bytes in flight: Launch.stream_warps), so a
    # per-warp rate of 12.5 GB/s gives b = 1e5 B/us.
    return plan("streamk", DecodeWorkload.build(1, 1, 1, 128, 1024), gpu, PlanConfig(grid=2, num_warps=4))


def test_streamk_host_pays_its_fixup_after_streaming():
    # Host: KV 262144 + q 256 + the peer's partial 516 read + O 256 = 263172 B -> 2.63172 us.
    # Peer: KV 262144 + q 256 + partial 516 written = 262916 B -> 2.62916 us (publishes earlier).
    # Fixed: 1 per CTA + 0.5 per segment; the host adds 2 + 0.25 per peer.
    gpu = _gpu(12.5, cta_fixed_us=1.0, segment_fixed_us=0.5, fixup_fixed_us=2.0, fixup_per_peer_us=0.25)
    sched = _two_cta_streamk(gpu)
    assert sched.reductions.host_cta.tolist() == [1] and sched.reductions.peer_cta.tolist() == [0]
    tl = simulate(sched, gpu).launches[0]
    host = (KV_1K_D128 // 2 + Q + PARTIAL + O) / 1e5
    peer = (KV_1K_D128 // 2 + Q + PARTIAL) / 1e5
    assert tl.cta_end_us[1] == pytest.approx(host + 1.0 + 0.5 + 2.0 + 0.25, rel=1e-9)
    assert tl.cta_end_us[0] == pytest.approx(peer + 1.0 + 0.5, rel=1e-9)


def test_streamk_host_waits_for_a_late_peer():
    # The same plan, but the peer streams 10x the bytes before it publishes: the host's merge
    # starts only when the peer's partial exists (fluid model: 1e6 B + 263172 B both at b until the
    # host finishes at 2.63172 us, then the peer alone at b: it publishes at 10.0 us).
    gpu = _gpu(12.5, fixup_fixed_us=2.0)
    sched = _two_cta_streamk(gpu)
    attn = sched.attention
    read = attn.cta_read_bytes.copy()
    read[0] = 1e6 - attn.cta_write_bytes[0]  # the peer's work: 1e6 B in all
    late = dataclasses.replace(attn, cta_read_bytes=frozen_array(read, np.float64))
    reductions = dataclasses.replace(sched.reductions, peer_done_bytes=frozen_array([1e6], np.float64))
    tl = simulate(dataclasses.replace(sched, launches=(late,), reductions=reductions), gpu).launches[0]
    assert tl.cta_stream_end_us[1] == pytest.approx((KV_1K_D128 // 2 + Q + PARTIAL + O) / 1e5, rel=1e-9)
    assert tl.cta_end_us[1] == pytest.approx(1e6 / 1e5 + 2.0, rel=1e-9)


def test_dirty_l2_write_back_does_not_slow_latency_bound_ctas():
    # 4 CTAs at b = 1e5 B/us use 4e5 of B = 3.35e6: the evicted dirty lines' write-back fits in the
    # idle bandwidth, so the time is 524800 / 1e5 whatever the dirty fraction.
    workload = DecodeWorkload.build(1, 4, 4, 128, 1024)
    for fraction in (0.0, 1.0, 1.5):
        gpu = _gpu(25.0, l2_dirty_fraction=fraction)
        assert simulate(plan("fa2", workload, gpu), gpu).total_us == pytest.approx(5.248, rel=1e-9)


@pytest.mark.parametrize("dirty_fraction", [0.0, 0.25, 1.0])
def test_dirty_l2_write_back_shares_the_hbm_when_bandwidth_bound(dirty_fraction):
    # fa2, batch 99 x 4 kv-heads = 396 CTAs = every slot, b = 16e3: 396 b > B, bandwidth-bound.
    # KV read = 396 x 524288 = 207.6 MB > dirty L2 (fraction x 50 MB), so the write-back is the
    # whole dirty fraction; HBM moves it besides the 396 x 524800 B streamed:
    # time = (396 x 524800 + fraction x 52428800) / 3.35e6.
    gpu = _gpu(4.0, l2_dirty_fraction=dirty_fraction)
    res = simulate(plan("fa2", DecodeWorkload.build(99, 4, 4, 128, 1024), gpu), gpu)
    assert res.schedule.grid == res.launches[0].slots == 396
    expected = (396 * (KV_1K_D128 + Q + O) + dirty_fraction * gpu.l2_bytes) / B
    assert res.total_us == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("dirty_fraction", [0.25, 1.0])
def test_a_read_smaller_than_the_l2_writes_back_the_dirty_share_of_what_it_evicts(dirty_fraction):
    # fa2, batch 24 x 4 kv-heads = 96 CTAs of 1k d128 tokens: KV 96 x 524288 = 50.3 MB < the H100's 52.4 MB
    # L2, 96 x b = 9.6e6 B/us > B: bandwidth-bound. Its reads evict 50.3 MB of lines, the dirty share of
    # them is written back: time = (96 x 524800 + fraction x 96 x 524288) / 3.35e6.
    gpu = _gpu(25.0, l2_dirty_fraction=dirty_fraction)
    res = simulate(plan("fa2", DecodeWorkload.build(24, 4, 4, 128, 1024), gpu), gpu)
    assert res.schedule.grid == 96 and 96 * KV_1K_D128 < gpu.l2_bytes
    expected = (96 * (KV_1K_D128 + Q + O) + dirty_fraction * 96 * KV_1K_D128) / B
    assert res.total_us == pytest.approx(expected, rel=1e-6)
