"""The MLA sweep's tables for docs/mla.md: roofline fractions, `auto`'s regret by regime, measured and replayed.

    PYTHONPATH=. python3 scripts/mla_report.py results/h200/bench_mla.csv [--gpu h200]

Per workload of the sweep (bench --sweep mla): the fastest measured plan of ours (every strategy run, `auto`
included) with its fraction of the measured read bandwidth (bw_fraction), its TFLOP/s (achieved_tflops: the
step's unpadded FLOPs over its time) and the model's `bound` for it (cost.math_bound, the profile as shipped);
`auto`'s regret as it ran (the rows requested as `auto`) and replayed (the profile's fastest prediction among
the plans measured for the workload: what `auto` would pick if its search held only those). Regimes: heads
per GPU x batch 1-4 / 16 / 64-128, ragged apart.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from attnsim import strategies
from attnsim.profiles import resolve_gpu
from attnsim.simulator.cost import math_bound
from attnsim.simulator.engine import simulate
from attnsim.validation.measurements import load_measurements, measured_points


def regime(row) -> str:
    if row["ragged"]:
        return "ragged"
    return "batch 1-4" if row["batch"] <= 4 else "batch 16" if row["batch"] <= 16 else "batch 64-128"


def scored(csv: str, gpu) -> pd.DataFrame:
    """One row per measured plan: workload key, regime, spec, requested, time, prediction, fractions, bound."""
    frame = load_measurements(csv)
    # the rows measured_points predicts (it skips strategies the model does not cover), so they pair up
    frame = frame[(frame["status"] == "ok") & frame["strategy"].isin(strategies.predictable())].reset_index(drop=True)
    points = measured_points(frame, gpu)
    rows = []
    for point, (_, row) in zip(points, frame.iterrows()):
        plan = point.plan
        res = simulate(plan.schedule, gpu)
        rows.append({"key": (row["batch"], row["q_heads"], str(row["contexts"])), "heads": int(row["q_heads"]),
                     "regime": regime(row), "spec": plan.spec, "requested": point.requested,
                     "time_us": point.time_us, "predicted_us": res.total_us, "bw_fraction": row["bw_fraction"],
                     "tflops": row["achieved_tflops"],
                     "bound": "compute" if math_bound(gpu, plan.schedule, res.launches[0].slots) else "memory"})
    return pd.DataFrame(rows)


def per_workload(d: pd.DataFrame) -> pd.DataFrame:
    out = []
    for _, g in d.groupby("key", sort=False):
        best = g.loc[g["time_us"].idxmin()]
        auto = g[g["requested"] == "auto"]
        replayed = g.loc[g["predicted_us"].idxmin()]
        out.append({"heads": best["heads"], "regime": best["regime"], "fastest": best["spec"].split(":")[0],
                    "bw_fraction": best["bw_fraction"], "tflops": best["tflops"], "bound": best["bound"],
                    "auto_regret": (auto["time_us"].min() / best["time_us"] - 1) * 100 if len(auto) else np.nan,
                    "replayed_regret": (replayed["time_us"] / best["time_us"] - 1) * 100})
    return pd.DataFrame(out)


def markdown(w: pd.DataFrame) -> str:
    lines = ["| heads per GPU | regime | points | bw fraction median (max) | TFLOP/s median (max) | fastest | "
             "model's bound | auto regret % mean / max | replayed % mean / max |", "|---" * 9 + "|"]
    for (heads, reg), g in w.groupby(["heads", "regime"], sort=True):
        bounds = ", ".join(f"{b} {n}" for b, n in g["bound"].value_counts().items())
        lines.append(f"| {heads} | {reg} | {len(g)} | {g.bw_fraction.median():.2f} ({g.bw_fraction.max():.2f}) | "
                     f"{g.tflops.median():.0f} ({g.tflops.max():.0f}) | {g.fastest.mode().iloc[0]} | {bounds} | "
                     f"{g.auto_regret.mean():.2f} / {g.auto_regret.max():.2f} | "
                     f"{g.replayed_regret.mean():.2f} / {g.replayed_regret.max():.2f} |")
    a, r = w["auto_regret"], w["replayed_regret"]
    lines.append(f"\nall {len(w)} workloads: auto regret {a.mean():.2f}% mean, p95 {a.quantile(0.95):.2f}, "
                 f"max {a.max():.2f}; replayed {r.mean():.2f} / {r.quantile(0.95):.2f} / {r.max():.2f}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv")
    ap.add_argument("--gpu", default="h200")
    args = ap.parse_args()
    print(markdown(per_workload(scored(args.csv, resolve_gpu(args.gpu)))))


if __name__ == "__main__":
    main()
