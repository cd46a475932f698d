"""Regret against the measured oracle, from an oracle-study CSV (bench.csv columns).

Per workload, the oracle is the fastest measured plan of our kernels (every row of a candidate
entry or of `auto`, status ok). A method's regret there = its measured time / oracle - 1:
- the planner: the `auto` row; batch-invariant: the `auto:batch_invariant=1` row;
- each heuristic: the row of the plan spec its rule gives on that workload (replayed with the
  profile the study planned for, as the study did);
- the registry's default entries with their defaults; the third-party baselines (uniform batches:
  SDPA has no per-sequence lengths), for reference: they are not choices of ours.
Summaries: mean, p95 and max regret in percent over the workloads where the method has a row;
on ragged batches the geomean speedup of `auto` over each speedup base; over all workloads the
worst ratio of `auto` to the best of the defaults, against the tie band.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from attnsim import strategies
from attnsim.bench.results import requested_label
from attnsim.validation.planner_oracle import TUNED, fingerprint
from attnsim.planner.choose import cached_search, planned_name
from attnsim.planner.search import Evaluator
from attnsim.plans.spec import spec_strategy
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.workload import DecodeWorkload

WORKLOAD_COLUMNS = ["batch", "q_heads", "kv_heads", "head_dim", "contexts", "dtype"]
TABLE_BEGIN, TABLE_END = "<!-- regret-table:begin -->", "<!-- regret-table:end -->"


def workload_of(row) -> DecodeWorkload:
    lengths = [int(x) for x in str(row["contexts"]).split(";")]
    context = lengths if len(lengths) > 1 else lengths[0]
    return DecodeWorkload.build(int(row["batch"]), int(row["q_heads"]), int(row["kv_heads"]), int(row["head_dim"]),
                                context, dtype=str(row["dtype"]))


def method_specs(w: DecodeWorkload, gpu: GpuSpec) -> dict[str, str]:
    """Method label -> the plan spec whose measured row is that method's time on `w`."""
    auto = planned_name()
    specs = {"planner (auto)": auto, "batch-invariant auto": f"{auto}:batch_invariant=1",
             f"tuned auto ({auto}:tune={TUNED})": f"{auto}:tune={TUNED}",
             f"tuned batch-invariant auto (tune={TUNED})": f"{auto}:batch_invariant=1,tune={TUNED}"}
    ev = Evaluator(w, gpu, PlanConfig())
    specs.update({h.name: ev.heuristic(h).spec for h in strategies.heuristics_for(w)})
    specs.update({f"default {n}": n for n in strategies.default_names()})
    specs.update({f"baseline {n}": n for n in strategies.baselines()})
    return specs


REPLAYED = "planner replayed"  # the planner re-run with another profile, scored on the measured rows


def per_workload(df: pd.DataFrame, gpu: GpuSpec, replay: GpuSpec | None = None) -> pd.DataFrame:
    """One row per workload: oracle time, each method's time (NaN where not measured), ragged flag.
    With `replay`, also the measured time of the plan the planner chooses with that profile (NaN
    where the study did not measure that plan)."""
    ok = df[df["status"].astype(str).eq("ok")].copy()
    ok["spec"] = [requested_label(r) for r in ok.to_dict("records")]  # what each row asked for
    ours = set(strategies.candidates()) | {planned_name()}
    records = []
    for _, rows in ok.groupby(WORKLOAD_COLUMNS, sort=False):
        times = dict(zip(rows["spec"], rows["time_us"].astype(float)))
        mine = rows[rows["strategy"].isin(ours)]
        if mine.empty:
            continue
        w = workload_of(rows.iloc[0])
        record = {"workload": f"b{w.batch} h{w.q_heads}/{w.kv_heads} d{w.head_dim} {w.context_label[:40]}",
                  "ragged": w.is_ragged, "tie_band_pct": cached_search(w, gpu, PlanConfig()).tie_band_pct,
                  "oracle_us": float(mine["time_us"].astype(float).min()),
                  "oracle_spec": mine.loc[mine["time_us"].astype(float).idxmin(), "spec"]}
        by_plan = {fingerprint(s, w, gpu): t for s, t in times.items() if spec_strategy(s) != planned_name()}
        record.update({m: times.get(s, by_plan.get(fingerprint(s, w, gpu), math.nan)) if spec_strategy(s) != planned_name()
                       else times.get(s, math.nan) for m, s in method_specs(w, gpu).items()})
        if replay is not None:
            spec = cached_search(w, replay, PlanConfig()).chosen.spec
            record[REPLAYED] = times.get(spec, by_plan.get(fingerprint(spec, w, gpu), math.nan))
            record["replayed_spec"] = spec
        records.append(record)
    return pd.DataFrame(records)


def regret_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per method: workloads measured, mean / p95 / max regret vs the oracle in percent (methods the study never
    timed, e.g. auto:tune=3 in a CSV from before it, are left out)."""
    methods = [c for c in table.columns
               if c not in ("workload", "ragged", "tie_band_pct", "oracle_us", "oracle_spec", "replayed_spec")]
    rows = []
    for m in methods:
        regret = (100.0 * (table[m] / table["oracle_us"] - 1.0)).dropna()
        if regret.empty:
            continue
        rows.append({"method": m, "workloads": len(regret),
                     "mean_pct": round(regret.mean(), 2), "p95_pct": round(float(np.percentile(regret, 95)), 2),
                     "max_pct": round(regret.max(), 2)})
    return pd.DataFrame(rows)


def acceptance(table: pd.DataFrame) -> dict:
    """The ragged-batch and never-worse-than-the-defaults (beyond each workload's tie band) checks."""
    auto = "planner (auto)"
    defaults = table[[f"default {n}" for n in strategies.default_names()]].min(axis=1)
    ragged = table[table["ragged"]]
    out = {f"ragged geomean speedup vs {b}": round(float(np.exp(np.log(ragged[f"default {b}"] / ragged[auto]).mean())), 3)
           for b in strategies.SPEEDUP_BASES if len(ragged)}
    worst = 100.0 * (table[auto] / defaults - 1.0)
    out["worst auto vs best default (%)"] = round(float(worst.max()), 2)
    out["workloads where auto is slower than the best default beyond the tie band"] = int(
        (worst > table["tie_band_pct"]).sum())
    out["workloads"] = len(table)
    out["ragged workloads"] = len(ragged)
    return out


def markdown(summary: pd.DataFrame, checks: dict) -> str:
    lines = ["| method | workloads | mean regret % | p95 % | max % |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {r.method} | {r.workloads} | {r.mean_pct} | {r.p95_pct} | {r.max_pct} |" for r in summary.itertuples()]
    lines += ["", *(f"- {k}: {v}" for k, v in checks.items())]
    return "\n".join(lines)


def replace_table(doc: str, table: str) -> str:
    """`doc` with the text between the regret-table markers replaced by `table`."""
    head, _, rest = doc.partition(TABLE_BEGIN)
    _, _, tail = rest.partition(TABLE_END)
    return f"{head}{TABLE_BEGIN}\n{table}\n{TABLE_END}{tail}"
