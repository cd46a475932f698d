"""Choosing calibration points by information within a GPU-time budget (issue 21).

Information. Each fit owner o (strategies.fit_owner: the entry whose cost families a point's
measurement fits) keeps its information matrix M_o = lambda I + sum over picked points of j j^T,
j the point's row of d log t / d x (validation/sensitivity.py: the fit's own coordinates, at a prior
profile). A point's gain is log det(M_o + j j^T) - log det M_o = log(1 + j^T M_o^-1 j) (matrix
determinant lemma), D-optimal style; its cost the GPU seconds it adds (validation/point_cost.py:
its row, plus its workload's set-up and its kernel's compile when no picked point paid them yet).

Greedy picks, each:
1. while a cost family the pool exercises has no picked point: the point with the most information
   per second among those that launch such a family (so every family is fitted, never defaulted);
2. otherwise, the regime (`stratum_of`: owner, spec asked, head dim, head layout, batch 1 or more,
   context class) furthest below its share of the pool, and in it the point with the most
   information per second.
Stops when nothing affordable is left in the budget or nothing left adds information (a point whose
plan exercises none of its owner's free parameters has gain 0 and is never picked). Deterministic:
ties go to the lower pool index.

Why regimes keep their share: the model is not exact, and information alone goes to the points
where parameters show most, the extremes (one MQA sequence at 400k tokens on 33 CTAs), which are
where it is least exact (the shipped H200 profile is 16.5% off stream-K's MQA points at 8k-64k, 3-5%
off the rest). A fit to them is a fit to the model's error: in the replay (scripts/calibration_replay.py,
docs/validation.md) information alone gave stream-K 16% MAPE on the standard sweep at 15 s of GPU
time. Within a regime the model's error is alike, and information chooses.
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
    stratum: str = ""  # the regime it stands for (`stratum_of`): picks keep the pool's mix of regimes
    requested: str = ""  # the spec as the pool asks it ('streamk', 'streamk:grid=33'): what is timed
    families: frozenset[str] = frozenset()  # the cost families its plan launches


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


def make_candidates(plans: list[Plan], requested: list[str], prior: GpuSpec, costs: PointCosts = PointCosts(),
                    timer: TimerConfig = TimerConfig()) -> list[Candidate]:
    """Candidates of plans whose strategy has a fit owner (pool order kept as `index`; `requested`: the
    spec each plan was asked as, 'streamk' or the option variant 'streamk:grid=33'), each costed at its
    own timer (point_cost.point_timer, capped by `timer`)."""
    out = []
    for index, (plan, asked) in enumerate(zip(plans, requested)):
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
                             _variant_key(plan), stratum_of(owner, asked, w), asked,
                             frozenset(launch.family for launch in plan.schedule.launches)))
    return out


def stratum_of(owner: str, requested: str, w) -> str:
    """The regime a point stands for: its fit owner, the spec asked (an option variant is its own
    regime), head dim, head layout (MHA / GQA / MQA: how many outputs share a K/V stream), one
    sequence or more, and context class (< 8k tokens: fixed costs dominate; >= 64k: streaming does)."""
    context = "short" if w.max_context < 8192 else "long" if w.max_context >= 65536 else "mid"
    layout = "mha" if w.group == 1 else "mqa" if w.kv_heads == 1 else "gqa"
    return f"{owner}|{requested}|d{w.head_dim}|{layout}|b{'1' if w.batch == 1 else 'n'}|{context}"


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
    """Picks within `budget_s` (module docstring): the regime furthest below its share of the pool,
    and in it the point with the most information per GPU second."""
    state, picks, spent = _Greedy(candidates, jacs, costs, ridge), [], costs.start_s
    while True:
        cost = state.cost()
        usable = state.usable(cost, budget_s - spent)
        if not usable.any():
            break
        first = state.uncovered(usable)  # a family no pick launches yet comes first
        pick = state.take(state.best_in(first if first.any() else state.regime_behind(usable), usable, cost), cost)
        picks.append(pick)
        spent += pick.cost_s
    return Selection(tuple(picks), budget_s, costs.start_s)


class _Greedy:
    """What select_points tracks: information per owner, what is paid for, regimes' counts."""

    def __init__(self, candidates, jacs, costs: PointCosts, ridge: float):
        n = len(candidates)
        self.candidates, self.costs = candidates, costs
        self.infos = {o: _Information(j, ridge) for o, j in jacs.items()}
        self.gain = np.zeros(n)
        for info in self.infos.values():
            self.gain[list(info.jac.members)] = info.gains()
        self.row_s = np.array([c.row_s for c in candidates])
        self.setup_s = np.array([c.setup_s for c in candidates])
        self.workloads = np.array([c.workload_key for c in candidates])
        self.variants = np.array([c.variant_key for c in candidates])
        self.open_workload, self.open_variant = np.ones(n, bool), self.variants != ""
        names, self.stratum = np.unique([c.stratum for c in candidates], return_inverse=True)
        self.share, self.in_stratum = np.bincount(self.stratum, minlength=len(names)) / n, np.zeros(len(names))
        self.taken = np.zeros(n, bool)
        self.families = [c.families for c in candidates]
        self.covered: set[str] = set()

    def cost(self) -> np.ndarray:
        """Each candidate's marginal GPU seconds: its row, and set-up / compile nobody paid yet."""
        return self.row_s + self.setup_s * self.open_workload + self.costs.compile_s * self.open_variant

    def usable(self, cost: np.ndarray, left_s: float) -> np.ndarray:
        return ~self.taken & (self.gain > MIN_GAIN) & (cost <= left_s)

    def uncovered(self, usable: np.ndarray) -> np.ndarray:
        """Usable points that launch a cost family no pick launches yet."""
        return usable & np.array([bool(f - self.covered) for f in self.families])

    def regime_behind(self, usable: np.ndarray) -> np.ndarray:
        """Usable points of the regime, among those with one, furthest below its share of the pool."""
        open_strata = np.unique(self.stratum[usable])
        deficit = self.share[open_strata] * (self.taken.sum() + 1) - self.in_stratum[open_strata]
        return usable & (self.stratum == open_strata[int(np.argmax(deficit))])

    def best_in(self, among: np.ndarray, usable: np.ndarray, cost: np.ndarray) -> int:
        """The point of `among` with the most information per GPU second (ties: the lower index)."""
        return int(np.argmax(np.where(among & usable, self.gain / cost, -np.inf)))

    def take(self, best: int, cost: np.ndarray) -> Pick:
        chosen = self.candidates[best]
        info = self.infos[chosen.owner]
        reason = info.add(info.jac.members.index(best))
        pick = Pick(chosen, float(self.gain[best]), float(cost[best]), reason)
        self.taken[best] = True
        self.covered |= self.families[best]
        self.in_stratum[self.stratum[best]] += 1
        self.open_workload &= self.workloads != chosen.workload_key
        self.open_variant &= self.variants != chosen.variant_key
        self.gain[list(info.jac.members)] = info.gains()
        return pick


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
