"""From calibration measurements (plain tables) to a calibrated GpuSpec and its fit report.

Inputs, as DataFrames:
- bandwidth: columns num_ctas, num_warps, read_gbps (the membw saturation curve);
- points: a measurements table (validation.measurements) of the registry's calibrated strategies on
  the calibration set, which is disjoint from the validation (benchmark) sweep;
- kernels: the compiled resources of each kernel variant that ran (attnsim.plans.resources), so
  predictions plan what ran.

Each strategy that owns cost families (the registry's `families`) is fitted on its own rows; the
families are disjoint, so the fits run in parallel processes.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd

from attnsim import strategies
from attnsim.simulator.calibration import BOUNDS, CostParams, FitResult, fit_bandwidth_curve, fit_cost_params
from attnsim.simulator.datasheet import l2_dirty_fraction, tile_math_fields
from attnsim.simulator import mla
from attnsim.simulator.hardware import DEFAULT_COST, GpuSpec
from attnsim.validation.measurements import MeasuredPoint, measured_points


# Where an MLA family's tensor-core rate starts: half the peak, binding at the 64-row latent tiles of 128 heads
# per GPU (docs/mla.md: at the ridge). From the peak it binds nowhere (no gradient); from calibration.FIT_START's
# 512 it binds everywhere and the noise-free cal-mla fit stalls at a wrong rate (2.7% in-sample, issue 23).
MLA_MMA_START = DEFAULT_COST.mma_flop_per_sm_clock / 2
# ... and where else: a start at which the rate does not bind has no gradient, and the H200's MLA kernels bind far
# below it at 64 rows (they spill: 110-402 registers' worth) while their 16-row tiles are held by their stream
# (results/h200/cal_mla.csv: from MLA_MMA_START alone fa2-mla fitted 18% in-sample, from a quarter of it 1.0%).
# An MLA owner's fit runs from each and keeps the least squared log residuals (fit_job).
MLA_MMA_STARTS = (MLA_MMA_START, MLA_MMA_START / 2, MLA_MMA_START / 4)
# MLA families whose per-CTA caps are another family's: stream-K's 16/32-row MLA kernel runs the same tile
# loop (kernels/mla_tiles.py: same tiles, warps, stages; 187 registers against 181, no spills) as fa2's, so
# its CTA streams and multiplies at fa2-mla's rates; what it adds (segments, merges, launch) is fitted. At one
# CTA per SM, and on cal-mla's grids of 132, the stream rate and the tile math are per-CTA caps the chip's
# share hides: fitted free, stream-K's rate came out at 75 GB/s a CTA (fa2-mla's: 20) and `auto` planned
# MLA stream-K grids of 4 at 17 us where FlashMLA's measured 20. The 64-row kernels differ (402 registers'
# worth of spills against 110): fitted free. An owner whose families tie to another's fits after it.
MLA_TIES = {"streamk-mla": ("fa2-mla", ("cta_stream_gbps_per_warp", "bw_knee", "mma_flop_per_sm_clock"))}


def _starting_params(family: str, per_warp: float, knee: float, launch_overhead_us: float) -> CostParams:
    """Where a family's fit starts: the bandwidth curve's per-warp rate and knee, the measured launch
    overhead (a third of it for a combine launch queued behind its attention launch), the registry's
    fixed parameters (e.g. stream-K's merge fan-in) and, for a kernel that fixes its tile rows (FA2's
    CUDA kernels), the datasheet's tile math: its decode is held there, so its mma rate starts near its
    answer (from calibration.FIT_START's 512 it stalls in a corner) and its softmax stays at the SFU's; an MLA
    kernel's at MLA_MMA_START."""
    start = CostParams(cta_stream_gbps_per_warp=per_warp, bw_knee=knee, launch_overhead_us=launch_overhead_us)
    if family.endswith("-combine"):
        start = dataclasses.replace(start, launch_overhead_us=launch_overhead_us / 3, cta_fixed_us=0.5,
                                    segment_fixed_us=0.05)
    fixed = {k: v for s in strategies.REGISTRY.values() for k, v in s.fixed_params.get(family, {}).items()}
    traits = strategies.kernel_traits().get(family)
    if "mma_flop_per_sm_clock" in strategies.mla_families().get(family, ()):
        start = dataclasses.replace(start, mma_flop_per_sm_clock=MLA_MMA_START)
    return dataclasses.replace(start, **fixed, **(tile_math_fields(traits) if traits else {}))


def starting_costs(bandwidth: pd.DataFrame, launch_overhead_us: float) -> tuple[dict[str, CostParams], dict]:
    """Every registry family's starting costs (MLA families too) from a calibration's bandwidth curve and
    launch time, and the bandwidth fit's report."""
    per_warp, knee, peak = fit_bandwidth_curve(bandwidth["num_ctas"], bandwidth["num_warps"], bandwidth["read_gbps"])
    families = {**strategies.all_families(), **strategies.mla_families()}
    cost = {family: _starting_params(family, per_warp, knee, launch_overhead_us) for family in families}
    return cost, {"cta_stream_gbps_per_warp": per_warp, "bw_knee": knee, "saturated_gbps": peak}


# Anchors of the two shares of the saturated bandwidth (sigma, in log-residual units per unit of the
# share) for fit_points' second start. hbm_scale (this kernel's peak / the measured membw peak) and
# l2_dirty_fraction (the dirty L2 its KV reads write back) both scale a bandwidth-bound point's time;
# only bandwidth-bound points whose KV spans ~1-10x the L2 separate them (the write-back is
# share x min(KV, L2): a fixed cost there, vanishing at GB of KV). A free fit from the neutral start
# can run both down into a corner it never leaves (at a bound the bounded coordinate is flat): fa2 on
# the H200's 60 s replay set ended at hbm_scale = 0.8 (its bound), l2_dirty_fraction 0.20, 5.6%
# in-sample, while 3.8% lies at (1.0, 0.76) (docs/validation.md, issue 21).
SHARE_SIGMA = {"hbm_scale": 1.0, "l2_dirty_fraction": 2.5}


def share_prior(spec: GpuSpec, free: dict) -> dict:
    """(family, parameter) -> (anchor, sigma) for the bandwidth shares the families fit: hbm_scale at
    1.0 (the membw curve's peak), l2_dirty_fraction at the datasheet's (launch-path write-back)."""
    anchor = {"hbm_scale": 1.0, "l2_dirty_fraction": l2_dirty_fraction(spec)}
    return {(f, name): (anchor[name], SHARE_SIGMA[name]) for f, params in free.items() for name in params
            if name in SHARE_SIGMA}


def _in_corner(fit: FitResult, key: tuple[str, str], bounds: dict | None) -> bool:
    """A share at a bound of the fit's box, hbm_scale's ceiling excepted (no kernel beats the membw
    peak: 1.0 is where a saturating kernel belongs, not a corner)."""
    lo, hi = (bounds or {}).get(key) or BOUNDS[key[1]]
    value, tol = getattr(fit.spec.cost_for(key[0]), key[1]), 1e-3 * (hi - lo)
    return value - lo < tol or (hi - value < tol and key[1] != "hbm_scale")


def fit_points(points: list[MeasuredPoint], spec: GpuSpec, free: dict | None = None,
               bounds: dict | None = None) -> FitResult:
    """Fit the cost families the points' plans exercise (free: family -> fitted parameters, default
    the registry's) to their measured times. Where the free fit parks a bandwidth share in a corner
    (_in_corner), a second start: a pass with the shares anchored (share_prior), then released from
    there; the fit with the smaller sum of squared log residuals is kept (the points' own criterion,
    no anchor in it), so fits that never reach a corner are unchanged."""
    free = strategies.all_families() if free is None else free
    schedules, times = [p.plan.schedule for p in points], [p.time_us for p in points]
    fit = fit_cost_params(schedules, times, spec, free, bounds=bounds)
    prior = share_prior(spec, free)
    if not any(_in_corner(fit, key, bounds) for key in prior):
        return fit
    anchored = fit_cost_params(schedules, times, spec, free, bounds=bounds, prior=prior).spec
    retry = fit_cost_params(schedules, times, anchored, free, bounds=bounds)
    return min((fit, retry), key=lambda f: float(f.residuals @ f.residuals))


def fit_job(spec: GpuSpec, key: str, rows: pd.DataFrame) -> FitResult:
    """The fit of one fit_jobs entry: an MLA owner's (key ending in -mla) from each of MLA_MMA_STARTS, the best,
    its MLA_TIES fields at their sources' values in `spec` (fitted first: tie_phases)."""
    free = {**strategies.all_families(), **strategies.mla_families()}
    if not key.endswith(mla.FAMILY_SUFFIX):
        return _fit_strategy(spec, rows, free)
    spec, free = tied(spec, free)
    fits = [_fit_strategy(with_mla_mma(spec, rate, free), rows, free) for rate in MLA_MMA_STARTS]
    return min(fits, key=lambda fit: float(fit.residuals @ fit.residuals))


def tied(spec: GpuSpec, free: dict) -> tuple[GpuSpec, dict]:
    """`spec` with each MLA_TIES family's fields at its source's values, and `free` without them."""
    cost, free = dict(spec.cost), dict(free)
    for family, (source, fields) in MLA_TIES.items():
        if family in cost and source in cost:
            cost[family] = dataclasses.replace(cost[family], **{f: getattr(cost[source], f) for f in fields})
            free[family] = tuple(f for f in free[family] if f not in fields)
    return dataclasses.replace(spec, cost=cost), free


def tie_phases(jobs: dict) -> list[list[str]]:
    """fit_jobs keys in the order their ties need: jobs fitting no MLA_TIES family first, then the others."""
    dependent = {key for key, (families, _) in jobs.items() if set(families) & set(MLA_TIES)}
    return [k for k in ([k for k in jobs if k not in dependent], [k for k in jobs if k in dependent]) if k]


def with_mla_mma(spec: GpuSpec, rate: float, free: dict | None = None) -> GpuSpec:
    """`spec` with every MLA family that fits a tensor-core rate (in `free`, default the registry's) starting at `rate`."""
    free = strategies.mla_families() if free is None else free
    fitted = [f for f in strategies.mla_families() if "mma_flop_per_sm_clock" in free.get(f, ()) and f in spec.cost]
    moved = {f: dataclasses.replace(spec.cost[f], mma_flop_per_sm_clock=rate) for f in fitted}
    return dataclasses.replace(spec, cost={**spec.cost, **moved})


def _fit_strategy(spec: GpuSpec, rows: pd.DataFrame, free: dict) -> FitResult:
    return fit_points(measured_points(rows, spec), spec, free)


def is_mla(points: pd.DataFrame) -> pd.Series:
    """Rows of MLA workloads (kv_lora_rank > 0; bench CSVs from before issue 23 have none)."""
    if "kv_lora_rank" not in points:
        return pd.Series(False, index=points.index)
    return pd.to_numeric(points["kv_lora_rank"], errors="coerce").fillna(0) > 0


def owned_rows(points: pd.DataFrame, strategy: str, mla: bool = False) -> pd.DataFrame:
    """The rows of `points` whose fit `strategy` owns (its own plans and those of entries that run its kernel):
    of K/V-head workloads, or (mla) of MLA workloads, which only its `mla_families` see."""
    owner = points["strategy"].map(lambda name: strategies.fit_owner(name, mla) if name in strategies.REGISTRY
                                   else None)
    return points[(owner == strategy) & (is_mla(points) == mla)]


def fit_owners() -> dict[str, tuple[str, tuple[str, ...], bool]]:
    """Report key -> (owner, the cost families it fits, on MLA rows): a strategy's K/V-head families (key:
    the strategy) and its MLA families (key: strategy + '-mla'), apart: they share no family, so neither
    fit moves the other's parameters."""
    owners = {s.name: (s.name, tuple(s.families), False) for s in strategies.REGISTRY.values() if s.families}
    owners.update({s.name + mla.FAMILY_SUFFIX: (s.name, tuple(s.mla_families), True)
                   for s in strategies.REGISTRY.values() if s.mla_families})
    return owners


def fit_jobs(points: pd.DataFrame) -> dict[str, tuple[tuple[str, ...], pd.DataFrame]]:
    """Report key (fit_owners) -> (the cost families it fits, its rows), for every owner with rows."""
    jobs = {key: (families, owned_rows(points, owner, on_mla))
            for key, (owner, families, on_mla) in fit_owners().items()}
    return {key: job for key, job in jobs.items() if not job[1].empty}


def refit_strategy(spec: GpuSpec, data: dict, points: pd.DataFrame, strategy: str) -> FitResult:
    """`strategy`'s families of the calibrated `spec` fitted again as calibrate_spec fits them (from the
    calibration data's bandwidth curve and launch time, the registry's parameters free), every other
    family kept: after a deliberate model change of one strategy, its calibration without a GPU."""
    cost, _ = starting_costs(pd.DataFrame(data["bandwidth"]), data["launch_overhead_us"])
    start = dataclasses.replace(spec, cost={**spec.cost, **{f: cost[f] for f in strategies.families_of(strategy)}})
    return _fit_strategy(start, owned_rows(points, strategy), strategies.all_families())


def fit_workers(n_strategies: int) -> int:
    """Processes calibrate_spec fits in: one per strategy with points, at most one per CPU."""
    return max(1, min(n_strategies, os.cpu_count() or 1))


def _fit_all(spec: GpuSpec, jobs: dict[str, pd.DataFrame]):
    """(strategy, FitResult) in order. The strategies' families are disjoint, so their fits are
    independent: run them in parallel processes ('spawn': the parent may hold a CUDA context)."""
    workers = fit_workers(len(jobs))
    if workers <= 1:
        yield from ((s, fit_job(spec, s, rows)) for s, rows in jobs.items())
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {s: pool.submit(fit_job, spec, s, rows) for s, rows in jobs.items()}
        yield from ((s, futures[s].result()) for s in jobs)


def calibrate_spec(base: GpuSpec, bandwidth: pd.DataFrame, points: pd.DataFrame, kernels: dict,
                   launch_overhead_us: float, source: str, progress=None) -> tuple[GpuSpec, dict]:
    """Fit the bandwidth curve, then each strategy's cost families on its own points (fit_jobs). An MLA
    family is kept only where MLA points fitted it: without, GpuSpec.cost_for falls back to its
    partitioning's family, not to unfitted starting values."""
    cost, bandwidth_fit = starting_costs(bandwidth, launch_overhead_us)
    jobs = fit_jobs(points)
    fitted = {f for families, _ in jobs.values() for f in families}
    cost = {f: c for f, c in cost.items() if f not in strategies.mla_families() or f in fitted}
    spec = dataclasses.replace(base, hbm_read_gbps=round(float(bandwidth["read_gbps"].max()), 1), cost=cost,
                               kernels=dict(kernels), source=source, profile_source="calibrated",
                               profile_date=source.split()[1] if source.startswith("calibrated ") else None)
    report = {"bandwidth_fit": bandwidth_fit, "launch_overhead_us": launch_overhead_us}
    for phase in tie_phases(jobs):
        for key, fit in _fit_all(spec, {key: jobs[key][1] for key in phase}):
            families, rows = jobs[key]
            spec = dataclasses.replace(spec, cost={**spec.cost, **{f: fit.spec.cost_for(f) for f in families}})
            report[key] = {"points": int(len(rows)), "iterations": fit.iterations, "mape_pct": fit.mape,
                           "max_abs_pct": float(np.max(np.abs(np.expm1(fit.residuals))) * 100),
                           "residuals_log": [round(float(r), 5) for r in fit.residuals]}
            if progress:
                progress(key, report[key])
    return with_in_sample_bands(spec, points), report


def with_in_sample_bands(spec: GpuSpec, points: pd.DataFrame) -> GpuSpec:
    """The fitted profile with error bands from its own calibration residuals, widened by
    bands.IN_SAMPLE_WIDENING (in-sample residuals understate out-of-sample errors): decode rows give
    the decode bands; paged / fp8 / verify rows (calibrate --add-points) their serving regimes' bands
    and the provenance of the serving terms they fitted (validation/serving_bands.py)."""
    from attnsim.validation.bands import IN_SAMPLE_WIDENING, error_bands
    from attnsim.validation.compare import predict_measurements
    from attnsim.validation.serving_bands import fitted_table, with_regimes

    rows = predict_measurements(points[points["status"].fillna("ok") == "ok"] if "status" in points else points, spec)
    if rows.empty:
        return spec
    rows = with_regimes(rows)
    basis = f"calibration residuals x {IN_SAMPLE_WIDENING} (in-sample, widened)"
    decode = rows[[not r for r in rows["regimes"]]]
    bands = error_bands(decode, basis, widen=IN_SAMPLE_WIDENING) if not decode.empty else {}
    return dataclasses.replace(spec, error_bands=bands,
                               serving_terms=fitted_table(rows, spec.source, basis, IN_SAMPLE_WIDENING))
