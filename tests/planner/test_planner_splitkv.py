"""The planner's bound for a plan merged by its last arrival (no combine launch): never above the
model's prediction, also when the merge dominates, so pruning cannot drop such a plan wrongly."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from attnsim.planner import bounds, candidates as cand
from attnsim.planner.search import Evaluator
from attnsim.simulator.hardware import CostParams
from attnsim.simulator.partition.common import PlanConfig
from attnsim.predict import predict_one
from attnsim.profiles import resolve_gpu
from attnsim.simulator.workload import DecodeWorkload

NAME = "splitkv"
H200 = resolve_gpu("h200")
SLOW_MERGE = CostParams(cta_stream_gbps_per_warp=8.0, fixup_fixed_us=6.0, fixup_per_peer_us=0.8)


@settings(max_examples=20, deadline=None)
@given(batch=st.integers(1, 4), kv_heads=st.sampled_from([1, 2, 8]), group=st.sampled_from([1, 4, 8]),
       tiles=st.lists(st.integers(1, 900), min_size=1, max_size=4), slow_merge=st.booleans())
def test_last_arrival_bounds_never_exceed_the_prediction(batch, kv_heads, group, tiles, slow_merge):
    """Whole 64-token tiles (d 128, fp16): candidates count the longest split in whole tiles, so a
    short last tile makes every strategy's bound a few bytes high (FA2's and FlashDecoding's too)."""
    contexts = [64 * t for t in tiles]
    gpu = dataclasses.replace(H200, cost={**H200.cost, NAME: SLOW_MERGE}) if slow_merge else H200
    workload = DecodeWorkload.build(batch, kv_heads * group, kv_heads, 128, (contexts * batch)[:batch])
    ctx = Evaluator(workload, gpu, PlanConfig()).context(NAME)
    found = cand.candidates_for(ctx, {})
    limits = bounds.limits_for(ctx, NAME)
    assert found and all(c.partials == 0 for c in found)  # no combine launch is billed
    for c in found:
        assert limits.lower_bound_us(c) <= predict_one(c.spec, workload, gpu).total_us * (1 + 1e-9), c.spec


def test_fixed_chunks_are_searched_for_ragged_batches_and_when_pinned():
    """Split-KV's fixed chunks (balanced's LPT grid in one launch) are candidates beside its split counts
    for a ragged batch; a uniform batch's chunks would cut every output as a split count does, so only
    split counts are searched; a pinned chunk searches that chunk alone, a pinned split count no chunk."""
    def searched(workload: DecodeWorkload, pins: dict) -> set[str]:
        ctx = Evaluator(workload, H200, PlanConfig()).context(NAME)
        return {next(iter(dict(c.options))) for c in cand.candidates_for(ctx, pins)}

    ragged = DecodeWorkload.build(3, 32, 8, 128, [40_000, 900, 3000])
    uniform = DecodeWorkload.build(3, 32, 8, 128, 3000)
    assert searched(ragged, {}) == {"splits", "chunk_tokens"}
    assert searched(uniform, {}) == {"splits"}
    assert searched(uniform, {"chunk_tokens": 1024}) == {"chunk_tokens"}
    assert searched(ragged, {"splits": 4}) == {"splits"}


def test_fixed_chunk_plans_run_the_one_segment_kernel():
    """A plan of fixed chunks runs one chunk per program (lean_last.one_segment_kernel, its own compiled
    resources); a split count keeps the 2-D split-KV kernel."""
    from attnsim.planner.choose import make_plan

    workload = DecodeWorkload.build(3, 32, 8, 128, [40_000, 900, 3000], dtype="bfloat16")
    chunks = make_plan("splitkv:chunk_tokens=256,max_splits=16", workload, H200)
    splits = make_plan("splitkv:splits=4", workload, H200)
    assert (chunks.kernel.name, chunks.kernel.function, chunks.kernel.split_grid) == \
        ("split_kv_chunks", "one_segment_kernel", False)
    assert chunks.resources_source == "compiled table" and chunks.schedule.grid == len(chunks.schedule.attention.segments)
    assert (splits.kernel.name, splits.kernel.split_grid) == ("split_kv", True)


def test_the_search_prices_chunk_plans_with_their_own_kernel():
    """Every split-KV chunk plan the search simulated is priced as `predict` prices it: with the one-segment
    kernel's resources (the search resolves each kernel of an entry once), not split-KV's."""
    from attnsim.planner.search import search

    workload = DecodeWorkload.build(3, 32, 8, 128, [40_000, 900, 3000], dtype="bfloat16")
    chunked = [e for e in search(workload, H200, PlanConfig()).ranked if "chunk_tokens" in e.spec and e.spec.startswith(NAME)]
    assert chunked
    for e in chunked:
        assert e.time_us == predict_one(e.spec, workload, H200).total_us, e.spec
