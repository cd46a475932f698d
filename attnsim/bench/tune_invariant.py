"""Batch-invariant plans chosen on the device: a plan table's one plan per section (`attnsim plan --table OUT.json
--batch-invariant --tune K`), and a bench row's `auto:batch_invariant=1,tune=K` (its shape's rule, timed on RULE_GRID).

The model picks a batch-invariant plan per model shape by its predicted mean regret over a grid of batches x
contexts (planner/invariant.py). Here that plan and the next K - 1 it scores best are timed at every timed cell of the
section (random inputs, fp64-checked), beside the cell's unconstrained best (`auto:tune=K`, bench/tune.py); the
one with the least mean measured regret over those cells runs in every cell (within TIE_PP points, the model's
earlier-ranked one). Still one plan for every batch of the shape, so still batch-invariant: the measurement
only chooses which fixed split size, once, offline.

    candidates = invariant_candidates(sample, gpu, kernel, k)      # tune_table.tune_invariant times them, then
    chosen, scores = measured_choice(by_point, workloads, candidates, best_spec)
    rule, text = tuned_rule("auto:batch_invariant=1,tune=3", w, config, prepare, run_sweep)   # a bench row's rule

A bench row has no table: its shape's rule is chosen the same way on rule_grid(w), uniform batches of the
shape (RULE_BATCHES x RULE_CONTEXTS, at most RULE_MAX_KV_BYTES of K + V each: the small and mid calls where
the rules differ), with `auto` as each point's unconstrained reference, once per shape, GPU, K and timer in
a process (cached). The grid depends on the shape alone, never on the row's batch: the rule stays fixed for
every batch of the shape. Timer noise can still pick another rule in another process; a serving engine keeps
the one it measured (a plan table).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from attnsim.bench.results import point_key, row_key
from attnsim.bench.sweep import padded_kv_bytes
from attnsim.planner.choose import planned_name, tuning_specs
from attnsim.planner.invariant import TIE_PP, shape_key
from attnsim.plans.spec import parse_plan_spec, plan_spec
from attnsim.simulator.partition.options import kernel_shape

RULE_BATCHES = (1, 4, 16, 64)
RULE_CONTEXTS = (1024, 8192, 65536, 262144)
RULE_MAX_KV_BYTES = 2e9  # K + V of a grid point as allocated
_RULES: dict = {}  # (shape, GPU, K, timer) -> (rule spec, what was timed)


def invariant_candidates(sample, gpu, kernel: dict, k: int) -> list[str]:
    """The model's batch-invariant plan for the sample's shape, then the next K - 1 it scores best
    (planner/invariant.py), as plan specs."""
    return list(tuning_specs(plan_spec(planned_name(), {**kernel, "batch_invariant": 1, "tune": k}), sample, gpu))


def measured_choice(by_point: dict, timed: list, candidates: list[str], best_spec: str) -> tuple[str | None, dict]:
    """(the candidate that runs, {candidate: (mean %, max %)}) from the sweep's rows by point key: per timed cell
    workload, each candidate's regret vs the fastest ok row of that cell (the candidates and `best_spec`'s);
    (None, {}) when no cell ran every candidate."""
    regrets = {c: [] for c in candidates}
    for w in timed:
        rows = {s: by_point.get(point_key(s, w), {"status": "no row"}) for s in (*candidates, best_spec)}
        times = {s: r["time_us"] for s, r in rows.items() if r["status"] == "ok"}
        if not all(c in times for c in candidates):
            continue  # a cell where a candidate failed scores none of them
        best = min(times.values())
        for c in candidates:
            regrets[c].append(100.0 * (times[c] / best - 1.0))
    scores = {c: (float(np.mean(r)), float(np.max(r))) for c, r in regrets.items() if r}
    if not scores:
        return None, {}
    least = min(m for m, _ in scores.values())
    return next(c for c in candidates if c in scores and scores[c][0] <= least + TIE_PP), scores


def describe(chosen: str, scores: dict, cells: int, best_spec: str) -> str:
    mean, worst = scores[chosen]
    others = "; ".join(f"{c} {m:.1f}%" for c, (m, _) in scores.items() if c != chosen)
    return (f"batch-invariant, measured: {chosen} runs in every cell, the least mean measured regret vs each "
            f"cell's fastest ({best_spec} and the candidates) over {cells} timed cells: {mean:.1f}% mean, "
            f"{worst:.1f}% max (the model's other candidates: {others or 'none'})")


def rows_by_point(run_sweep, points: list, specs: tuple, config, **sweep_kw) -> dict:
    """The bench rows of `specs` at `points` (run_sweep: harness.run_sweep, with sweep_kw), by bench point key."""
    rows = run_sweep(points, replace(config, strategies=tuple(specs)), **sweep_kw)
    return {row_key(r): r for r in rows.to_dict("records")}


def rule_grid(w) -> list:
    """Uniform batches of `w`'s shape (heads, dtypes, pages, q_len) over RULE_BATCHES x RULE_CONTEXTS, within
    RULE_MAX_KV_BYTES (at least the smallest point)."""
    shape = shape_key(w)
    points = [replace(shape, batch=b, contexts=(c,) * b) for b in RULE_BATCHES for c in RULE_CONTEXTS]
    return [p for p in points if padded_kv_bytes(p) <= RULE_MAX_KV_BYTES] or points[:1]


def tuned_rule(spec: str, w, config, prepare, run_sweep) -> tuple[str, str]:
    """(the plan spec `w` runs, what was timed) for `auto:batch_invariant=1,tune=K`: the model's invariant plan
    for `w`'s shape and the next K - 1 it scores best, timed with `auto` on rule_grid(w) (harness.run_sweep: fp64-checked,
    config's timer), the least mean measured regret chosen (measured_choice); the model's choice where no grid
    point ran every candidate. Cached per shape, GPU, K and timer. run_sweep: harness.run_sweep (passed in: the
    harness imports this module)."""
    options = parse_plan_spec(spec)[1].set()
    kernel = kernel_shape(options)
    key = (shape_key(w), config.gpu.name, options["tune"], tuple(sorted(kernel.items())), config.timer)
    if key not in _RULES:
        candidates = invariant_candidates(w, config.gpu, kernel, options["tune"])
        best = plan_spec(planned_name(), kernel)
        grid = rule_grid(w)
        by_point = rows_by_point(run_sweep, grid, (*candidates, best), config, prepare=prepare, floor=lambda b: None)
        chosen, scores = measured_choice(by_point, grid, candidates, best)
        text = (f"rule of the shape measured on {len(grid)} points: " + "; ".join(
            f"{c} {m:.2f}%" for c, (m, _) in scores.items()) if chosen else
            f"rule not measured (no point ran every one of {', '.join(candidates)}): the model's")
        _RULES[key] = (chosen or candidates[0], text)
    return _RULES[key]
