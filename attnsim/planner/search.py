"""The search: every candidate plan of our kernels, simulated by the model; the fastest predicted is chosen,
the plans within the tie band of it named as ties with the simplest of them (canonical.py).

    result = search(workload, gpu, PlanConfig())     # PlanResult: chosen, ranked, ties, heuristics
    make_plan("auto", workload, gpu)                 # the chosen concrete Plan (attnsim/planner/choose.py)

Order of work (bounded by candidates.py, pruned by bounds.py):
1. each entry's candidate with the most CTAs is planned (not simulated), which names its cost family and
   so its rate limits;
2. the candidates, the heuristics' plans (registry HEURISTICS) among them, are simulated in order of their lower
   bound, until the bound exceeds the fastest time so far x (1 + its family's tie band) and, for auto:tune=K,
   the K-th fastest time so far: those can neither win nor tie, and are skipped (a rule's plan that was is
   simulated when the report shows it, PlanResult.heuristics; the SDPA baselines too).
Each candidate's prediction is exactly that of `resolve_plan(strategy, workload, gpu, its options)`:
the same resolved configuration (resolved once per entry, options replaced), the same partition, the
same engine; it is named once, by its concrete options (canonical.py), so `auto` resolves to the
very plan simulated here.

batch_invariant=1 runs the plan fixed for the workload's shape (invariant.py: fa2, or a fixed chunk or
split count, chosen once per shape by its predicted mean regret over a grid of batches x contexts);
the unconstrained best is still searched, to report what invariance costs.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import time
from dataclasses import dataclass, replace

from attnsim import strategies
from attnsim.errors import InputError
from attnsim.planner import bounds, candidates as cand, canonical, invariant
from attnsim.planner.heuristics import RULES
from attnsim.planner.tieband import tie_band
from attnsim.plans.plan import resolve_plan
from attnsim.plans.spec import plan_spec
from attnsim.simulator.cost import math_bound
from attnsim.simulator.engine import SimResult, simulate
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.partition.options import PIN_FIELDS, kernel_shape
from attnsim.simulator.workload import DecodeWorkload


@dataclass(frozen=True)
class LaunchShape:
    name: str
    family: str
    grid: int
    threads: int
    regs_per_thread: int
    smem_bytes: int


@dataclass(frozen=True)
class Evaluated:
    """One simulated plan."""

    strategy: str
    options: tuple[tuple[str, int], ...]
    spec: str
    time_us: float
    achieved_gbps: float
    bw_fraction: float
    grid: int
    splits: int
    launches: tuple[LaunchShape, ...]
    form: canonical.Form | None = None  # how simple it is (None: a third-party baseline)
    bound: str = "memory"  # "compute" when its resident CTAs are held back by their SMs' tile math
    concrete: int | None = None  # what runs (canonical.concrete_key); None: known by its spec alone

    @property
    def family(self) -> str:
        return self.launches[0].family


@dataclass(frozen=True)
class Named:
    """A heuristic's or a baseline's plan: `name` (registry), a one-line `label`, its prediction."""

    name: str
    label: str
    plan: Evaluated


@dataclass(frozen=True, eq=False)
class PlanResult:
    workload: DecodeWorkload
    gpu: GpuSpec
    chosen: Evaluated  # what runs: the fastest predicted plan (canonical.pick; batch-invariant: the fixed plan)
    ranked: tuple[Evaluated, ...]  # every simulated candidate, fastest first, one per concrete plan
    tie_band_pct: float
    tie_band_source: str
    evaluator: Evaluator  # the search's simulations: the heuristics and baselines are read from it when shown
    generated: int  # candidates considered (the searched set)
    simulated: int  # of which planned and simulated (the rest were pruned by their lower bound)
    batch_invariant: bool
    unconstrained: Evaluated  # the choice without the batch-invariance restriction (= chosen otherwise)
    elapsed_ms: float
    fastest: Evaluated  # the fastest predicted plan (the ties are measured from it)
    why: str  # why `chosen` runs, in one sentence
    invariant: invariant.InvariantChoice | None = None  # batch-invariant mode: the shape's fixed plans, scored
    bounded: tuple[tuple[float, cand.Candidate], ...] = ()  # the entries' candidates with their bounds, least first

    @functools.cached_property
    def entry_bests(self) -> tuple[Evaluated, ...]:
        """Each searched entry's fastest predicted plan, fastest first: its candidates simulated in order of their bound
        until none can beat it (the search prunes an entry whose plans can neither win nor tie)."""
        ev, found = self.evaluator, []
        for name in dict.fromkeys(c.strategy for _, c in self.bounded):
            best = None
            for bound, c in ((b, c) for b, c in self.bounded if c.strategy == name):
                if best is not None and bound > best.time_us:
                    break
                e = ev.run(c)
                best = e if best is None or e.time_us < best.time_us else best
            found.append(best)
        return tuple(sorted(found, key=lambda e: e.time_us))

    @functools.cached_property
    def heuristics(self) -> tuple[Named, ...]:
        """The production rules' plans (registry HEURISTICS) and their predictions: those the search's bound
        pruned are simulated now (they could neither win nor tie), the others were simulated by it."""
        return tuple(Named(h.name, h.label, self.evaluator.heuristic(h)) for h in strategies.heuristics_for(self.workload))

    @functools.cached_property
    def baselines(self) -> tuple[Named, ...]:
        return baseline_plans(self.workload, self.gpu)

    def regret_pct(self, other: Evaluated) -> float:
        """How much slower `other` is predicted than the choice, in percent."""
        return 100.0 * (other.time_us / self.chosen.time_us - 1.0)

    def is_tie(self, other: Evaluated) -> bool:
        """Within the tie band of the fastest plan (batch-invariant mode: of the choice, either way)."""
        ref = self.chosen if self.batch_invariant else self.fastest
        return abs(other.time_us / ref.time_us - 1.0) <= self.tie_band_pct / 100.0

    @property
    def ties(self) -> tuple[Evaluated, ...]:
        return tuple(e for e in self.ranked if e is not self.chosen and self.is_tie(e))


def evaluated(strategy: str, options: tuple, spec: str, res: SimResult, form: canonical.Form | None = None,
              gpu: GpuSpec | None = None, concrete: int | None = None) -> Evaluated:
    shapes = tuple(LaunchShape(l.name, l.family, l.grid, l.resources.threads, l.resources.regs_per_thread,
                               l.resources.smem_bytes) for l in res.schedule.launches)
    bound = "compute" if gpu is not None and math_bound(gpu, res.schedule, res.launches[0].slots) else "memory"
    return Evaluated(strategy, options, spec, res.total_us, res.achieved_gbps, res.bw_fraction,
                     res.schedule.grid, res.schedule.splits, shapes, form, bound, concrete)


class Evaluator:
    """Simulates candidates of one workload, each entry resolved once and each plan spec once."""

    def __init__(self, workload: DecodeWorkload, gpu: GpuSpec, user: PlanConfig):
        self.workload, self.gpu, self.user = workload, gpu, user
        self.kernel = kernel_shape(user.options())  # the user's kernel shape
        self.contexts: dict[str, cand.StrategyContext] = {}
        self.results: dict[str, Evaluated] = {}
        self.limits: dict[str, bounds.LaunchLimits] = {}
        self._simulated: dict[tuple, list] = {}  # by Schedule.engine_digest: [schedule, its engine_key or None, result]
        self._planned: dict[str, tuple] = {}  # by candidate spec: (entry name, its context, schedule), until run

    def context(self, name: str, options: dict | None = None) -> cand.StrategyContext:
        """The entry resolved for its default kernel, or for the kernel `options` pick (cand.kernel_options)."""
        if not options and name in self.contexts:  # the default kernel, already resolved (asked per candidate)
            return self.contexts[name]
        picks = cand.kernel_options(strategies.get(name), options)
        key = name if not picks else f"{name}:{','.join(picks)}"  # one resolution per kernel of the entry
        if key not in self.contexts:
            self.contexts[key] = cand.context_for(name, self.workload, self.gpu, self.user, picks)
        return self.contexts[key]

    def run(self, candidate: cand.Candidate) -> Evaluated:
        """The candidate simulated under its one name (canonical.py), named by its concrete options."""
        key = candidate.spec
        if key not in self.results:
            name, ctx, config, schedule = self.planned(candidate)
            del self._planned[key]
            kernel = ctx.strategy.kernel_for(self.workload, config)
            res = self.simulated(schedule)
            axes = {k: v for k, v in res.schedule.options.items() if v is not None}
            form = canonical.form_of(axes, len(res.schedule.launches), ctx.shape)
            named = {**self.kernel, **axes}  # as make_plan names it: declaration order of the entry's options
            concrete = {k: named[k] for k in ctx.strategy.options_type.names() if k in named}
            self.results[key] = evaluated(name, tuple(concrete.items()), plan_spec(name, concrete), res, form, self.gpu,
                                          canonical.concrete_key(kernel.name if kernel else name, schedule))
        return self.results[key]

    def planned(self, candidate: cand.Candidate) -> tuple:
        """(its canonical entry name, the entry's context, config, schedule): the candidate partitioned once."""
        key = candidate.spec
        if key not in self._planned:
            name, options = canonical.canonical(candidate.strategy, dict(candidate.options))
            ctx = self.context(name, options)
            config = replace(ctx.config, **options)
            self._planned[key] = name, ctx, config, ctx.strategy.partition(self.workload, self.gpu, config)
        return self._planned[key]

    def limits_of(self, candidate: cand.Candidate) -> bounds.LaunchLimits:
        """The limits of the candidate's entry, named by the cost family of its plan (planned, not simulated)."""
        if candidate.strategy not in self.limits:
            family = self.planned(candidate)[3].attention.family
            self.limits[candidate.strategy] = bounds.limits_for(self.context(candidate.strategy), family)
        return self.limits[candidate.strategy]

    def simulated(self, schedule) -> SimResult:
        """simulate(schedule), or the result of a plan simulated before that the engine cannot tell apart
        (Schedule.engine_key: balanced's chunks and FlashDecoding's splits often cut a uniform batch alike)."""
        seen = self._simulated.setdefault(schedule.engine_digest(), [])
        key = schedule.engine_key() if seen else None  # keys are compared only within a digest (most are alone)
        for entry in seen:
            if entry[1] is None:
                entry[1] = entry[0].engine_key()
            if entry[1] == key:
                return replace(entry[2], schedule=schedule)
        res = simulate(schedule, self.gpu)
        seen.append([schedule, key, res])
        return res

    def heuristic(self, rule: strategies.Heuristic) -> Evaluated:
        return self.run(self.rule_candidate(rule))

    def rule_candidate(self, rule: strategies.Heuristic) -> cand.Candidate:
        """The rule's plan as a candidate: with the bounds of the entry's own candidate of those options
        (its search axes pinned to them) where there is one, else unbounded (always simulated)."""
        ctx = self.context(rule.strategy)
        options = RULES[rule.rule](ctx) if rule.rule else {}
        plain = ctx.candidate(0, 0.0, **options)
        pins = {k: v for k, v in options.items() if k in PIN_FIELDS}
        if not pins or len(pins) < len(options):
            return plain
        try:
            bounded = cand.candidates_for(ctx, pins)
        except InputError:
            return plain
        return bounded[0] if len(bounded) == 1 and bounded[0].spec == plain.spec else plain


def prune_and_run(ev: Evaluator, pool: list[cand.Candidate], best_us: float,
                  keep: int = 1) -> list[tuple[float, cand.Candidate]]:
    """Simulate `pool` by lower bound while the bound can tie the best or be among the `keep` fastest distinct
    plans (auto:tune=K times the K fastest predicted); anchors name each entry's limits. Returns the pool with
    its bounds, least first."""
    anchors = {}
    for c in pool:  # each entry's largest single-wave candidate (else its smallest) names its cost family
        ctx = ev.context(c.strategy)
        key = (c.max_ctas <= ctx.capacity, c.max_ctas if c.max_ctas <= ctx.capacity else -c.max_ctas)
        best = anchors.get(c.strategy)
        if best is None or key > best[0]:
            anchors[c.strategy] = (key, c)
    anchors = {s: c for s, (_, c) in anchors.items()}
    for c in anchors.values():
        ev.limits_of(c)
    bounded = sorted((ev.limits[c.strategy].lower_bound_us(c), i) for i, c in enumerate(pool))
    # the ties are measured from the fastest plan by its family's band: a candidate whose bound is past the fastest
    # so far x (1 + that band) can neither win nor tie it, nor any faster plan (met in bound order, it would come
    # first), so the rest, bounded higher, are skipped
    bands, limit, kept, seen = {}, best_us, [], set()  # kept: the `keep` least times of distinct plans so far
    for bound, i in bounded:
        if bound > limit and len(kept) == keep and bound > kept[-1]:
            break
        found = ev.run(pool[i])
        if found.concrete not in seen or found.concrete is None:
            seen.add(found.concrete)
            bisect.insort(kept, found.time_us)
            del kept[keep:]
        if found.time_us <= best_us:
            if found.family not in bands:
                bands[found.family] = 1.0 + tie_band(ev.gpu, found.family, ev.workload)[0] / 100.0
            reach = found.time_us * bands[found.family]  # equal times: either may rank first, so the wider band
            limit, best_us = reach if found.time_us < best_us else max(limit, reach), found.time_us
    return [(bound, pool[i]) for bound, i in bounded]


def distinct(plans) -> tuple[Evaluated, ...]:
    """Fastest first, one per concrete plan (its canonical spec; across entries, what runs: canonical.py 3),
    named by the earliest registry entry that plans it."""
    order = {name: i for i, name in enumerate(strategies.names())}
    seen, kept = set(), []
    for e in sorted(plans, key=lambda e: (e.time_us, order.get(e.strategy, len(order)), e.spec)):
        if e.spec not in seen and (e.concrete is None or e.concrete not in seen):
            seen.update({e.spec, e.concrete} - {None})
            kept.append(e)
    return tuple(kept)


def search(workload: DecodeWorkload, gpu: GpuSpec, options: PlanConfig | None = None,
           names: tuple[str, ...] | None = None) -> PlanResult:
    """The planner's result for `workload` on `gpu`. options: pinned splits/grid/dp_outputs/chunk_tokens
    (restrict the search), kernel shape, batch_invariant; names: the entries to search (default: all)."""
    started = time.perf_counter()
    options = options or PlanConfig()
    pins, user = cand.pins_of(options), replace(cand.without_pins(options), batch_invariant=None, tune=None)
    if options.batch_invariant and pins:
        raise InputError("batch_invariant", f"fixes every sequence's chunk itself; it cannot be combined with a "
                                            f"pinned {', '.join(pins)}")
    entries = cand.searched_entries(check_names(names, workload), pins, workload)
    if not entries:
        raise InputError("strategy", f"no plan of ours takes {', '.join(pins)}; the planner searches "
                                     f"{', '.join(strategies.candidates(workload))}")
    ev = Evaluator(workload, gpu, user)
    for name in entries:
        cand.check_pins(ev.context(name), pins)
    rules = [ev.rule_candidate(h) for h in strategies.heuristics_for(workload)]
    pool = [c for name in entries for c in cand.candidates_for(ev.context(name), pins)]
    if not pool:  # e.g. a hybrid with fewer outputs than one data-parallel wave: that is stream-K's plan
        raise InputError(next(iter(pins), "strategy"), f"{', '.join(entries)} has no plan for this workload "
                                                       f"({workload.output_count} outputs) with "
                                                       f"{', '.join(f'{k}={v}' for k, v in pins.items()) or 'its options'}; "
                                                       "search more strategies or pin less")
    ruled = [c for c in rules if c.strategy in entries] if not pins else []  # the rules' plans compete
    bounded = prune_and_run(ev, pool + ruled, float("inf"), max(1, options.tune or 1))
    ranked = distinct([ev.results[c.spec] for _, c in bounded if c.spec in ev.results])
    band, source = tie_band(gpu, ranked[0].family, workload)
    chosen, tied = canonical.pick(ranked, band)
    why, unconstrained, fixed = canonical.why(chosen, ranked[0], tied, band), chosen, None
    if options.batch_invariant:
        fixed = invariant_choice(workload, gpu, user, entries, names)
        chosen = ev.run(ev.context(fixed.chosen.strategy).candidate(0, 0.0, **dict(fixed.chosen.options)))
        band, source = tie_band(gpu, chosen.family, workload)
        why = fixed.why
        reach = chosen.time_us * (1.0 + band / 100.0)  # its ties, either way, whatever the search pruned
        for _, c in itertools.takewhile(lambda pair: pair[0] <= reach, bounded):
            ev.run(c)
        ranked = distinct([ev.results[c.spec] for _, c in bounded if c.spec in ev.results])
    searched = set(pool)  # the entries' own candidates (not the rules' plans)
    return PlanResult(workload, gpu, chosen, ranked, band, source, ev,
                      len({c.spec for c in pool} | {c.spec for c in ruled}), len(ev.results),
                      bool(options.batch_invariant), unconstrained, (time.perf_counter() - started) * 1e3,
                      ranked[0], why, fixed, tuple(pair for pair in bounded if pair[1] in searched))


def invariant_choice(workload: DecodeWorkload, gpu: GpuSpec, user: PlanConfig, entries: list[str],
                     names) -> invariant.InvariantChoice:
    """The plan fixed for the workload's shape (invariant.py), scored against this search unconstrained."""
    def fastest_us(w: DecodeWorkload) -> float:
        return search(w, gpu, user, names).fastest.time_us

    fixed = invariant.choose(workload, gpu, user, tuple(entries), fastest_us)
    if fixed is None:
        raise InputError("batch_invariant", f"needs a plan whose splits depend on each sequence alone; search one "
                                            f"of {', '.join(invariant.invariant_entries(strategies.candidates(workload)))}")
    return fixed


def check_names(names, workload: DecodeWorkload | None = None) -> tuple[str, ...] | None:
    if not names:
        return None
    pool = strategies.candidates(workload)
    wrong = [n for n in names if strategies.canonical(n) not in pool]
    if wrong:
        raise InputError("strategy", f"{wrong[0]} is not a plan of our kernels the planner can choose"
                                     f"{' for this workload' if workload is not None else ''}; choose from {', '.join(pool)}")
    return tuple(strategies.canonical(n) for n in names)


def baseline_plans(workload: DecodeWorkload, gpu: GpuSpec) -> tuple[Named, ...]:
    """Every modelled third-party baseline that takes the workload, with its own defaults (a library
    may refuse a shape outright: PyTorch's cuDNN backend takes head_dim <= 128, SDPA no paged or fp8
    cache): ours are never compared against a time of something that cannot run."""
    found = []
    for name in strategies.names(lambda s: s.baseline and s.predictable and s.unsupported(workload) is None):
        res = simulate(resolve_plan(name, workload, gpu).schedule, gpu)
        found.append(Named(name, strategies.get(name).summary, evaluated(name, (), name, res, gpu=gpu)))
    return tuple(found)
