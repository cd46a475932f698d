"""From calibration measurements (plain tables) to a calibrated GpuSpec and its fit report.

Inputs, as DataFrames:
- bandwidth: columns num_ctas, num_warps, read_gbps (the membw saturation curve);
- points: a measurements table (see simulator/validation.py) of our kernels and torch-flash on the
  calibration set, which is disjoint from the validation (benchmark) sweep;
- kernels: per "strategy/d<head_dim>/<dtype>" the compiled configuration (kv_tile_tokens,
  num_warps, threads, regs_per_thread, smem_bytes) so predictions plan what ran.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd

from attnsim.simulator.calibration import CostParams, FitResult, fit_bandwidth_curve, fit_cost_params
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.validation import measured_points

STREAMK_MERGE_FANIN = 5
FAMILIES_BY_STRATEGY = {"fa2": ("fa2",), "flashdecoding": ("flashdecoding", "flashdecoding-combine"),
                        "streamk": ("streamk",), "torch-flash": ("torch-flash", "torch-flash-combine", "torch-flash-nosplit")}


def _fit_strategy(spec: GpuSpec, rows: pd.DataFrame) -> FitResult:
    return fit_cost_params(measured_points(rows, spec), spec)


def _fit_all(spec: GpuSpec, jobs: dict[str, pd.DataFrame]):
    """(strategy, FitResult) in order. The strategies' families are disjoint, so their fits are
    independent: run them in parallel processes ('spawn': the parent may hold a CUDA context)."""
    workers = min(len(jobs), os.cpu_count() or 1)
    if workers <= 1:
        yield from ((s, _fit_strategy(spec, rows)) for s, rows in jobs.items())
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {s: pool.submit(_fit_strategy, spec, rows) for s, rows in jobs.items()}
        yield from ((s, futures[s].result()) for s in jobs)


def calibrate_spec(base: GpuSpec, bandwidth: pd.DataFrame, points: pd.DataFrame, kernels: dict,
                   launch_overhead_us: float, source: str, progress=None) -> tuple[GpuSpec, dict]:
    """Fit the bandwidth curve, then each strategy's cost families on its own points."""
    per_warp, knee, peak = fit_bandwidth_curve(bandwidth["num_ctas"], bandwidth["num_warps"], bandwidth["read_gbps"])
    start = CostParams(cta_stream_gbps_per_warp=per_warp, bw_knee=knee, launch_overhead_us=launch_overhead_us)
    combine_start = dataclasses.replace(start, launch_overhead_us=launch_overhead_us / 3, cta_fixed_us=0.5,
                                        segment_fixed_us=0.0)
    cost = {f: (combine_start if f.endswith("-combine") else start)
            for fams in FAMILIES_BY_STRATEGY.values() for f in fams}
    # Our stream-K kernel merges along a 5-ary tree (BLOCK_P = 4 partials per step for every
    # group <= 32 at 8 warps: attnsim/kernels/plan_tables.merge_block).
    cost["streamk"] = dataclasses.replace(start, merge_fanin=STREAMK_MERGE_FANIN)
    spec = dataclasses.replace(base, hbm_read_gbps=round(float(bandwidth["read_gbps"].max()), 1), cost=cost,
                               kernels=dict(kernels), source=source, profile_source="calibrated")
    report = {"bandwidth_fit": {"cta_stream_gbps_per_warp": per_warp, "bw_knee": knee, "saturated_gbps": peak},
              "launch_overhead_us": launch_overhead_us}
    jobs = {s: points[points["strategy"] == s] for s in FAMILIES_BY_STRATEGY}
    jobs = {s: rows for s, rows in jobs.items() if not rows.empty}
    for strategy, fit in _fit_all(spec, jobs):
        families = FAMILIES_BY_STRATEGY[strategy]
        spec = dataclasses.replace(spec, cost={**spec.cost, **{f: fit.spec.cost_for(f) for f in families}})
        rows = jobs[strategy]
        report[strategy] = {"points": int(len(rows)), "iterations": fit.iterations, "mape_pct": fit.mape,
                            "max_abs_pct": float(np.max(np.abs(np.expm1(fit.residuals))) * 100),
                            "residuals_log": [round(float(r), 5) for r in fit.residuals]}
        if progress:
            progress(strategy, report[strategy])
    return spec, report
