"""A lone CTA streams at its K/V bytes in flight over the latency, whatever its warps (plans.resources
.stream_warps, cost.cta_stream_gbps): the 4-warp fp8 stream-K kernel keeps the 8-warp bf16 kernel's 16 KB
K tiles and two of them in flight, so it streams like 8 warps; fewer tiles in flight stream slower."""

import pytest

from attnsim import strategies
from attnsim.plans.plan import resolve_plan
from attnsim.profiles import resolve_gpu
from attnsim.simulator import cost
from attnsim.simulator.workload import DecodeWorkload

H200 = resolve_gpu("h200")
BF16 = DecodeWorkload.build(1, 32, 8, 128, 8192, dtype="bfloat16")
FP8 = DecodeWorkload.build(1, 32, 8, 128, 8192, dtype="bfloat16", kv_dtype="fp8")


def test_the_4_warp_fp8_stream_k_kernel_streams_like_the_8_warp_one():
    plan = resolve_plan("streamk", FP8, H200)
    launch = plan.schedule.attention
    rate = cost.cta_stream_gbps(H200.cost_for(launch.family), launch, plan.schedule)
    warps, stream = launch.resources.warps, launch.stream_warps
    assert warps == 4 and stream == strategies.get("streamk").kernel.warps == 8
    params = H200.cost_for("streamk")
    # the per-token term is per KV token: an fp8 token is half the bytes, so compare without it
    assert rate == pytest.approx(1.0 / (1.0 / (params.cta_stream_gbps_per_warp * 8)
                                        + params.cta_ns_per_token / FP8.kv_token_bytes))


@pytest.mark.parametrize("spec, expected", [
    ("streamk:num_warps=4", 8.0),  # same tiles in flight at 4 warps: measured within 3% of 8 (docs/kernels.md)
    ("flashdecoding:num_stages=2", 2.0),  # one 64-token tile in flight instead of two
    ("flashdecoding:kv_tile_tokens=128", 8.0),  # two 128-token tiles: twice the bytes
    ("fa2", 4.0),  # the default shape: its own warps
])
def test_stream_warps_follow_the_tiles_in_flight(spec, expected):
    plan = resolve_plan(spec.split(":")[0], BF16, H200,
                        {k: int(v) for k, v in (o.split("=") for o in spec.split(":")[1:] if o)})
    assert plan.config.stream_warps == expected
    assert plan.schedule.attention.stream_warps == expected


def test_a_baseline_streams_at_its_own_warps():
    plan = resolve_plan("torch-cudnn", BF16, H200)
    assert plan.config.stream_warps is None and plan.schedule.attention.stream_warps == 0.0
