"""Two serving terms of verify blocks (simulator/reuse.py, cost.py): the warpgroup mma of 64-row query
tiles (wgmma_flop_scale) and the faster latency-bound stream of sibling q-blocks whose reads are L2
hits (l2_hit_latency_ratio). Each moves exactly the workloads it is about, and neither moves decode."""

import pytest

from attnsim.predict import predict_one
from attnsim.profiles import resolve_gpu
from attnsim.simulator import cost
from attnsim.simulator.engine import simulate
from attnsim.simulator.reuse import l2_hit_bytes, l2_hit_speedup
from attnsim.simulator.terms import terms_used, verify_siblings
from attnsim.simulator.workload import DecodeWorkload
from plan_helpers import plan_for
from test_serving_model import neutral_h200, with_cost

# one output per sequence, each CTA alone on its SM: the lone-CTA (latency-bound) regime
TWO_BLOCKS = DecodeWorkload.build(1, 8, 1, 128, 131072, q_len=16, dtype="bfloat16")  # 128 rows: 2 q-blocks
ONE_BLOCK_64 = DecodeWorkload.build(1, 8, 1, 128, 131072, q_len=8, dtype="bfloat16")  # 64 rows
ONE_BLOCK_32 = DecodeWorkload.build(1, 8, 1, 128, 131072, q_len=4, dtype="bfloat16")  # 32 rows
DECODE_128 = DecodeWorkload.build(1, 128, 1, 128, 131072, dtype="bfloat16")  # decode, 2 q-blocks


def test_sibling_q_blocks_of_a_verify_block_stream_faster_by_the_latency_mix():
    base = neutral_h200()
    faster = with_cost(base, l2_hit_latency_ratio=0.5)
    plan = plan_for("fa2", TWO_BLOCKS, base)
    launch = plan.attention
    moved = float(launch.cta_read_bytes.sum() + launch.cta_write_bytes.sum())
    share = l2_hit_bytes(base, launch, TWO_BLOCKS) / moved
    assert 0.45 < share < 0.5  # the second q-block re-reads every tile; q and o are the rest
    speedup = l2_hit_speedup(faster.cost_for("fa2"), share)
    assert speedup == pytest.approx(1.0 / (1.0 - share + 0.5 * share))
    a, b = (cost.bandwidth_model(spec, launch, plan) for spec in (base, faster))
    assert b.cta_rate == pytest.approx(a.cta_rate * speedup) and b.sm_stream_rate == pytest.approx(a.sm_stream_rate * speedup)
    assert simulate(plan, faster).total_us < simulate(plan, base).total_us


@pytest.mark.parametrize("workload", [ONE_BLOCK_64, DECODE_128], ids=["one-q-block", "decode-two-q-blocks"])
def test_no_siblings_or_decode_no_latency_change(workload):
    base = neutral_h200()
    faster = with_cost(base, l2_hit_latency_ratio=0.3)
    assert not verify_siblings(workload) and "l2-siblings" not in terms_used(workload)
    for strategy in ("fa2", "flashdecoding", "streamk"):
        assert predict_one(strategy, workload, faster).total_us == predict_one(strategy, workload, base).total_us


def test_the_warpgroup_scale_lifts_the_math_cap_of_64_row_tiles_only():
    base = with_cost(neutral_h200(), mma_flop_per_sm_clock=600.0, mma_flop_per_warp_clock=100.0)
    scaled = with_cost(base, wgmma_flop_scale=2.0)
    for workload, rows in ((ONE_BLOCK_64, 64), (ONE_BLOCK_32, 32)):
        plan = plan_for("fa2", workload, base)
        a, b = (cost.bandwidth_model(spec, plan.attention, plan) for spec in (base, scaled))
        if rows >= cost.WGMMA_ROWS:  # the tile math is all mma at the softmax's default of 0 clocks
            assert b.sm_math_rate == pytest.approx(2.0 * a.sm_math_rate) and b.cta_math_rate == pytest.approx(2.0 * a.cta_math_rate)
            assert simulate(plan, scaled).total_us < simulate(plan, base).total_us
        else:
            assert (b.sm_math_rate, b.cta_math_rate) == (a.sm_math_rate, a.cta_math_rate)
    # decode keeps its calibrated stream rates: no cap, whatever the scale
    assert predict_one("fa2", DECODE_128, scaled).total_us == predict_one("fa2", DECODE_128, base).total_us


def test_the_shipped_h200_profile_says_which_family_the_sibling_term_was_fitted_for():
    """What the profile ships is what its provenance says: a fitted ratio below 1 where the term held out
    better, the neutral 1 and status `default` where it added nothing (serving_fit.idle_terms)."""
    shipped = resolve_gpu("h200")
    terms = shipped.serving_terms["terms"]
    for family in ("fa2", "flashdecoding", "streamk", "splitkv"):
        ratio, status = shipped.cost_for(family).l2_hit_latency_ratio, terms[family]["l2-siblings"]["status"]
        assert (status, ratio < 1.0) in (("fitted", True), ("default", False)), family
        assert 1.0 <= shipped.cost_for(family).wgmma_flop_scale <= 8.0
    assert terms["fa2"]["l2-siblings"]["status"] == "fitted"  # the fa2 verify rows that motivated it
