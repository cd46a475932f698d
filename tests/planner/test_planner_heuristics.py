"""The production rules the planner reports against, checked on hand-worked cases."""

from __future__ import annotations

import pytest

from attnsim import strategies
from attnsim.planner import heuristics
from attnsim.planner.candidates import context_for
from attnsim.planner.search import search
from attnsim.simulator.partition.common import PlanConfig
from attnsim.profiles import resolve_gpu
from attnsim.simulator.workload import DecodeWorkload

H200 = resolve_gpu("h200")  # 132 SMs; flash_decoding 3 CTAs/SM (capacity 396), lean_decode 2 (264)


def ctx(rule_name: str, workload: DecodeWorkload):
    rule = next(h for h in strategies.HEURISTICS if h.rule == rule_name)
    return context_for(rule.strategy, workload, H200, PlanConfig())


def test_every_registered_rule_exists_and_plans_an_entry_we_run():
    for h in strategies.HEURISTICS:
        assert h.rule in heuristics.RULES and strategies.get(h.strategy).candidate


def test_lean_grid_is_two_waves_of_sms_capped_at_capacity():
    assert heuristics.lean_grid(ctx("lean_grid", DecodeWorkload.build(1, 32, 8, 128, 4096))) == {"grid": 264}


def test_flashinfer_splits_only_below_the_resident_grid():
    big = ctx("flashinfer_chunk", DecodeWorkload.build(64, 64, 8, 128, 8192))  # 512 outputs >= 396
    assert heuristics.flashinfer_chunk(big) == {"chunk_tokens": 8192}
    small = ctx("flashinfer_chunk", DecodeWorkload.build(1, 32, 8, 128, 4096))  # 8 outputs of 64 tiles
    assert heuristics.flashinfer_chunk(small) == {"chunk_tokens": 128}  # 8 x 32 chunks <= 396 < 8 x 64


def test_sglang_caps_splits_at_eight():
    """b1, 8 kv-heads x group 4: token grid 1 x ceil(32 / 4) = 8 programs; SMs x log2(64k / 64) = 1320
    cores -> 165 splits, capped at 8: chunk = 64k / 8."""
    c = ctx("sglang_chunk", DecodeWorkload.build(1, 32, 8, 128, 65536))
    assert heuristics.sglang_chunk(c) == {"chunk_tokens": 8192}


def test_sglang_cap_is_its_knob():
    c = ctx("sglang_chunk", DecodeWorkload.build(1, 32, 8, 128, 65536))
    assert heuristics.sglang_chunk(c, 16) == {"chunk_tokens": 4096}  # 165 core splits, capped at 16
    assert heuristics.sglang_chunk(c, 1) == {"chunk_tokens": 65536}


def test_fa3_static_then_per_sequence_splits():
    """b1, 8 kv-heads, 4k = 64 tiles of 64: static = smallest s with 8s/132 waves >= 0.85 efficiency = 15;
    dynamic: bps = ceil(1.1 x 512 / 132) = 5 -> ceil(64 / 5) = 13 splits -> ceil(64 / 13) = 5 tiles."""
    c = ctx("fa3_chunk", DecodeWorkload.build(1, 32, 8, 128, 4096))
    assert heuristics.fa3_static_splits(c) == 15
    assert heuristics.fa3_chunk(c) == {"chunk_tokens": 5 * 64}
    assert heuristics.fa3_chunk(c, 4) == {"chunk_tokens": 16 * 64}  # num_splits caps the dynamic count
    assert heuristics.fa3_chunk(c, 64) == heuristics.fa3_chunk(c)  # a cap above it changes nothing


@pytest.mark.parametrize("workload,chunk", [
    (DecodeWorkload.build(1, 32, 8, 128, 256), 256),  # 4 n-blocks: never split
    (DecodeWorkload.build(16, 32, 8, 128, 4096), 4096),  # 128 outputs >= 0.8 x 132 SMs: one split
])
def test_fa3_does_not_split(workload, chunk):
    assert heuristics.fa3_chunk(ctx("fa3_chunk", workload)) == {"chunk_tokens": chunk}


def test_fa3_per_sequence_splits_only_up_to_992_sequences():
    """num_splits=4 is a cap on the dynamic splits of <= 992 sequences, the split count above."""
    few, many = (ctx("fa3_chunk", DecodeWorkload.build(b, 8, 1, 128, 4096)) for b in (992, 993))
    assert heuristics.fa3_chunk(few, 4) == {"chunk_tokens": 4096}  # bps = ceil(1.1 x 992 x 64 / 132) = 530 blocks
    assert heuristics.fa3_chunk(many, 4) == {"chunk_tokens": 1024}


@pytest.mark.parametrize("outputs,iters,expect_dp,sk", [
    (264, 64, 264, 0),  # whole waves: data-parallel
    (8, 64, 0, None),  # under one wave: stream-K over the partial wave
    (300, 1, 300, 0),  # one iteration per tile: nothing to balance
])
def test_cutlass_split(outputs, iters, expect_dp, sk):
    dp, blocks = heuristics.cutlass_split(outputs, iters, 132, 2)
    assert dp == expect_dp
    if sk is not None:
        assert blocks == sk
    else:
        assert 9 <= blocks <= 264


def test_heuristics_are_reported_with_their_regret():
    result = search(DecodeWorkload.build(2, 32, 8, 128, 30000), H200)
    assert [h.name for h in result.heuristics] == [h.name for h in strategies.HEURISTICS]
    assert all(h.plan.time_us >= result.fastest.time_us for h in result.heuristics)  # their plans are candidates
    assert {b.name for b in result.baselines} == set(strategies.names(lambda s: s.baseline and s.predictable))
