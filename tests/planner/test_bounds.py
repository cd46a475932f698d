"""The planner's bounds (bounds.LaunchLimits): never above the model's prediction, for any entry's candidate (so
pruning cannot drop a plan that could win), a plan without bounds never pruned, and, for stream-K's persistent
grids past one CTA per SM, as slow as the most crowded SMs' stream under the engine's per-SM sharing
(crowded_us), which is what prunes the grids above the SMs."""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from attnsim.planner import bounds, candidates as cand
from attnsim.planner.search import Evaluator
from attnsim.predict import predict_one
from attnsim.profiles import resolve_gpu
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.workload import DecodeWorkload

H200 = resolve_gpu("h200")


def _limits_and_candidates(workload: DecodeWorkload):
    ctx = Evaluator(workload, H200, PlanConfig()).context("streamk")
    found = cand.candidates_for(ctx, {})
    return bounds.limits_for(ctx, "streamk"), found


@settings(max_examples=15, deadline=None)
@given(batch=st.integers(1, 40), kv_heads=st.sampled_from([1, 2, 8]), group=st.sampled_from([1, 4, 8]),
       contexts=st.lists(st.integers(300, 140_000), min_size=1, max_size=6))
def test_streamk_bounds_never_exceed_the_prediction(batch, kv_heads, group, contexts):
    workload = DecodeWorkload.build(batch, kv_heads * group, kv_heads, 128, (contexts * batch)[:batch])
    limits, found = _limits_and_candidates(workload)
    for c in found:
        assert limits.lower_bound_us(c) <= predict_one(c.spec, workload, H200).total_us * (1 + 1e-9), c.spec


