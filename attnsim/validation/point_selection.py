"""Choosing calibration points by information within a GPU-time budget (issue 21).

From a pool of candidate (workload, plan) points, pick greedily the point with the most information
per GPU second, D-optimal style: each fit owner o (strategies.fit_owner) keeps its information
matrix M_o = lambda I + sum over picked points of j j^T, j the point's row of d log t / d x
(validation/sensitivity.py) at a prior profile; a point's gain is log det(M_o + j j^T) - log det M_o
= log(1 + j^T M_o^-1 j) (matrix determinant lemma), its cost the GPU seconds it adds
(validation/point_cost.py: its row, plus its workload's set-up and its kernel's compile when no
picked point paid them yet). Stops when nothing affordable is left in the budget or nothing left
adds information (a point whose plan exercises none of its owner's free parameters has gain 0 and
is never picked). Deterministic: ties go to the lower pool index.

An owner's first points have large gains (log det rises from p log lambda), so every owner gets
enough points to pin its parameters before any is refined; a family the picks leave without a point
is an error (`check_covered`), never a silent default.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attnsim import strategies
from attnsim.errors import InputError
from attnsim.kernels.timing import TimerConfig
from attnsim.plans import resources
from attnsim.plans.plan import Plan
from attnsim.simulator.engine import simulate
from attnsim.simulator.hardware import GpuSpec
from attnsim.validation.point_cost import LIBRARY_GRAPH_PER_SHAPE, PointCosts, point_timer
from attnsim.validation.sensitivity import OwnerJacobian, owner_jacobian

RIDGE = 1e-3  # lambda: (d log t / dx)^2 of an informative point is ~1e-3..1, so the first one counts
MIN_GAIN = 1e-6  # information below this (nats) is none


@dataclass(frozen=True)
class Candidate:
    """A point the calibration could time: a plan on a workload, with what its timing would cost."""

    index: int  # position in the pool (a measured table's row, or the live sweep's order)
    plan: Plan
    owner: str  # the strategy whose families its measurement fits
    predicted_us: float  # at the prior: sets its timer and its cost
    row_s: float  # GPU seconds of its harness row (point_cost.PointCosts.row_s at point_timer)
    setup_s: float  # its workload's set-up, paid by the first picked point of that workload
    workload_key: str
    variant_key: str  # its compiled kernel ('' for a library baseline: nothing of ours compiles)

    @property
    def families(self) -> frozenset[str]:
        return frozenset(launch.family for launch in self.plan.schedule.launches)


@dataclass(frozen=True)
class Pick:
    candidate: Candidate
    gain: float  # nats of log det its owner's information gained
    cost_s: float  # GPU seconds it added (row, and set-up or compile it was first to need)
    reason: str  # "family.parameter" whose variance it reduced most


@dataclass(frozen=True)
class Selection:
    picks: tuple[Pick, ...]
    budget_s: float
    start_s: float  # the run's fixed cost, inside the budget

    @property
    def total_s(self) -> float:
        return self.start_s + sum(p.cost_s for p in self.picks)

    def indices(self) -> list[int]:
        return [p.candidate.index for p in self.picks]

    def by_owner(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for pick in self.picks:
            counts[pick.candidate.owner] = counts.get(pick.candidate.owner, 0) + 1
        return counts


def make_candidates(plans: list[Plan], prior: GpuSpec, costs: PointCosts = PointCosts(),
                    timer: TimerConfig = TimerConfig()) -> list[Candidate]:
    """Candidates of plans whose strategy has a fit owner (pool order kept as `index`), each costed
    at its own timer (point_cost.point_timer, capped by `timer`)."""
    out = []
    for index, plan in enumerate(plans):
        owner = strategies.fit_owner(plan.name)
        if owner is None:
            continue
        predicted = simulate(plan.schedule, prior).total_us
        row_s = costs.row_s(predicted, point_timer(predicted, timer))
        if plan.name in LIBRARY_GRAPH_PER_SHAPE:
            row_s += costs.library_first_call_s
        w = plan.workload
        out.append(Candidate(index, plan, owner, predicted, row_s, costs.workload_s(w.kv_bytes()),
                             f"{w.batch}/{w.q_heads}/{w.kv_heads}/{w.head_dim}/{w.context_label}/{w.dtype}",
                             _variant_key(plan)))
    return out


def _variant_key(plan: Plan) -> str:
    kernel = plan.strategy.kernel_for(plan.workload)
    if kernel is None:
        return ""
    config = plan.config
    return resources.variant(kernel.name, plan.workload, config.kv_tile_tokens, config.num_warps,
                             config.num_stages).key


def jacobians(candidates: list[Candidate], prior: GpuSpec) -> dict[str, OwnerJacobian]:
    """Each owner's J over its candidates (rows index `candidates`)."""
    schedules = [c.plan.schedule for c in candidates]
    owners = sorted({c.owner for c in candidates})
    return {o: owner_jacobian(o, [i for i, c in enumerate(candidates) if c.owner == o], schedules, prior,
                              {f: strategies.all_families()[f] for f in strategies.families_of(o)})
            for o in owners}


