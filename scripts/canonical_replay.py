"""What the canonical choice costs on measured plans: the planner's pick among the plans an oracle study
measured, the fastest predicted one against the simplest within the tie band (planner/canonical.py).

    PYTHONPATH=. python3 scripts/canonical_replay.py results/h200/planner_oracle.csv [--gpu h200] [--fewest-launches]

Per workload every measured plan of our kernels (persistent grids below the planner's floor of one CTA
per SM left out, as the planner leaves them out) is predicted with the profile and named canonically;
both picks are scored by their measured time over the best measured time. --fewest-launches replays
the rule the planner does not use (fewer launches first within the band) to show why.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from attnsim import strategies
from attnsim.bench.results import spec_label
from attnsim.planner import canonical
from attnsim.planner.search import Evaluator, distinct
from attnsim.planner.tieband import tie_band
from attnsim.plans.spec import parse_plan_spec
from attnsim.profiles import resolve_gpu
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.partition.options import PIN_FIELDS
from attnsim.validation.planner_regret import WORKLOAD_COLUMNS, workload_of


def measured_plans(rows: pd.DataFrame, ev: Evaluator) -> tuple[list, dict[str, float]]:
    """(the measured plans as the planner names and predicts them, fastest first; spec -> measured µs)."""
    times: dict[str, float] = {}
    for spec, t in zip([spec_label(r) for r in rows.to_dict("records")], rows["time_us"].astype(float)):
        strategy, options = parse_plan_spec(spec)
        axes = {k: v for k, v in options.set().items() if k in PIN_FIELDS}
        ctx = ev.context(strategy.name)
        if strategy.in_kernel_reduction and axes.get("grid", ctx.capacity) < min(ev.gpu.sm_count, ctx.capacity,
                                                                                 int(ctx.tiles.sum())):
            continue
        e = ev.run(ctx.candidate(0, 0.0, **axes))
        times[e.spec] = min(t, times.get(e.spec, float("inf")))
    plans = distinct(e for e in ev.results.values() if e.spec in times)
    return list(plans), times


def fewest_launches(ranked, band_pct):
    limit = ranked[0].time_us * (1 + band_pct / 100)
    tied = [e for e in ranked if e.time_us <= limit]
    return min(tied, key=lambda e: (e.form.launches, e.form.irregularity, e.time_us)), tuple(tied)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv")
    ap.add_argument("--gpu", default="h200")
    ap.add_argument("--fewest-launches", action="store_true")
    args = ap.parse_args()
    gpu = resolve_gpu(args.gpu)
    rule = fewest_launches if args.fewest_launches else canonical.pick
    frame = pd.read_csv(args.csv, dtype={"contexts": str, "options": str, "status": str})
    frame = frame[frame["status"].eq("ok") & frame["strategy"].isin(strategies.candidates())]
    regret = {"fastest predicted": [], "canonical": []}
    for _, rows in frame.groupby(WORKLOAD_COLUMNS, sort=False):
        w = workload_of(rows.iloc[0])
        plans, times = measured_plans(rows, Evaluator(w, gpu, PlanConfig()))
        best = min(times.values())
        chosen, _ = rule(plans, tie_band(gpu, plans[0].family, w)[0])
        regret["fastest predicted"].append(100 * (times[plans[0].spec] / best - 1))
        regret["canonical"].append(100 * (times[chosen.spec] / best - 1))
    for name, r in regret.items():
        print(f"{name:>18}: {len(r)} workloads, measured regret mean {np.mean(r):.2f}%, "
              f"p95 {np.percentile(r, 95):.2f}%, max {np.max(r):.2f}%")


if __name__ == "__main__":
    main()
