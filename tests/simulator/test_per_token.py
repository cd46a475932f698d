"""A CTA's per-token work in series with its stream (CostParams.cta_ns_per_token, cost.cta_stream_gbps):
a lone d 64 CTA is slower than a d 128 one at the same bytes, a saturated chip hides it, and a fit to
noise-free times of lone CTAs at both head dims recovers it."""

import dataclasses

import pytest

from attnsim.planner.choose import make_plan
from attnsim.simulator.cost import bandwidth_model
from attnsim.simulator.engine import simulate
from attnsim.simulator.hardware import CostParams, from_name
from attnsim.simulator.workload import DecodeWorkload
from attnsim.validation.fit import fit_points
from attnsim.validation.measurements import MeasuredPoint

H200 = from_name("h200")
PER_WARP, NS_PER_TOKEN, KNEE = 10.0, 1.2, 5.7  # GB/s per warp; ns per KV token; the fitted H200 fa2 knee


def _spec(ns_per_token: float):
    return dataclasses.replace(H200, cost={"fa2": CostParams(cta_stream_gbps_per_warp=PER_WARP, bw_knee=KNEE,
                                                             cta_ns_per_token=ns_per_token)})


def _fa2(spec, batch: int, head_dim: int, context: int):
    """fa2's plan of an MHA workload of 8 KV heads: batch x 8 CTAs, one per (sequence, head)."""
    return make_plan("fa2", DecodeWorkload.build(batch, 8, 8, head_dim, context), spec)


def test_lone_cta_rate_is_the_warps_rate_in_series_with_the_per_token_work():
    for head_dim in (64, 128):
        plan = _fa2(_spec(NS_PER_TOKEN), 1, head_dim, 50_000)
        rate = bandwidth_model(_spec(NS_PER_TOKEN), plan.schedule.attention, plan.schedule).cta_rate  # bytes/µs
        token_bytes = 2 * head_dim * 2  # K + V of one KV head, fp16
        warps = plan.schedule.attention.resources.warps
        ns_per_byte = 1 / (warps * PER_WARP) + NS_PER_TOKEN / token_bytes
        assert rate == pytest.approx(1e3 / ns_per_byte, rel=1e-12)
    off = _fa2(_spec(0.0), 1, 64, 50_000)
    assert bandwidth_model(_spec(0.0), off.schedule.attention, off.schedule).cta_rate == pytest.approx(
        off.schedule.attention.resources.warps * PER_WARP * 1e3)


def test_d64_lone_ctas_pay_twice_the_per_token_time_of_d128_at_the_same_bytes():
    spec = _spec(NS_PER_TOKEN)
    d64, d128 = (simulate(_fa2(spec, 1, d, 2 * 131072 // d * 4).schedule, spec).total_us for d in (64, 128))
    base64, base128 = (simulate(_fa2(_spec(0.0), 1, d, 2 * 131072 // d * 4).schedule, _spec(0.0)).total_us
                       for d in (64, 128))
    assert base64 == pytest.approx(base128, rel=0.01)  # same bytes per CTA, same rate: the term is all of it
    assert d64 > base64 * 1.05 and d128 > base128 * 1.02 and d64 > d128 * 1.03


def test_a_saturated_chip_hides_the_per_token_work():
    # one wave of 384 CTAs of 8 MB each, ~3x the CTAs the chip's bandwidth needs: it sets the time
    with_term, without = (simulate(_fa2(_spec(c), 48, 64, 65536).schedule, _spec(c)).total_us
                          for c in (NS_PER_TOKEN, 0.0))
    assert with_term == pytest.approx(without, rel=0.01)


def test_fit_recovers_the_per_token_work_from_lone_ctas_at_both_head_dims():
    truth = _spec(NS_PER_TOKEN)
    points = []
    for head_dim in (64, 128):
        for batch in (1, 2, 4, 8):
            for context in (4096, 32768, 200_000):
                plan = _fa2(truth, batch, head_dim, context)
                points.append(MeasuredPoint(plan, simulate(plan.schedule, truth).total_us, "fa2"))
    free = {"fa2": ("cta_stream_gbps_per_warp", "cta_ns_per_token")}
    start = dataclasses.replace(H200, cost={"fa2": CostParams(cta_stream_gbps_per_warp=8.0, bw_knee=KNEE)})
    got = fit_points(points, start, free=free).spec.cost_for("fa2")
    assert got.cta_ns_per_token == pytest.approx(NS_PER_TOKEN, rel=0.02)
    assert got.cta_stream_gbps_per_warp == pytest.approx(PER_WARP, rel=0.02)
