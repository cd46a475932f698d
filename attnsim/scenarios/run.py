"""Running a scenario through the model: workload + GPU spec -> plan -> simulate -> DataFrame.

The only place the reporting path touches the simulator; the plot and table functions in
attnsim/reports take what these return (DataFrames, SimResults) and never call back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import pandas as pd

from attnsim import schema, strategies
from attnsim.kernels.torch_baselines import unsupported_reason
from attnsim.scenarios.scenario import Case, Scenario
from attnsim.simulator.engine import SimResult
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.occupancy import occupancy, resident_capacity
from attnsim.planner.choose import make_plan
from attnsim.predict import predict_one, predict_records
from attnsim.validation.measured import measured_frame

Progress = Callable[[Sequence, str], Iterable]  # wraps a list of jobs to show progress (CLI: a bar)
OCCUPANCY_PROBE_TOKENS = 4096  # context of the workload planned to read a kernel's CTA shape


def no_progress(jobs: Sequence, label: str) -> Iterable:
    return jobs


def baselines_for(workload) -> tuple[str, ...]:
    """The modelled third-party baselines (PyTorch SDPA) that run `workload` as it is."""
    return tuple(n for n in strategies.baselines()
                 if strategies.get(n).predictable and unsupported_reason(n, workload) is None)


def compared_strategies(scenario: Scenario, workload) -> tuple[str, ...]:
    """What a report compares on a case: the scenario's strategies, the planner's choice, and the
    baselines that run the case (SDPA reads no page table, no fp8 cache, no ragged batch)."""
    planner = strategies.names(lambda s: s.planned)  # `auto`
    return tuple(dict.fromkeys([*scenario.strategies, *planner, *baselines_for(workload)]))


def baselines_left_out(scenario: Scenario) -> dict[str, dict[str, int]]:
    """Per baseline: why it is not compared on some cases, and on how many."""
    out: dict[str, dict[str, int]] = {}
    for case in scenario.cases():
        for name in set(strategies.baselines()) - set(baselines_for(case.workload)):
            reason = unsupported_reason(name, case.workload) or "not modelled"
            out.setdefault(name, {}).setdefault(reason, 0)
            out[name][reason] += 1
    return {name: out[name] for name in strategies.baselines() if name in out}


def scenario_predictions(scenario: Scenario, gpus: Sequence[GpuSpec] | None = None,
                         progress: Progress = no_progress, compare: bool = False) -> pd.DataFrame:
    """One row per (gpu, case, strategy): predict_records' columns + model, mix, total_tokens, gpu_source;
    with `compare`, the planner and the applicable baselines too (compared_strategies)."""
    gpus = gpus or scenario.gpus
    jobs = [(gpu, case) for gpu in gpus for case in scenario.cases()]
    rows = []
    for gpu, case in progress(jobs, f"modelling {scenario.name} on {', '.join(g.name for g in gpus)}"):
        names = compared_strategies(scenario, case.workload) if compare else scenario.strategies
        for record in predict_records(case.workload, gpu, names):
            # frames keep one scalar per cell: a ragged batch's lengths as 'a;b;c' (the CSV convention)
            rows.append({**case.labels, **schema.flat(record), "context": case.workload.context_label,
                         "gpu_source": gpu.source})
    return schema.flat_frame(rows)


def timeline_results(scenario: Scenario, gpu: GpuSpec | None = None) -> tuple[Case, list[SimResult]]:
    """The scenario's timeline workload simulated under each of its strategies (on its first GPU)."""
    gpu = gpu or scenario.gpus[0]
    case = scenario.timeline_case()
    return case, [predict_one(s, case.workload, gpu) for s in scenario.strategies]


def occupancy_frame(scenario: Scenario, gpus: Sequence[GpuSpec] | None = None) -> pd.DataFrame:
    """Blocks per SM and the binding limit of every kernel launch the scenario's strategies plan."""
    shapes = {(s.head_dim, s.group): s for s in scenario.shapes}.values()  # CTA shape depends on these
    probe = dict(dtype=scenario.dtype, q_len=scenario.q_len, page_size=scenario.page_size,
                 kv_dtype=scenario.kv_dtype)  # the serving variant decides the compiled kernel's resources
    rows = [row for gpu in (gpus or scenario.gpus) for shape in shapes
            for row in kernel_occupancy(shape.workload(1, OCCUPANCY_PROBE_TOKENS, **probe), gpu, scenario.strategies)]
    return pd.DataFrame(rows).drop_duplicates(["gpu", "kernel", "head_dim", "threads", "regs_per_thread", "smem_bytes"])


def kernel_occupancy(workload, gpu: GpuSpec, strategies: Sequence[str]) -> list[dict]:
    """For each strategy's launches on `workload`: CTA resources, per-limit blocks, the binding limit,
    and the serving settings the kernel was compiled for."""
    settings = {"tp": workload.tp, "kv_dtype": workload.cache_dtype, "page_size": workload.page_size or None,
                "q_len": workload.q_len}
    rows = []
    for strategy in strategies:
        for launch in make_plan(strategy, workload, gpu).schedule.launches:
            res = launch.resources
            occ = occupancy(gpu, res)
            rows.append({"gpu": gpu.name, "kernel": f"{strategy}/{launch.name}", "head_dim": workload.head_dim,
                         "threads": res.threads, "regs_per_thread": res.regs_per_thread,
                         "smem_bytes": res.smem_bytes, **occ.as_dict(),
                         "resident_ctas": resident_capacity(gpu, res), **settings})
    return rows


@dataclass(frozen=True, eq=False)
class ScenarioResults:
    """Everything a report shows, computed once: plain DataFrames and SimResults, no engine handles."""

    scenario: Scenario
    predictions: pd.DataFrame  # scenario_predictions on the scenario's GPUs
    whatif: pd.DataFrame | None  # scenario_predictions on the what-if GPUs (None: section off)
    occupancy: pd.DataFrame
    timeline_case: Case
    timelines: list[SimResult]  # one per strategy, on the scenario's first GPU
    measurements: pd.DataFrame | None = None  # measured_frame rows (time_us, predicted_us, errors)
    measurements_path: str = ""
    left_out: dict | None = None  # baselines_left_out: baseline -> {reason: cases}


def run_scenario(scenario: Scenario, measurements: str | None = None,
                 progress: Progress = no_progress) -> ScenarioResults:
    """Model every section of a report for `scenario`; measured rows are predicted with the
    scenario's GPU profile of the same name when there is one (see measurements.gpu_for)."""
    whatif = scenario_predictions(scenario, scenario.whatif_gpus, progress) if scenario.whatif_gpus else None
    case, timelines = timeline_results(scenario)
    return ScenarioResults(
        scenario=scenario, predictions=scenario_predictions(scenario, progress=progress, compare=True), whatif=whatif,
        occupancy=occupancy_frame(scenario, _unique_gpus(scenario.gpus + scenario.whatif_gpus)),
        timeline_case=case, timelines=timelines,
        measurements=measured_frame(measurements, preferred=scenario.gpus) if measurements else None,
        measurements_path=str(measurements or ""), left_out=baselines_left_out(scenario),
    )


def _unique_gpus(gpus) -> list[GpuSpec]:
    return list({(g.name, g.source): g for g in gpus}.values())
