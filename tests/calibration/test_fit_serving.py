"""The serving cost fields (paged KV, fp8 dequantisation, tile math, sibling q-blocks' L2 hits) are identifiable from the
calibration sweep `cal-serving`: noise-free synthetic times recover them; contiguous decode points
alone leave them untouched (nothing to fit them from)."""

import dataclasses

import pytest

from attnsim.bench.sweep import sweep
from attnsim.planner.choose import make_plan
from attnsim.simulator.calibration import free_parameters
from attnsim.simulator.engine import simulate
from attnsim.simulator.hardware import CostParams, from_name
from attnsim.simulator.workload import DecodeWorkload
from attnsim.strategies import SERVING, all_families
from attnsim.validation.fit import fit_points
from attnsim.validation.measurements import MeasuredPoint

H200 = from_name("h200")


def _points(spec, strategy, workloads):
    plans = [make_plan(strategy, w, spec) for w in workloads]
    return [MeasuredPoint(p, simulate(p.schedule, spec).total_us, strategy) for p in plans]


TRUTH = CostParams(cta_stream_gbps_per_warp=9.0, paged_tile_fixed_us=0.25, paged_hbm_scale=0.9,
                   paged_segment_fixed_us=0.6, mma_flop_per_sm_clock=700.0, dequant_elem_per_sm_clock=40.0,
                   fp8_segment_fixed_us=1.5, wgmma_flop_scale=2.0, l2_hit_latency_ratio=0.6)


def _fit(strategy):
    true_spec = dataclasses.replace(H200, cost={strategy: TRUTH})
    start = dataclasses.replace(H200, cost={strategy: CostParams(cta_stream_gbps_per_warp=9.0)})
    return fit_points(_points(true_spec, strategy, sweep("cal-serving")), start, free={strategy: SERVING})


@pytest.mark.parametrize("strategy", ["fa2", "flashdecoding"])
def test_fit_recovers_the_serving_fields_from_cal_serving(strategy):
    """From the defaults (the rate caps bind nowhere there: the fit starts them from FIT_START)."""
    fit = _fit(strategy)
    got = fit.spec.cost_for(strategy)
    for name in SERVING:
        assert getattr(got, name) == pytest.approx(getattr(TRUTH, name), rel=0.01), name
    assert fit.mape < 0.1


def test_streamk_fit_predicts_the_serving_points():
    """At a full persistent grid a per-tile cost and a bandwidth scale both grow with the tiles per
    CTA, so stream-K's paged fields trade off against each other, and so do its tile-math rates (16-32-row
    mma, 64-row warpgroup scale, conversions: every CTA holds all three kinds of work in the same
    proportions); the predictions do not."""
    fit = _fit("streamk")
    got = fit.spec.cost_for("streamk")
    assert got != TRUTH  # not identified: the fit found another combination ...
    assert fit.mape < 1.0  # ... that predicts the same times


def test_decode_points_exercise_no_serving_field():
    decode = [DecodeWorkload.build(b, 32, 8, 128, c) for b in (1, 8) for c in (3000, 48000)]
    keys = free_parameters([p.plan.schedule for p in _points(H200, "fa2", decode)], all_families())
    assert keys and not {name for _, name in keys} & set(SERVING)
    paged = [DecodeWorkload.build(2, 8, 1, 128, 3000, page_size=16)]
    schedules = [p.plan.schedule for p in _points(H200, "fa2", paged)]
    assert {name for _, name in free_parameters(schedules, all_families())} & set(SERVING) == \
        {"paged_tile_fixed_us", "paged_hbm_scale", "paged_segment_fixed_us"}


def test_serving_calibration_is_disjoint_from_the_serving_sweeps():
    calibration = set(sweep("cal-serving"))
    for name in ("paged", "fp8", "qlen"):
        assert not calibration & set(sweep(name, "bfloat16", 4.0)), name
