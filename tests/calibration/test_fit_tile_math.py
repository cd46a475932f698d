"""FA2's CUDA kernels (torch-flash) are held by their SM's tile math in decode (cost.math_capped): one
mma rate, the unsplit family's, prices both kernels; decode points alone identify it, and every fit
starts it at the datasheet's (validation.fit.starting_costs), the softmax's SFU clocks with it."""

import dataclasses

import pandas as pd
import pytest

from attnsim import strategies
from attnsim.planner.choose import make_plan
from attnsim.simulator import datasheet
from attnsim.simulator.calibration import free_parameters
from attnsim.simulator.engine import simulate
from attnsim.simulator.hardware import from_name
from attnsim.simulator.workload import DecodeWorkload
from attnsim.validation.fit import fit_points, starting_costs
from attnsim.validation.measurements import MeasuredPoint

H200 = from_name("h200")
NOSPLIT = "torch-flash-nosplit"
# batch 1-4 split the KV (FA2's heuristic: too few outputs for 2 x SMs CTAs), batch 32-64 do not
WORKLOADS = [DecodeWorkload.build(b, 32, 8, d, c) for b in (1, 4, 32, 64) for d in (64, 128) for c in (8192, 65536)]
BANDWIDTH = pd.DataFrame({"num_ctas": [16, 66, 132, 264, 528], "num_warps": [4] * 5,
                          "read_gbps": [290.0, 1150.0, 2150.0, 3500.0, 4300.0]})


def _points(spec):
    plans = [make_plan("torch-flash", w, spec) for w in WORKLOADS]
    return [MeasuredPoint(p, simulate(p.schedule, spec).total_us, "torch-flash") for p in plans]


def _start():
    cost, _ = starting_costs(BANDWIDTH, launch_overhead_us=4.5)
    return dataclasses.replace(H200, cost=cost)


def test_fits_start_fa2s_cuda_kernels_at_the_datasheets_tile_math():
    start = _start()
    fields = datasheet.tile_math_fields(strategies.kernel_traits()[NOSPLIT])
    assert {k: getattr(start.cost[NOSPLIT], k) for k in fields} == fields
    assert start.cost["fa2"].softmax_clocks_per_score == 0.0  # our kernels: no cap in decode


def test_both_kernels_bill_the_unsplit_familys_tile_math():
    plans = {w.batch: make_plan("torch-flash", w, H200).schedule.attention for w in WORKLOADS if w.head_dim == 128}
    assert plans[1].family == "torch-flash" and plans[64].family == NOSPLIT
    assert (plans[1].tile_rows, plans[64].tile_rows) == (64, 128)
    assert {plans[1].math_family, plans[64].math_family} == {NOSPLIT}
    keys = free_parameters([p.plan.schedule for p in _points(H200)], strategies.all_families())
    assert (NOSPLIT, "mma_flop_per_sm_clock") in keys and ("torch-flash", "mma_flop_per_sm_clock") not in keys


def test_decode_points_recover_the_tile_math_rate():
    """Synthetic times from a known rate (not the datasheet's); the fit, from the datasheet's, finds it."""
    start = _start()
    truth = dataclasses.replace(start, cost={**start.cost, NOSPLIT: dataclasses.replace(
        start.cost[NOSPLIT], mma_flop_per_sm_clock=1800.0)})
    free = {f: strategies.all_families()[f] for f in strategies.families_of("torch-flash")}
    fit = fit_points(_points(truth), start, free)
    assert fit.spec.cost[NOSPLIT].mma_flop_per_sm_clock == pytest.approx(1800.0, rel=0.03)
    assert fit.mape < 0.5
