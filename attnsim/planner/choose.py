"""make_plan: any registry entry's concrete Plan, `auto` included — the one entry point every consumer
(predict, the launcher, bench, scenarios, reports) plans through.

    plan = make_plan("auto", workload, gpu)        # the planner's choice: plan.spec 'streamk:grid=264',
                                                   # plan.requested 'auto'
    plan = make_plan("flashdecoding:splits=4", workload, gpu)   # a plan spec names one plan
    plan = make_plan("fa2", workload, gpu, PlanConfig(kv_tile_tokens=32))

A plain strategy is resolved by attnsim.plans.resolve_plan; `auto` (the entry marked `planned`) runs
the search (search.py) once per (workload, GPU, options) and resolves the chosen strategy with the
chosen options and the user's kernel shape, so the Plan `auto` returns is exactly the candidate the
search simulated.
"""

from __future__ import annotations

import functools

from attnsim import strategies
from attnsim.errors import InputError
from attnsim.planner.candidates import pins_of
from attnsim.planner.search import PlanResult, search
from attnsim.plans.plan import Plan, option_values, options_for, resolve_plan
from attnsim.plans.spec import parse_plan_spec, plan_spec
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.occupancy import CtaResources
from attnsim.simulator.partition import options as opts
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.workload import DecodeWorkload


@functools.lru_cache(maxsize=512)
def cached_search(workload: DecodeWorkload, gpu: GpuSpec, options: PlanConfig) -> PlanResult:
    return search(workload, gpu, options)


def make_plan(spec: "str | strategies.Strategy", workload: DecodeWorkload, gpu: GpuSpec,
              options: opts.Options | PlanConfig | dict | None = None, *, given: CtaResources | None = None) -> Plan:
    """The concrete Plan of `spec` (a strategy name or a plan spec; `options` add to the spec's, a
    shared bag keeping what the strategy declares). given: the attention CTA's known resources."""
    if isinstance(spec, strategies.Strategy):
        spec = spec.name
    strategy, chosen = spec_options_of(spec, options)
    if not strategy.planned:
        return resolve_plan(strategy, workload, gpu, chosen, given=given)
    result = cached_search(workload, gpu, PlanConfig(**chosen.set()))
    kernel = opts.kernel_shape(chosen.set())
    return resolve_plan(result.chosen.strategy, workload, gpu, {**kernel, **dict(result.chosen.options)},
                        given=given, requested=plan_spec(strategy.name, chosen))


def spec_options_of(spec: str, options=None) -> tuple[strategies.Strategy, opts.Options]:
    """(the entry, its options: the spec's over `options`, a shared bag keeping what the entry declares)."""
    strategy, spec_options = parse_plan_spec(spec)
    return strategy, options_for(strategy, {**option_values(options), **spec_options.set()})


def named_spec(plan, kernel: dict) -> str:
    """The plan spec of a searched or scored plan (strategy + options) run with the `kernel` shape."""
    return plan_spec(plan.strategy, {**kernel, **dict(plan.options)})


def tuning_specs(spec: str, workload: DecodeWorkload, gpu: GpuSpec,
                 options: opts.Options | PlanConfig | dict | None = None) -> tuple[str, ...]:
    """The plans `auto:tune=K` times on the device (bench/tune.py), as plan specs make_plan resolves to exactly
    the plans the search simulated: the model's choice first, then the next fastest predicted distinct plans,
    K in all (fewer where the workload has fewer; the search keeps them all, search.prune_and_run's `keep`), then
    the batch-invariant plan where it is none of them.

    The invariant plan runs split-KV's chunked kernel (fixed chunks in longest-first order), which the model
    prices like the split kernel at the same grid but which measures apart from it (0.97-1.01x at equal grids,
    and the fastest plan of 16-17 of the oracle studies' 106 uniform workloads, where the search never ranks it):
    one more trial covers what the model cannot tell. Its search is once per model shape (~5 s, cached).
    With batch_invariant=1: the K fixed plans the model scores best for the shape. A spec without tune: its one plan."""
    strategy, chosen = spec_options_of(spec, options)
    count = chosen.set().get("tune") if strategy.planned else None
    if not count:
        return (make_plan(spec, workload, gpu, options).spec,)
    kernel = opts.kernel_shape(chosen.set())
    if chosen.set().get("batch_invariant"):  # the shape's K best fixed plans (timed on its grid: bench/tune_invariant)
        fixed = cached_search(workload, gpu, PlanConfig(**kernel, batch_invariant=1)).invariant
        ranked = [fixed.chosen, *(s for s in fixed.scored if s is not fixed.chosen)][:count]  # the model's first
        return tuple(named_spec(s, kernel) for s in ranked)
    config = PlanConfig(**chosen.set())
    result = cached_search(workload, gpu, config)
    ranked = [result.chosen, *(e for e in result.ranked if e is not result.chosen)][:count]
    specs = [named_spec(e, kernel) for e in ranked]
    if not pins_of(config):  # a pinned search's plans all share the pin; the invariant plan would not
        try:
            specs.append(named_spec(cached_search(workload, gpu, PlanConfig(**kernel, batch_invariant=1)).chosen, kernel))
        except InputError:  # no plan of the shape is batch-invariant (its entries take no fixed chunk)
            pass
    return tuple(dict.fromkeys(specs))


def planned_name() -> str:
    """The registry entry the planner resolves (`auto`)."""
    return strategies.names(lambda s: s.planned)[0]
