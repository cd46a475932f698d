"""The batch-invariant choices a GPU sweep will ask for, computed before its timing and in parallel
(harness.run_sweep, for the rows it still has to run: `attnsim bench`, every study script, tuned plan tables).

    shapes = prewarm_invariant(points, gpu, specs_for, jobs=16)

Fixing a model shape's batch-invariant plan scores every fixed plan over a grid of batches and contexts
(planner/invariant.py): seconds of model time per shape on one core, cached per process. A sweep that times
`auto:batch_invariant=1` or `auto:tune=K` (whose trials include the invariant plan: choose.tuning_specs) on
the oracle's 136 workloads meets ~46 shapes, and paid ~2-3 minutes of a device's time for them, one shape
at a time between kernel timings. Here one workload per shape is planned in worker processes (fork: they
start with this process's imports), each returns the choices it computed, and this process's cache takes
them, so the timing loop finds every choice made. The choices are the ones the timing loop would compute
itself (the same calls, the same cache keys): the plans timed do not change. Best effort: if the workers
fail or outlast TIMEOUT_S they are killed and the timing loop makes the choices itself, as before.
"""

from __future__ import annotations

import multiprocessing
import os
from functools import partial
from typing import Callable

from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.workload import DecodeWorkload

TIMEOUT_S = 300.0  # the serial cost on a device (~46 shapes x a few s): beyond it, workers are not helping


def needs_invariant_choice(spec: str) -> bool:
    """Whether planning `spec` asks for its shape's batch-invariant plan: the planner's entry with
    batch_invariant=1, or with tune=K (the invariant plan is one of its trials)."""
    from attnsim.bench.tune import planner_options

    chosen = planner_options(spec)
    return bool(chosen.get("batch_invariant") or chosen.get("tune"))


def plan_shape(item: tuple[DecodeWorkload, tuple[str, ...]], gpu: GpuSpec) -> dict:
    """In a worker: plan `specs` on the workload as the timing loop will; the invariant choices it made."""
    from attnsim.planner import invariant
    from attnsim.planner.choose import tuning_specs

    workload, specs = item
    for spec in specs:
        tuning_specs(spec, workload, gpu)  # auto:tune=K's trials; a spec without tune: make_plan's one plan
    return invariant.cached_choices()


def prewarm_invariant(points: list[DecodeWorkload], gpu: GpuSpec, specs_for: Callable[[DecodeWorkload], list[str]],
                      jobs: int | None = None) -> int:
    """Compute, in `jobs` processes (default: the CPUs, at most 16), the invariant choices planning
    `specs_for(w)` for `points` needs, one workload per model shape, into this process's cache. Returns the
    shapes planned (0: none needed, one process would do, or the workers failed)."""
    from attnsim.planner import invariant

    todo: dict = {}
    for w in points:
        specs = tuple(s for s in specs_for(w) if needs_invariant_choice(s))
        if specs:
            todo.setdefault(invariant.shape_key(w), (w, specs))
    jobs = min(jobs or os.cpu_count() or 1, 16, len(todo))
    if jobs < 2:
        return 0
    pool = multiprocessing.get_context("fork").Pool(jobs)  # fork: the workers share this process's imports
    try:
        results = pool.map_async(partial(plan_shape, gpu=gpu), list(todo.values())).get(TIMEOUT_S)
    except Exception:  # noqa: BLE001 (a worker's error or the timeout: the timing loop plans these itself)
        return 0
    finally:
        pool.terminate()
    for choices in results:
        invariant.adopt_choices(choices)
    return len(todo)
