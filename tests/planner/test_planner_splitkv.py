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
