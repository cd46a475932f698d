"""auto: the planner's choice. Not a partitioning of its own: `choose` asks the planner
(attnsim/planner) for the fastest predicted concrete plan of our kernels, and the resolver
(attnsim.resolve) resolves `auto` to that plan, so the model and the launcher run the same one.

The planner is imported when first asked (it reads the registry, which lists this module).
"""

from __future__ import annotations

from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.schedule import Schedule
from attnsim.simulator.workload import DecodeWorkload


def choose(workload: DecodeWorkload, gpu: GpuSpec, options: PlanConfig) -> tuple[str, PlanConfig]:
    """(strategy, options) of the planner's choice; `options` carries the user's kernel shape and
    batch_invariant, which the chosen options keep."""
    from attnsim.planner.search import choose_plan

    return choose_plan(workload, gpu, options)


def partition(workload: DecodeWorkload, gpu: GpuSpec, config: PlanConfig) -> Schedule:
    """The Schedule of the chosen plan (its own strategy name: the plan that runs)."""
    from attnsim.resolve import plan_for

    name, chosen = choose(workload, gpu, config)
    return plan_for(name, workload, gpu, chosen)
