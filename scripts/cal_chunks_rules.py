"""What a fixed chunk rule can reach, measured: the cal-chunks study's rows (scripts/cal_chunks_study.py) per
model shape, each fixed plan's regret on every workload of the shape vs the fastest row there.

    PYTHONPATH=. python3 scripts/cal_chunks_rules.py results/h100/cal_chunks.csv --gpu h100

Per workload: `auto`, batch-invariant `auto` and the best timed fixed plan, regret in % (the best fixed plan
per workload is not batch-invariant: invariance fixes one rule per shape). Per shape: the fixed rules timed on
every one of its workloads (a rule not timed on a workload counts there when its concrete plan, compared by
validation.planner_oracle.fingerprint, was timed under another spec), least mean regret first.
"""

from __future__ import annotations

import argparse

import pandas as pd

from attnsim.bench.sweep import CAL_CHUNKS_MAX_KV_GB, sweep
from attnsim.errors import InputError
from attnsim.planner.choose import planned_name
from attnsim.profiles import resolve_gpu
from attnsim.validation.planner_oracle import fingerprint

SHOWN = 3  # rules printed per shape


def rows_of(frame: pd.DataFrame, w) -> pd.DataFrame:
    contexts = ";".join(map(str, w.contexts)) if len(set(w.contexts)) > 1 else str(w.contexts[0])
    return frame[(frame.batch == w.batch) & (frame.q_heads == w.q_heads) & (frame.kv_heads == w.kv_heads)
                 & (frame.head_dim == w.head_dim) & (frame.contexts == contexts)]


def regrets(frame: pd.DataFrame, gpu) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per workload: auto / invariant / best fixed regret %, per (shape, workload, rule): regret %)."""
    auto = planned_name()
    per_workload, per_rule = [], []
    for w in sweep("cal-chunks", max_kv_gb=CAL_CHUNKS_MAX_KV_GB):
        g = rows_of(frame, w)
        if g.empty:
            continue
        best = g.time_us.min()
        fixed = g[~g.requested.str.startswith(auto)]
        by_plan = {fingerprint(r.requested, w, gpu): r.time_us for r in fixed.itertuples()}
        label, shape = f"b{w.batch} {w.max_context}{'' if len(set(w.contexts)) == 1 else ' ragged'}", \
            f"{w.q_heads}/{w.kv_heads} d{w.head_dim}"
        per_workload.append({"shape": shape, "workload": label,
                             "auto": 100 * (g[g.requested == auto].time_us.min() / best - 1),
                             "invariant": 100 * (g[g.requested == f"{auto}:batch_invariant=1"].time_us.min() / best - 1),
                             "best_fixed": 100 * (fixed.time_us.min() / best - 1)})
        for spec in set(frame[frame.q_heads == w.q_heads].requested) - {auto, f"{auto}:batch_invariant=1"}:
            try:
                key = fingerprint(spec, w, gpu)
            except InputError:  # more CTAs than a plan may have here
                continue
            if key in by_plan:
                per_rule.append({"shape": shape, "workload": label, "rule": spec,
                                 "regret": 100 * (by_plan[key] / best - 1)})
    return pd.DataFrame(per_workload), pd.DataFrame(per_rule)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv")
    ap.add_argument("--gpu", default="h200")
    args = ap.parse_args()
    frame = pd.read_csv(args.csv, dtype={"contexts": str, "options": str})
    per_workload, per_rule = regrets(frame[frame.status == "ok"], resolve_gpu(args.gpu))
    print(per_workload.round(2).to_string(index=False))
    means = per_workload[["auto", "invariant", "best_fixed"]].mean()
    print(f"mean regret %: auto {means.auto:.2f}, batch-invariant auto {means.invariant:.2f}, "
          f"best fixed plan per workload {means.best_fixed:.2f}")
    best_rules = []
    for shape, g in per_rule.groupby("shape"):
        n = g.workload.nunique()
        table = g.groupby("rule").regret.agg(["count", "mean", "max"])
        table = table[table["count"] == n].sort_values("mean")
        print(f"\n{shape}: {n} workloads; invariant auto {per_workload[per_workload['shape'] == shape].invariant.mean():.2f}% "
              f"mean\n{table.head(SHOWN).round(2).to_string()}")
        best_rules.append((n, table["mean"].iloc[0]))
    total = sum(n for n, _ in best_rules)
    print(f"\nbest measured rule per shape: {sum(n * m for n, m in best_rules) / total:.2f}% mean over {total} workloads")


if __name__ == "__main__":
    main()
