"""Planning shorthands for tests: every schedule a test checks is made the way the product makes it
(attnsim.planner.make_plan: the resolver, then the partition), never a partition called by hand."""

from __future__ import annotations

from attnsim.planner.choose import make_plan
from attnsim.plans.spec import parse_plan_spec


def plan(spec, workload, gpu, config=None):
    """The Schedule of `spec` (a strategy or plan spec, `auto` too) with options `config`."""
    return make_plan(spec, workload, gpu, config).schedule


plan_for = plan


def parse_spec(text: str):
    """(registry name, options as a dict) of a plan spec."""
    strategy, options = parse_plan_spec(text)
    return strategy.name, options.set()
