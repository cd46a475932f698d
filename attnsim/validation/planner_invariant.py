"""Batch-invariant `auto` scored offline: predicted against unconstrained `auto`, and replayed on an oracle
study's measured rows (bench CSV: results/h200/planner_oracle.csv, plus any invariant study's CSV).

Per workload (one row each):
- predicted: the invariant plan (planner/invariant.py, fixed per model shape) and the unconstrained
  choice, both from the search with the profile given; `predicted_pct` = invariant / unconstrained - 1;
- measured, where the study timed the invariant plan's concrete plan (matched by planner_oracle.
  fingerprint: entry, grid and predicted time, so a `balanced` default row whose chunk equals the fixed
  chunk counts): `measured_pct` = its time / the fastest measured plan of ours - 1; NaN where it was not
  timed (those workloads are listed, never guessed);
- predicted_16_tiles_pct: the same for the plan batch-invariant mode ran before (a fixed 16-tile chunk);
- the study's own batch-invariant row (`auto:batch_invariant=1`, the fixed 16-tile chunk it ran with):
  `study_invariant_pct`, and the study's `auto` row: `study_auto_pct`.
Regimes: uniform batches by batch (1-4, 5-16, 17-64) x context (< 4k, 4k-32k, >= 32k), and ragged.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from attnsim import strategies
from attnsim.bench.results import requested_label
from attnsim.planner.candidates import context_for, fixed_chunk
from attnsim.planner.choose import cached_search, make_plan, planned_name
from attnsim.plans.spec import spec_strategy
from attnsim.simulator.engine import simulate
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.workload import DecodeWorkload
from attnsim.validation.planner_oracle import fingerprint
from attnsim.validation.planner_regret import WORKLOAD_COLUMNS, workload_of

INVARIANT = PlanConfig(batch_invariant=1)
BATCH_EDGES = (4, 16)  # regime bounds: batch <= 4, <= 16, above
CONTEXT_EDGES = (4096, 32768)  # context < 4k, < 32k, above


def regime(w: DecodeWorkload) -> str:
    if w.is_ragged:
        return "ragged"
    b = "b1-4" if w.batch <= BATCH_EDGES[0] else ("b5-16" if w.batch <= BATCH_EDGES[1] else "b17-64")
    c = w.max_context
    ctx = "<4k" if c < CONTEXT_EDGES[0] else ("4k-32k" if c < CONTEXT_EDGES[1] else ">=32k")
    return f"{b} {ctx}"


def predicted(w: DecodeWorkload, gpu: GpuSpec) -> dict:
    result = cached_search(w, gpu, INVARIANT)
    chosen, free = result.chosen, result.unconstrained
    chunked = strategies.names(lambda s: s.candidate and "chunk_tokens" in s.search)[0]  # balanced split-KV
    chunk = fixed_chunk(context_for(chunked, w, gpu, PlanConfig()))
    old = simulate(make_plan(f"{chunked}:chunk_tokens={chunk}", w, gpu).schedule, gpu).total_us
    return {"invariant_spec": chosen.spec, "auto_spec": free.spec,
            "predicted_pct": 100.0 * (chosen.time_us / free.time_us - 1.0),
            "predicted_vs_fastest_pct": 100.0 * (chosen.time_us / result.fastest.time_us - 1.0),
            "predicted_16_tiles_pct": 100.0 * (old / free.time_us - 1.0)}


def measured_times(rows: pd.DataFrame, w: DecodeWorkload, gpu: GpuSpec) -> dict:
    """{fingerprint: fastest measured µs} over the rows of our plans (not `auto`'s: they name no plan)."""
    found: dict = {}
    for spec, t in zip(rows["spec"], rows["time_us"].astype(float)):
        if spec_strategy(spec) != planned_name():
            key = fingerprint(spec, w, gpu)
            found[key] = min(t, found.get(key, math.inf))
    return found


def replay_workload(rows: pd.DataFrame, gpu: GpuSpec) -> dict:
    w = workload_of(rows.iloc[0])
    best = float(rows["time_us"].astype(float).min())
    record = {"workload": f"b{w.batch} h{w.q_heads}/{w.kv_heads} d{w.head_dim} {w.context_label[:40]}",
              "regime": regime(w), **predicted(w, gpu)}
    times = measured_times(rows, w, gpu)
    mine = times.get(fingerprint(record["invariant_spec"], w, gpu), math.nan)
    record["measured_pct"] = 100.0 * (mine / best - 1.0)
    study = dict(zip(rows["spec"], rows["time_us"].astype(float)))
    auto = planned_name()
    record["study_invariant_pct"] = 100.0 * (study.get(f"{auto}:batch_invariant=1", math.nan) / best - 1.0)
    record["study_auto_pct"] = 100.0 * (study.get(auto, math.nan) / best - 1.0)
    return record


def replay(frame: pd.DataFrame, gpu: GpuSpec, limit: int | None = None) -> pd.DataFrame:
    """One row per workload of `frame` (rows of one or more studies, status ok) that has our plans."""
    ok = frame[frame["status"].astype(str).eq("ok")].copy()
    ok["spec"] = [requested_label(r) for r in ok.to_dict("records")]
    ours = set(strategies.candidates()) | {planned_name()}
    ok = ok[ok["strategy"].isin(ours)]
    groups = [rows for _, rows in ok.groupby(WORKLOAD_COLUMNS, sort=False)][:limit]
    return pd.DataFrame([replay_workload(rows, gpu) for rows in groups])


def summarise(values: pd.Series) -> dict:
    v = values.dropna()
    if v.empty:
        return {"n": 0, "mean": None, "p95": None, "max": None}
    return {"n": len(v), "mean": round(float(v.mean()), 2), "p95": round(float(np.percentile(v, 95)), 2),
            "max": round(float(v.max()), 2)}


COLUMNS = {"predicted_pct": "predicted vs auto", "predicted_16_tiles_pct": "16-tile chunk predicted vs auto",
           "measured_pct": "measured vs best",
           "study_invariant_pct": "study's invariant row vs best", "study_auto_pct": "study's auto row vs best"}


def by_regime(table: pd.DataFrame) -> pd.DataFrame:
    """Per regime (and all): n, mean, p95, max of each regret column, in percent."""
    rows = []
    for name, part in [("all", table), *table.groupby("regime", sort=True)]:
        row = {"regime": name, "workloads": len(part)}
        for column, label in COLUMNS.items():
            s = summarise(part[column])
            row.update({f"{label} n": s["n"], f"{label} mean": s["mean"], f"{label} p95": s["p95"],
                        f"{label} max": s["max"]})
        rows.append(row)
    return pd.DataFrame(rows)


def markdown(summary: pd.DataFrame) -> str:
    head = ["regime", "workloads"] + [f"{label} {k}" for label in COLUMNS.values() for k in ("n", "mean", "max")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join("" if pd.isna(r[h]) else str(r[h]) for h in head) + " |"
              for r in summary.to_dict("records")]
    return "\n".join(lines)
