"""Fitting recovers known parameters from synthetic measurements (noise-free, so within 1%)."""

import dataclasses

import numpy as np
import pytest

from attnsim.planner.choose import make_plan
from attnsim.simulator.calibration import fit_bandwidth_curve
from attnsim.simulator.cost import BandwidthModel
from attnsim.simulator.engine import simulate
from attnsim.simulator.hardware import CostParams, from_name
from attnsim.simulator.workload import DecodeWorkload
from attnsim.validation.fit import fit_points
from attnsim.validation.measurements import MeasuredPoint

H100 = from_name("h100")


def test_bandwidth_curve_recovers_per_warp_rate_knee_and_peak():
    true = BandwidthModel(cta_rate=4.2, hbm_rate=3075.0, knee=2.7)  # GB/s per warp, GB/s, p
    ctas = np.array([1, 2, 4, 8, 16, 32, 66, 100, 132, 200, 264, 396, 528, 1056] * 2)
    warps = np.repeat([4, 8], 14)
    gbps = true.aggregate(ctas * warps)
    per_warp, knee, peak = fit_bandwidth_curve(ctas, warps, gbps)
    assert per_warp == pytest.approx(4.2, rel=0.01)
    assert knee == pytest.approx(2.7, rel=0.01)
    assert peak == pytest.approx(3075.0, rel=0.01)


def _synthetic_points(spec, strategy):
    """Single- and multi-wave workloads (batch 1..48, MHA and GQA, d 64/128, 700..300k tokens)."""
    points = []
    for batch in (1, 4, 16, 48):
        for q_heads, kv_heads in ((32, 32), (32, 8)):
            for head_dim in (64, 128):
                for context in (700, 5000, 40000, 300000):
                    w = DecodeWorkload.build(batch, q_heads, kv_heads, head_dim, context)
                    plan = make_plan(strategy, w, spec)
                    points.append(MeasuredPoint(plan, simulate(plan.schedule, spec).total_us, strategy))
    return points


def test_fit_recovers_fa2_parameters_within_one_percent():
    truth = CostParams(cta_stream_gbps_per_warp=5.3, launch_overhead_us=3.7, cta_fixed_us=1.9, bw_knee=3.2)
    true_spec = dataclasses.replace(H100, cost={"fa2": truth})
    points = _synthetic_points(true_spec, "fa2")
    free = {"fa2": ("cta_stream_gbps_per_warp", "launch_overhead_us", "cta_fixed_us", "bw_knee")}
    fit = fit_points(points, H100, free=free)  # starts from the datasheet defaults
    got = fit.spec.cost_for("fa2")
    for name in free["fa2"]:
        assert getattr(got, name) == pytest.approx(getattr(truth, name), rel=0.01), name
    assert fit.mape < 0.1


def test_fit_recovers_streamk_rate_and_bandwidth_scale():
    truth = CostParams(cta_stream_gbps_per_warp=7.5, cta_fixed_us=2.5, hbm_scale=0.93, bw_knee=2.5)
    true_spec = dataclasses.replace(H100, cost={"streamk": truth})
    points = _synthetic_points(true_spec, "streamk")
    free = {"streamk": ("cta_stream_gbps_per_warp", "cta_fixed_us", "hbm_scale")}
    got = fit_points(points, H100, free=free).spec.cost_for("streamk")
    for name in free["streamk"]:
        assert getattr(got, name) == pytest.approx(getattr(truth, name), rel=0.01), name


def test_fit_stays_inside_physical_bounds_on_hopeless_data():
    w = DecodeWorkload.build(1, 32, 32, 128, 4096)
    w2 = DecodeWorkload.build(2, 32, 32, 128, 4096)
    points = [MeasuredPoint(make_plan("fa2", w, H100), 1e7, "fa2"), MeasuredPoint(make_plan("fa2", w2, H100), 1.0, "fa2")]
    got = fit_points(points, H100).spec.cost_for("fa2")
    assert 0.5 <= got.cta_stream_gbps_per_warp <= 60.0
    assert 1.0 <= got.bw_knee <= 12.0


def test_calibration_set_is_disjoint_from_the_benchmark_sweep():
    from attnsim.bench.calibration import calibration_sweep
    from attnsim.bench.sweep import sweep

    calibration = {(w.batch, w.q_heads, w.kv_heads, w.head_dim, w.contexts) for w in calibration_sweep()}
    benchmark = {(w.batch, w.q_heads, w.kv_heads, w.head_dim, w.contexts) for w in sweep("standard")}
    assert len(calibration) > 100
    assert not calibration & benchmark
