"""A batch-invariant plan table whose one plan per section is chosen on the device (`attnsim plan --table OUT.json
--batch-invariant --tune K`).

The model picks a batch-invariant plan per model shape by its predicted mean regret over a grid of batches x
contexts (planner/invariant.py). Here the K invariant plans it scores best are timed at every timed cell of the
section (random inputs, fp64-checked), beside the cell's unconstrained best (`auto:tune=K`, bench/tune.py); the
one with the least mean measured regret over those cells runs in every cell (within TIE_PP points, the model's
earlier-ranked one). Still one plan for every batch of the shape, so still batch-invariant: the measurement
only chooses which fixed split size, once, offline.

    candidates = invariant_candidates(sample, gpu, kernel, k)      # tune_table.tune_invariant times them, then
    chosen, scores = measured_choice(by_point, workloads, candidates, best_spec)
"""

from __future__ import annotations

import numpy as np

from attnsim.bench.results import point_key
from attnsim.planner.choose import cached_search, named_spec
from attnsim.planner.invariant import TIE_PP
from attnsim.simulator.partition.common import PlanConfig


def invariant_candidates(sample, gpu, kernel: dict, k: int) -> list[str]:
    """The K fixed plans the model scores best for the sample's shape (planner/invariant.py), as plan specs."""
    choice = cached_search(sample, gpu, PlanConfig(**kernel, batch_invariant=1)).invariant
    return [named_spec(s, kernel) for s in choice.scored[:k]]


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
