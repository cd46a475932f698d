"""The plan of a calibration run: which points `attnsim calibrate` times, with which timer, in what
order, and what it expects them to cost (no GPU needed to make it).

Pool: the calibration set (bench/calibration.py: calibration_sweep x calibration_specs, the baselines
where they apply). Prior: the profile attnsim would use for the GPU today (profiles.resolve_gpu: the
shipped calibration where one ships, else a transfer or the datasheet). Points: chosen by
validation/point_selection.py within the budget, then run grouped by workload (one reference and
one K/V set-up each), in pool order.
"""

from __future__ import annotations

from dataclasses import dataclass

from attnsim.kernels.timing import TimerConfig
from attnsim.simulator.hardware import GpuSpec
from attnsim.validation.point_cost import PointCosts, point_timer, seconds_label
from attnsim.validation.point_selection import Candidate, Selection, check_budget, choose, make_candidates

DEFAULT_BUDGET_S = 180.0
QUICK_BUDGET_S = 15.0
MAX_BUDGET_S = 3600.0


@dataclass(frozen=True)
class PlannedPoint:
    candidate: Candidate
    timer: TimerConfig
    cost_s: float  # estimated GPU seconds, its workload's set-up and compile included where it pays them
    reason: str  # the parameter whose variance it reduced most

    @property
    def spec(self) -> str:
        """The spec timed: as the calibration set asks it (the harness plans it to candidate.plan)."""
        return self.candidate.requested


@dataclass(frozen=True)
class CalibrationPlan:
    points: tuple[PlannedPoint, ...]  # in run order
    selection: Selection
    prior_source: str

    def measurement_plan(self) -> list[tuple]:
        """(workload, plan spec, timer) in run order: what bench/calibration.measure_kernel_points takes."""
        return [(p.candidate.plan.workload, p.spec, p.timer) for p in self.points]

    def records(self) -> list[dict]:
        """One plain record per point, kept in the calibration data (what was chosen, and why)."""
        return [{"spec": p.spec, "workload": _label(p.candidate), "predicted_us": round(p.candidate.predicted_us, 3),
                 "warmup_ms": p.timer.warmup_ms, "rep_ms": p.timer.rep_ms, "cost_s": round(p.cost_s, 4),
                 "reason": p.reason} for p in self.points]

    def summary(self) -> list[str]:
        """Lines for the terminal: the estimate, then points per fit owner and what they pin most."""
        head = (f"calibration plan: {len(self.points)} points in ~{seconds_label(self.selection.total_s)} of GPU "
                f"time (budget {seconds_label(self.selection.budget_s)}; sensitivities at {self.prior_source})")
        lines = [head]
        for owner, count in self.selection.by_owner().items():
            reasons = {}
            for p in (p for p in self.points if p.candidate.owner == owner):
                reasons[p.reason] = reasons.get(p.reason, 0) + 1
            top = ", ".join(f"{r} {n}" for r, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:3])
            lines.append(f"  {owner}: {count} points (most informative for {top})")
        return lines


def live_plans(base: GpuSpec) -> tuple[list, list[str]]:
    """Every (workload, plan spec) of the calibration set that can run, planned for `base`: (plans, specs)."""
    from attnsim.bench import calibration as cal
    from attnsim.bench.harness import applicable
    from attnsim.planner.choose import make_plan

    specs = [(w, spec) for w in cal.calibration_sweep() for spec in applicable(cal.calibration_specs(w), w)]
    return [make_plan(spec, w, base) for w, spec in specs], [spec for _, spec in specs]


def plan_calibration(base: GpuSpec, budget_s: float, prior: GpuSpec | None = None,
                     costs: PointCosts = PointCosts(), timer: TimerConfig = TimerConfig()) -> CalibrationPlan:
    """The points to time within `budget_s` GPU seconds (module docstring); `timer` caps each point's."""
    from attnsim.profiles import resolve_gpu

    check_budget(budget_s, costs)
    prior = prior or resolve_gpu(base.name)
    candidates = make_candidates(*live_plans(base), prior, costs, timer)
    selection = choose(candidates, prior, budget_s, costs)
    cost_of = {p.candidate.index: (p.cost_s, p.reason) for p in selection.picks}
    order = sorted(cost_of, key=lambda i: i)  # pool order: a workload's points together
    by_index = {c.index: c for c in candidates}
    points = tuple(PlannedPoint(by_index[i], point_timer(by_index[i].predicted_us, timer), *cost_of[i]) for i in order)
    return CalibrationPlan(points, selection, prior.source or prior.profile_source or prior.name)


def remaining_s(costs_s: list[float], done: int, elapsed_s: float) -> float:
    """ETA after `done` of the steps whose estimated costs are `costs_s`: the estimate of what is left,
    scaled by how the run has kept to its estimate so far (pace = elapsed / estimated of the done,
    held within 1/4 to 8: one slow compile early on does not make the ETA absurd)."""
    spent_estimate = sum(costs_s[:done])
    left = sum(costs_s[done:])
    pace = elapsed_s / spent_estimate if spent_estimate > 0 and elapsed_s > 0 else 1.0
    return left * min(max(pace, 0.25), 8.0)


def _label(c: Candidate) -> str:
    w = c.plan.workload
    return f"b{w.batch} h{w.q_heads}/{w.kv_heads} d{w.head_dim} ctx {w.context_label}"
