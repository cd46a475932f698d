"""Fitting the cost model to measurements (no GPU needed: measurements are plain data).

- `fit_bandwidth_curve`: HBM read GB/s vs number of streaming CTAs (the membw microbenchmark)
  -> per-warp CTA rate b, knee sharpness p and saturated bandwidth B of cost.BandwidthModel.
- `fit_cost_params`: kernel timings -> CostParams of one or more kernel families, by
  Levenberg-Marquardt on log(predicted / measured) (relative errors, as MAPE is) over parameters
  kept inside physical BOUNDS. Plans do not depend on cost parameters, so each
  point is planned once and only re-simulated while fitting.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from attnsim.simulator.cost import BandwidthModel
from attnsim.simulator.engine import simulate
from attnsim.simulator.hardware import CostParams, GpuSpec
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.schedule import Schedule
from attnsim.simulator.workload import DecodeWorkload

# Physical bounds of each parameter; the fit moves in an unbounded variable x mapped into them
# by lo + (hi - lo) * sigmoid(x), so no fit can wander to a meaningless corner.
BOUNDS = {
    "cta_stream_gbps_per_warp": (0.5, 60.0), "launch_overhead_us": (0.0, 30.0), "cta_fixed_us": (0.0, 30.0),
    "segment_fixed_us": (0.0, 20.0), "tile_fixed_us": (0.0, 5.0), "fixup_fixed_us": (0.0, 30.0),
    "fixup_per_peer_us": (0.0, 10.0), "bw_knee": (1.0, 12.0), "hbm_scale": (0.8, 1.0),
    "l2_dirty_fraction": (0.0, 1.5),
}



@dataclass(frozen=True)
class MeasuredPoint:
    strategy: str
    workload: DecodeWorkload
    time_us: float
    config: PlanConfig = PlanConfig()


@dataclass(frozen=True)
class FitResult:
    spec: GpuSpec
    residuals: np.ndarray  # log(pred / meas) per point
    iterations: int

    @property
    def mape(self) -> float:
        return float(np.mean(np.abs(np.expm1(self.residuals))) * 100)


def to_bounded(name: str, x: float) -> float:
    lo, hi = BOUNDS[name]
    return float(lo + (hi - lo) / (1.0 + np.exp(-np.clip(x, -60.0, 60.0))))


def from_bounded(name: str, value: float) -> float:
    lo, hi = BOUNDS[name]
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


def _with_params(spec: GpuSpec, values: dict[tuple[str, str], float]) -> GpuSpec:
    cost = dict(spec.cost)
    for family in {f for f, _ in values}:
        fields = {name: v for (f, name), v in values.items() if f == family}
        cost[family] = dataclasses.replace(spec.cost_for(family), **fields)
    return dataclasses.replace(spec, cost=cost)


def plan_points(points: list[MeasuredPoint], spec: GpuSpec) -> list[Schedule]:
    from attnsim.resolve import plan  # the registry's partitioners, with each point's resolved config

    return [plan(p.strategy, p.workload, spec, p.config) for p in points]


def free_parameters(schedules: list[Schedule], free: dict | None = None) -> list[tuple[str, str]]:
    """(family, parameter) pairs that the given schedules exercise and that are free to fit
    (default: what the registry's strategies fit in each family they own)."""
    if free is None:
        from attnsim.strategies import all_families

        free = all_families()
    families = sorted({launch.family for s in schedules for launch in s.launches})
    return [(f, name) for f in families for name in free.get(f, ())]


def fit_cost_params(points: list[MeasuredPoint], spec: GpuSpec, free: dict | None = None,
                    max_iter: int = 60) -> FitResult:
    """Fit the free CostParams of every family the points exercise; returns a new GpuSpec."""
    schedules = plan_points(points, spec)
    keys = free_parameters(schedules, free)
    measured = np.array([p.time_us for p in points])

    def spec_at(x):
        return _with_params(spec, {k: to_bounded(name, v) for k, (_, name), v in zip(keys, keys, x)})

    def residual(x):
        s = spec_at(x)
        return np.log(np.array([simulate(sched, s).total_us for sched in schedules]) / measured)

    x0 = np.array([from_bounded(name, getattr(spec.cost_for(f), name)) for f, name in keys])
    x, r, iterations = levenberg_marquardt(residual, x0, max_iter=max_iter)
    return FitResult(spec_at(x), r, iterations)


__all__ = ["CostParams", "FitResult", "MeasuredPoint", "fit_bandwidth_curve", "fit_cost_params",
           "levenberg_marquardt"]
