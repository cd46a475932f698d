"""What a scenario costs to report, checked against attnsim/limits.py before any modelling.

`parse_scenario` runs this (so `attnsim scenarios --check` refuses what `attnsim report` could not
finish), and the commands run it again when --gpu/--no-whatif change the GPUs. It also plans the
small things a report plans first (the timeline workload, one probe per kernel shape) so a kernel
that cannot launch on a GPU is found here, not after the modelling.
"""

from __future__ import annotations

from typing import Sequence

from attnsim import limits, strategies
from attnsim.scenarios.run import occupancy_frame, timeline_results
from attnsim.scenarios.scenario import Scenario
from attnsim.simulator.hardware import GpuSpec


def check_budget(scenario: Scenario, gpus: Sequence[GpuSpec] | None = None, compare: bool = True) -> None:
    """InputError when the report (or `plot`) of `scenario` on `gpus` (default: its own and its
    what-if GPUs) would exceed a limit; field: the scenario key that sets the size. `compare`: the
    scenario's GPUs also model the planner and the baselines (the report, `plot speedup`)."""
    gpus = list(gpus) if gpus is not None else list(scenario.gpus) + list(scenario.whatif_gpus)
    panels = len(scenario.gpus) * len(scenario.shapes) * max(len(scenario.batches), 1)
    limits.check_max(panels, limits.MAX_SCENARIO_PANELS, "models", "figure panels (GPUs x models/shapes x batches)")
    limits.check_max(len(scenario.gpus), limits.MAX_SCENARIO_GPUS, "gpus", "GPUs")
    limits.check_max(len(gpus), 2 * limits.MAX_SCENARIO_GPUS, "gpus", "GPUs (scenario and what-if)")
    cases = scenario.cases()
    limits.check_max(len(cases), limits.MAX_SCENARIO_CASES, "contexts", "cases (shapes x batches x contexts + mixes)")
    plans = len(set(scenario.strategies) | set(strategies.SPEEDUP_BASES)) * len(gpus)
    if compare:  # the report's planner search and baselines, on the scenario's own GPUs (run.compared_strategies)
        plans += (limits.PLANS_PER_SEARCH + len(strategies.baselines())) * len(scenario.gpus)
    kinds = [len(c.workload.layer_kinds()) for c in cases]  # a model with sliding windows: two per case
    limits.check_max(sum(kinds) * plans, limits.MAX_MODELLED_PLANS, "contexts",
                     "simulations (cases x layer kinds x strategies x GPUs)")
    limits.check_modelled([c.workload.output_count * k for c, k in zip(cases, kinds)], plans, "scenario")
    check_timeline(scenario)
    check_kernels_launch(scenario, gpus)


def check_timeline(scenario: Scenario) -> None:
    """The timeline workload builds and its plans stay drawable (limits.MAX_TIMELINE_CTAS)."""
    _, results = timeline_results(scenario)
    limits.check_timeline(results, "timeline")


def check_kernels_launch(scenario: Scenario, gpus: Sequence[GpuSpec]) -> None:
    """Every strategy's kernels can launch on every GPU (the occupancy section plans the same probes)."""
    occupancy_frame(scenario, list({(g.name, g.source): g for g in gpus}.values()))
