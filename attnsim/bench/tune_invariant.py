"""A batch-invariant plan table whose one plan per section is chosen on the device (`attnsim plan --table OUT.json
--batch-invariant --tune K`).

The model picks a batch-invariant plan per model shape by its predicted mean regret over a grid of batches x
contexts (planner/invariant.py). Here the K invariant plans it scores best are timed at every timed cell of the
section (random inputs, fp64-checked), beside the cell's unconstrained best (`auto:tune=K`, bench/tune.py); the
one with the least mean measured regret over those cells runs in every cell (within TIE_PP points, the model's
earlier-ranked one). Still one plan for every batch of the shape, so still batch-invariant: the measurement
only chooses which fixed split size, once, offline.

    tune_invariant_section(section, cells, config, k, spec_of, candidates)   # via tune_table.tune_table
"""

from __future__ import annotations

import numpy as np

from attnsim.bench.results import point_key, row_key
from attnsim.planner.choose import cached_search, make_plan
from attnsim.planner.invariant import TIE_PP
from attnsim.plans.spec import parse_plan_spec, plan_spec
from attnsim.predict import predict_plan
from attnsim.simulator.partition.common import PlanConfig


def invariant_candidates(sample, gpu, kernel: dict, k: int) -> list[str]:
    """The K fixed plans the model scores best for the sample's shape (planner/invariant.py), as plan specs."""
    choice = cached_search(sample, gpu, PlanConfig(**kernel, batch_invariant=1)).invariant
    return [plan_spec(s.strategy, {**kernel, **dict(s.options)}) for s in choice.scored[:k]]


def measured_choice(rows: list[dict], timed: list, candidates: list[str], best_spec: str) -> tuple[str | None, dict]:
    """(the candidate that runs, {candidate: (mean %, max %)}) from the sweep's rows: per timed cell workload,
    each candidate's regret vs the fastest ok row of that cell (the candidates and `best_spec`'s); (None, {})
    when no cell ran every candidate."""
    by_key = {row_key(r): r for r in rows if r["status"] == "ok"}
    regrets = {c: [] for c in candidates}
    for w in timed:
        times = {s: by_key[point_key(s, w)]["time_us"] for s in (*candidates, best_spec) if point_key(s, w) in by_key}
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


def apply_choice(section: dict, cells_workloads: list, timed: list, rows: list[dict], chosen: str, gpu) -> None:
    """Every cell of `section` runs `chosen`: time_us measured where its cell was timed, else predicted."""
    by_key = {row_key(r): r for r in rows if r["status"] == "ok"}
    strategy, options = parse_plan_spec(chosen)
    for cell, w in cells_workloads:
        row = by_key.get(point_key(chosen, w)) if w in timed else None
        predicted = round(predict_plan(make_plan(chosen, w, gpu)).total_us, 3)
        cell.update(model_spec=cell["spec"], strategy=strategy.name, options=options.set(), spec=chosen,
                    predicted_us=predicted, time_us=round(float(row["time_us"]), 3) if row else predicted)


def describe(chosen: str, scores: dict, cells: int, best_spec: str) -> str:
    mean, worst = scores[chosen]
    others = "; ".join(f"{c} {m:.1f}%" for c, (m, _) in scores.items() if c != chosen)
    return (f"batch-invariant, measured: {chosen} runs in every cell, the least mean measured regret vs each "
            f"cell's fastest ({best_spec} and the candidates) over {cells} timed cells: {mean:.1f}% mean, "
            f"{worst:.1f}% max (the model's other candidates: {others or 'none'})")