class _Information:
    """An owner's M^-1 (Sherman-Morrison updates) and the gain of each of its candidates."""

    def __init__(self, jac: OwnerJacobian, ridge: float):
        self.jac = jac
        self.inverse = np.eye(len(jac.keys)) / ridge

    def gains(self) -> np.ndarray:
        j = self.jac.jacobian
        return np.log1p(np.einsum("ij,jk,ik->i", j, self.inverse, j))

    def add(self, row: int) -> str:
        """Take member `row` in; returns the label of the parameter, among those the point moves, whose
        variance fell most (relative). A parameter the point does not move can lose variance too,
        through its correlation with one it does, but the point is never chosen for it."""
        j = self.jac.jacobian[row]
        mj = self.inverse @ j
        denominator = 1.0 + j @ mj
        drop = np.where(j != 0.0, mj ** 2 / denominator / np.diag(self.inverse), -np.inf)
        self.inverse = self.inverse - np.outer(mj, mj) / denominator
        return self.jac.labels()[int(np.argmax(drop))]


def select_points(candidates: list[Candidate], jacs: dict[str, OwnerJacobian], budget_s: float,
                  costs: PointCosts = PointCosts(), ridge: float = RIDGE) -> Selection:
    """Greedy information-per-second picks within `budget_s` (module docstring)."""
    n = len(candidates)
    gain = np.zeros(n)
    infos = {o: _Information(j, ridge) for o, j in jacs.items()}
    for owner, info in infos.items():
        gain[list(info.jac.members)] = info.gains()
    row_s = np.array([c.row_s for c in candidates])
    setup_s = np.array([c.setup_s for c in candidates])
    workloads = np.array([c.workload_key for c in candidates])
    variants = np.array([c.variant_key for c in candidates])
    open_workload, open_variant = np.ones(n, bool), variants != ""
    taken = np.zeros(n, bool)
    spent, picks = costs.start_s, []
    while True:
        cost = row_s + setup_s * open_workload + costs.compile_s * open_variant
        usable = ~taken & (gain > MIN_GAIN) & (spent + cost <= budget_s)
        if not usable.any():
            break
        best = int(np.argmax(np.where(usable, gain / cost, -np.inf)))
        chosen = candidates[best]
        info = infos[chosen.owner]
        row = info.jac.members.index(best)
        reason = info.add(row)
        picks.append(Pick(chosen, float(gain[best]), float(cost[best]), reason))
        spent += float(cost[best])
        taken[best] = True
        open_workload &= workloads != chosen.workload_key
        open_variant &= variants != chosen.variant_key
        gain[list(info.jac.members)] = info.gains()
    return Selection(tuple(picks), budget_s, costs.start_s)


def check_covered(selection: Selection, candidates: list[Candidate]) -> None:
    """Every cost family the pool exercises has a picked point; else an InputError naming the
    first family left out and what the budget would need to reach it."""
    picked = set().union(*(p.candidate.families for p in selection.picks)) if selection.picks else set()
    needed = sorted(set().union(*(c.families for c in candidates)) - picked)
    if needed:
        raise InputError("budget", f"{selection.budget_s:g} s of GPU time leaves cost family {needed[0]} "
                                   f"without a point ({len(needed)} families in all); raise --budget")


def check_budget(budget_s: float, costs: PointCosts = PointCosts()) -> None:
    if costs.start_s >= budget_s:
        raise InputError("budget", f"{budget_s:g} s is below the run's fixed cost of ~{costs.start_s:.0f} s "
                                   "(start, bandwidth curve, launch overhead)")


def choose(candidates: list[Candidate], prior: GpuSpec, budget_s: float,
           costs: PointCosts = PointCosts()) -> Selection:
    """The picks within `budget_s`, every family covered (check_covered)."""
    check_budget(budget_s, costs)
    selection = select_points(candidates, jacobians(candidates, prior), budget_s, costs)
    check_covered(selection, candidates)
    return selection
