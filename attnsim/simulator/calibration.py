"""Fitting the cost model to measurements (no GPU needed: measurements are plain data).

- `fit_bandwidth_curve`: HBM read GB/s vs number of streaming CTAs (the membw microbenchmark)
  -> per-warp CTA rate b, knee sharpness p and saturated bandwidth B of cost.BandwidthModel.
- `fit_cost_params`: kernel timings -> CostParams of one or more kernel families, by
  Levenberg-Marquardt on log(predicted / measured) (relative errors, as MAPE is) over parameters
  kept inside physical BOUNDS, optionally weakly anchored (prior). Plans do not depend on cost parameters, so each
  point is planned once and only re-simulated while fitting, and only the launches whose families' costs
  moved (simulator/fit_times.py: a Jacobian column moves one parameter of one family).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from attnsim.simulator.cost import BandwidthModel, wide_decode_rows
from attnsim.simulator.fit_times import ScheduleTimes
from attnsim.simulator.hardware import DEFAULT_COST, CostParams, GpuSpec
from attnsim.simulator.schedule import Schedule
from attnsim.simulator.terms import TERMS

# Physical bounds of each parameter; the fit moves in an unbounded variable x mapped into them
# by lo + (hi - lo) * sigmoid(x), so no fit can wander to a meaningless corner.
BOUNDS = {
    "cta_stream_gbps_per_warp": (0.5, 60.0), "launch_overhead_us": (0.0, 30.0), "cta_fixed_us": (0.0, 30.0),
    "segment_fixed_us": (0.0, 20.0), "tile_fixed_us": (0.0, 5.0), "fixup_fixed_us": (0.0, 30.0),
    "fixup_per_peer_us": (0.0, 10.0), "bw_knee": (1.0, 12.0), "hbm_scale": (0.8, 1.0),
    "l2_dirty_fraction": (0.0, 1.5),
    # paged_hbm_scale <= 1: paged reads do not beat contiguous ones (as hbm_scale <= 1: no kernel beats the
    # measured peak). dequant down to 2 per SM per clock: an effective rate of the measured fp8 kernels
    # (216-244 registers, whole tiles converted before the dots: ~4-10 fit the H200 sweeps), far below
    # what the SM's converters retire; a fit here says how the kernel converts, not what the SM can.
    "paged_tile_fixed_us": (0.0, 5.0), "paged_hbm_scale": (0.5, 1.0), "paged_segment_fixed_us": (0.0, 5.0),
    "fp8_segment_fixed_us": (0.0, 10.0),
    "mma_flop_per_sm_clock": (256.0, 8192.0), "dequant_elem_per_sm_clock": (2.0, 1024.0),
    # per warp: up to a quarter of the SM's (a warp issues from one of 4 sub-partitions), and as far
    # below as a dependent chain of one warp's instructions can fall
    "mma_flop_per_warp_clock": (16.0, 2048.0), "dequant_elem_per_warp_clock": (0.25, 256.0),
    # per SM: from below one lone CTA's rate (~15-30 GB/s) to far above the chip's share per SM
    # (4.5 TB/s / 132 SMs = 34 GB/s): at the ceiling no SM is ever limited
    "sm_stream_gbps": (5.0, 400.0),
    # per KV token x query row above 16: up to ~2x a lone 4-warp CTA's ~17 ns per 512-byte d128 token
    # over 16 extra rows (a 32-row tile's extra math fully serial to its stream)
    "wide_tile_ns_per_row_token": (0.0, 2.0),
    # per KV token: up to a quarter of a lone 4-warp CTA's whole ~15 ns per 512-byte d 128 token
    "cta_ns_per_token": (0.0, 4.0),
    # 64-row tiles' warpgroup mma over the 16-32-row tiles' mma.sync, per FLOP: from no faster (the
    # warpgroup mma is never the slower instruction) to Hopper's dense wgmma peak over a 4-warp mma.sync
    # chain's ~1/8 of it
    "wgmma_flop_scale": (1.0, 8.0),
    # an L2 hit's latency over an HBM miss's, as a latency-bound stream sees them (~0.4-0.6 unloaded on sm90)
    "l2_hit_latency_ratio": (0.2, 1.0),
}
# A rate that caps (cost.BandwidthModel: min(share, cap)) has no gradient where it does not bind, so
# a fit starting from the default (which binds nowhere) would never move it. The fit starts these
# from a rate that binds for tile-heavy points and raises it as far as the data asks: if the data
# never needs the cap, the result is the smallest rate consistent with it (a lower bound). Only a
# field at its neutral default starts here: one that starts from physics (the datasheet's FA2 tile
# math, which binds in decode) starts there, near its answer (from 512 the FA2 fit stalls in a corner).
FIT_START = {"mma_flop_per_sm_clock": 512.0, "dequant_elem_per_sm_clock": 16.0,
             # per warp: binding for a 4-warp CTA alone on its SM (half the per-SM start)
             "mma_flop_per_warp_clock": 64.0, "dequant_elem_per_warp_clock": 2.0,
             # per SM: binding for two CTAs on one SM (the H200's bump at grids of 148-198, docs/planner.md)
             "sm_stream_gbps": 40.0,
             # the wide-tile cost from inside its bounds (0 sits on a bound: the sigmoid is flat there)
             "wide_tile_ns_per_row_token": 0.1, "cta_ns_per_token": 0.5,
             # and the paged fields from inside their bounds: the defaults (0, 1.0) sit on a bound, where
             # the sigmoid has no slope and a fit never leaves it
             "paged_tile_fixed_us": 0.1, "paged_hbm_scale": 0.9, "paged_segment_fixed_us": 0.1,
             # from 0.2 the H200 FlashDecoding fit ran it into its lower bound beside a dequant rate that
             # absorbed it (sum of squared log residuals 0.262); from 1.0 it lands at 2.8 µs (0.166)
             "fp8_segment_fixed_us": 1.0,
             # from inside their bounds (1.0 sits on l2_hit_latency_ratio's)
             "wgmma_flop_scale": 1.5, "l2_hit_latency_ratio": 0.7}
# Parameters that only some workloads exercise: fitted only when a calibration point does (a
# parameter no point depends on would be a zero column of the fit's Jacobian).
# field -> (workload) -> bool, from the serving terms (simulator/terms.py: paging, tile math, fp8 dequant).
EXERCISED_BY = {name: term.used_by for term in TERMS.values() for name in term.fields}
EXERCISED_BY["wide_tile_ns_per_row_token"] = lambda w: wide_decode_rows(w) > 0  # decode tiles above 16 rows



@dataclass(frozen=True)
class FitResult:
    spec: GpuSpec
    residuals: np.ndarray  # log(pred / meas) per point
    iterations: int

    @property
    def mape(self) -> float:
        return float(np.mean(np.abs(np.expm1(self.residuals))) * 100)


def to_bounded(name: str, x: float, bounds: tuple[float, float] | None = None) -> float:
    lo, hi = bounds or BOUNDS[name]
    return float(lo + (hi - lo) / (1.0 + np.exp(-np.clip(x, -60.0, 60.0))))


def from_bounded(name: str, value: float, bounds: tuple[float, float] | None = None) -> float:
    lo, hi = bounds or BOUNDS[name]
    # start strictly inside the bounds: at a bound the sigmoid is flat and the fit could never move
    frac = np.clip((value - lo) / (hi - lo), 0.01, 0.99)
    return float(np.log(frac / (1 - frac)))


def levenberg_marquardt(residual_fn, x0: np.ndarray, max_iter: int = 60, tol: float = 1e-9):
    """Minimise ||residual_fn(x)||^2. Forward-difference Jacobian, Marquardt diagonal scaling."""
    x = np.asarray(x0, dtype=np.float64).copy()
    r = residual_fn(x)
    lam, it = 1e-3, 0
    for it in range(1, max_iter + 1):
        step = 1e-6 * np.maximum(1.0, np.abs(x))
        jac = np.stack([(residual_fn(x + np.eye(len(x))[k] * step[k]) - r) / step[k] for k in range(len(x))], axis=1)
        a, g = jac.T @ jac, jac.T @ r
        improved = False
        while lam < 1e12:
            dx = np.linalg.solve(a + lam * np.diag(np.diag(a) + 1e-12), -g)
            r_new = residual_fn(x + dx)
            if np.all(np.isfinite(r_new)) and r_new @ r_new < r @ r:
                x, r, lam, improved = x + dx, r_new, max(lam / 3, 1e-12), True
                break
            lam *= 4
        if not improved or np.max(np.abs(dx)) < tol:
            break
    return x, r, it


def fit_bandwidth_curve(num_ctas, warps, read_gbps, knee0: float = 2.5) -> tuple[float, float, float]:
    """(cta_stream_gbps_per_warp, bw_knee, hbm_read_gbps) fitted to a read-bandwidth sweep."""
    n = np.asarray(num_ctas, np.float64) * np.asarray(warps, np.float64)  # warps streaming
    meas = np.asarray(read_gbps, np.float64)
    per_warp0 = float(np.median(meas[n <= n.min() * 8] / n[n <= n.min() * 8]))

    def residual(x):
        per_warp, knee, peak = np.exp(x)
        model = BandwidthModel(per_warp, peak, knee).aggregate(n)
        return np.log(model / meas)

    x, _, _ = levenberg_marquardt(residual, np.log([per_warp0, knee0, meas.max()]))
    per_warp, knee, peak = np.exp(x)
    return float(per_warp), float(knee), float(peak)


def with_params(spec: GpuSpec, values: dict[tuple[str, str], float]) -> GpuSpec:
    cost = dict(spec.cost)
    for family in {f for f, _ in values}:
        fields = {name: v for (f, name), v in values.items() if f == family}
        cost[family] = dataclasses.replace(spec.cost_for(family), **fields)
    return dataclasses.replace(spec, cost=cost)


def free_parameters(schedules: list[Schedule], free: dict) -> list[tuple[str, str]]:
    """(family, parameter) pairs that the given schedules exercise and that are free to fit
    (`free`: cost family -> the parameters fitted in it, e.g. the registry's all_families())."""
    families = sorted({f for s in schedules for launch in s.launches for f in (launch.family, launch.math_family) if f})
    exercised = {name for name, uses in EXERCISED_BY.items() if any(uses(s.workload) for s in schedules)}
    if any(s.attention.tile_rows for s in schedules):  # a kernel that fixes its tile rows: decode is math-capped
        exercised |= set(TERMS["tile-math"].fields)
    return [(f, name) for f in families for name in free.get(f, ()) if name not in EXERCISED_BY or name in exercised]


def start_value(params: CostParams, name: str) -> float:
    """Where a fit starts a parameter: FIT_START for a field at its neutral default, else its value."""
    value = getattr(params, name)
    return FIT_START[name] if name in FIT_START and value == getattr(DEFAULT_COST, name) else value


def fit_cost_params(schedules: list[Schedule], measured_us, spec: GpuSpec, free: dict,
                    max_iter: int = 60, bounds: dict | None = None, prior: dict | None = None) -> FitResult:
    """Fit the free CostParams of every family the schedules exercise to their measured times
    (µs, one per schedule); returns a new GpuSpec. bounds: (family, parameter) -> (lo, hi), narrower
    than BOUNDS where the caller knows better (validation/physical_fit.py). prior: (family, parameter)
    -> (anchor, sigma), a weak pull toward a physical value for parameters the points may not separate
    (validation/fit.share_prior); FitResult.residuals are the points' alone."""
    keys = free_parameters(schedules, free)
    measured = np.asarray(measured_us, np.float64)
    limits = [(bounds or {}).get(k) for k in keys]

    def spec_at(x):
        return with_params(spec, {k: to_bounded(k[1], v, b) for k, v, b in zip(keys, x, limits)})

    times = ScheduleTimes(schedules)  # re-simulates only the launches whose costs x moved

    def residual(x):
        return np.log(times(spec_at(x)) / measured)

    anchored = [(i, *(prior or {})[k]) for i, k in enumerate(keys) if k in (prior or {})]

    def with_prior(x):
        # one residual per anchored parameter, (value - anchor) / sigma, appended to the log residuals
        drift = [(to_bounded(keys[i][1], x[i], limits[i]) - anchor) / sigma for i, anchor, sigma in anchored]
        return np.concatenate([residual(x), drift])

    x0 = np.array([from_bounded(name, start_value(spec.cost_for(f), name), b) for (f, name), b in zip(keys, limits)])
    x, r, iterations = levenberg_marquardt(with_prior, x0, max_iter=max_iter)
    return FitResult(spec_at(x), r[:len(schedules)], iterations)


__all__ = ["CostParams", "FitResult", "fit_bandwidth_curve", "fit_cost_params", "free_parameters", "with_params",
           "levenberg_marquardt"]