def test_grids_past_the_sms_are_bounded_by_their_crowded_sms():
    # 35 sequences of ~130k tokens, 8/1 heads, d 128: at grid 148 SMs 0-15 stream two ~5 MB CTAs each under
    # the per-SM limit (42.8 GB/s) while 116 SMs stream one, then alone: ~750 us; one CTA alone at 31 GB/s
    # would take only ~160 us, and the SM's limit alone (min(2 b, R), no sharing of the chip) ~720
    workload = DecodeWorkload.build(35, 8, 1, 128, [129_879 - 97 * i for i in range(35)])
    limits, found = _limits_and_candidates(workload)
    past = [c for c in found if dict(c.options)["grid"] > H200.sm_count]
    assert len(past) >= 5
    for c in past:
        crowded = -(-c.max_ctas // H200.sm_count)
        assert c.wave_cta_bytes >= 0.95 * c.cta_bytes
        predicted = predict_one(c.spec, workload, H200).total_us
        assert 0.97 * predicted <= limits.lower_bound_us(c) <= predicted, c.spec
        assert limits.crowded_us(c.max_ctas, c.wave_cta_bytes) > crowded * c.wave_cta_bytes / min(
            crowded * limits.cta_rate, limits.sm_stream_rate)


def test_a_launch_whose_outputs_are_all_split_is_bounded_past_their_merge():
    # 7 x 6,677 tokens, 8/1 heads, d 128: every stream-K grid of 132-264 splits each output over 17-38 CTAs, so
    # whichever CTA streams the last K+V leaves a host's merge (~4 of ~24 us) after it: the bound counts it
    workload = DecodeWorkload.build(7, 8, 1, 128, 6677)
    limits, found = _limits_and_candidates(workload)
    assert len(found) >= 8
    for c in found:
        predicted = predict_one(c.spec, workload, H200).total_us
        assert c.tail_peers >= 16
        assert 0.8 * predicted <= limits.lower_bound_us(c) <= predicted, c.spec
        assert limits.lower_bound_us(dataclasses.replace(c, tail_peers=0)) < 0.8 * predicted
    # sibling q-blocks (q_len 8 x group 16: two 64-row blocks) read K+V from L2 and may end the stream sooner than
    # agg(n) says: no tail merge is counted there (it bounded split-KV at 56-64 splits up to 1.9% above its prediction)
    verify = DecodeWorkload.build(1, 32, 2, 64, 189_647, q_len=8)
    h100 = resolve_gpu("h100")
    ev = Evaluator(verify, h100, PlanConfig())
    found = cand.candidates_for(ev.context("splitkv"), {})
    limits = ev.limits_of(found[-1])
    assert any(c.tail_peers for c in found)
    for c in found:
        assert limits.lower_bound_us(c) <= predict_one(c.spec, verify, h100).total_us, c.spec
    # an output of one piece (a 1-tile sequence) leaves no merge to count
    ragged = DecodeWorkload.build(3, 8, 1, 128, [40, 50_000, 9_000])
    ctx = Evaluator(ragged, H200, PlanConfig()).context("splitkv")
    assert not any(c.tail_peers for c in cand.candidates_for(ctx, {}))


@settings(max_examples=16, deadline=None)
@given(batch=st.integers(1, 24), kv_heads=st.sampled_from([1, 2, 8]), group=st.sampled_from([1, 3, 8]),
       head_dim=st.sampled_from([64, 128]), contexts=st.lists(st.integers(100, 40_000), min_size=1, max_size=4),
       serving=st.sampled_from([{}, {"page_size": 16}, {"kv_dtype": "fp8"}, {"q_len": 4}, {"q_len": 16}]))
def test_no_entrys_bound_exceeds_its_prediction(batch, kv_heads, group, head_dim, contexts, serving):
    # contexts that are not whole tiles: a bound that counts the last tile whole overshoots short sequences; the
    # serving layouts bill per-token and per-page work the bound must not outrun
    workload = DecodeWorkload.build(batch, kv_heads * group, kv_heads, head_dim, (contexts * batch)[:batch],
                                    **serving)
    ev = Evaluator(workload, H200, PlanConfig())
    for name in cand.searched_entries(None, {}, workload):
        for c in cand.candidates_for(ev.context(name), {}):
            limits = bounds.limits_for(ev.context(name), ev.run(c).family)
            assert limits.lower_bound_us(c) <= ev.run(c).time_us * (1 + 1e-9), c.spec


def test_a_candidate_without_bounds_is_never_pruned():
    # a heuristic's plan outside the entry's own candidates (search.rule_candidate): max_ctas 0, no bound
    workload = DecodeWorkload.build(3, 8, 1, 128, 6_677)
    ctx = Evaluator(workload, H200, PlanConfig()).context("hybrid")
    unbounded = ctx.candidate(0, 0.0, grid=49, dp_outputs=0)
    assert bounds.limits_for(ctx, "streamk").lower_bound_us(unbounded) == 0.0


@settings(max_examples=12, deadline=None)
@given(batch=st.integers(1, 12), kv_heads=st.sampled_from([1, 2, 8]), head_dim=st.sampled_from([64, 128]),
       context=st.integers(200, 90_000), ragged=st.booleans())
def test_wave_cta_bytes_never_exceed_a_planned_ctas_kv_bytes(batch, kv_heads, head_dim, context, ragged):
    # what crowded_us takes as every CTA's bytes: the launch as planned has none lighter (split-KV and FlashDecoding
    # on uniform batches without empty splits, stream-K on any), and on a uniform batch its lightest holds them
    # within a tile
    contexts = [context - 977 * i if ragged else context for i in range(batch)]
    workload = DecodeWorkload.build(batch, kv_heads * 4, kv_heads, head_dim, [max(c, 100) for c in contexts])
    ev = Evaluator(workload, H200, PlanConfig())
    for name in ("splitkv", "flashdecoding", "streamk"):
        ctx = ev.context(name)
        for c in cand.candidates_for(ctx, {}):
            if not c.wave_cta_bytes:
                assert name != "streamk" and (workload.is_ragged or dict(c.options).get("chunk_tokens")
                                              or -(-ctx.max_tiles // -(-ctx.max_tiles // dict(c.options)["splits"]))
                                              < dict(c.options)["splits"]), c.spec
                continue
            attention = predict_one(c.spec, workload, H200).schedule.attention
            kv = np.bincount(attention.segments.cta, weights=attention.segments.kv_bytes, minlength=attention.grid)
            assert attention.grid == c.max_ctas, c.spec
            assert kv.min() >= c.wave_cta_bytes * (1 - 1e-12), c.spec
            if not workload.is_ragged:  # (a ragged batch's short sequences may end inside any of stream-K's chunks)
                assert kv.min() < c.wave_cta_bytes + ctx.tile * ctx.bytes_per_token, c.spec
