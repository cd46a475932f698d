"""Score the planner offline on an oracle study: the model's pick among the plans the study measured.

    PYTHONPATH=. python3 scripts/oracle_replay.py results/h200/planner_oracle.csv [--gpu h200] [--tune 2,3,6]

For each workload, every measured plan of our kernels is predicted with the profile (the shipped one by
default); the plan with the least predicted time is the pick, and its measured time over the best
measured time is the regret. Candidates the planner itself excludes (persistent grids below one CTA
per SM, attnsim/planner/candidates.py) are excluded here too. Unlike `planner_regret.py --replay`,
every workload is scored (the pick is always a measured plan), so this measures the model's ranking
over the study's dense candidate set rather than the planner's own candidate list.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from attnsim import strategies
from attnsim.bench import tune
from attnsim.bench.results import requested_label, spec_label
from attnsim.profiles import resolve_gpu
from attnsim.validation.compare import predict_measurements

KEY = ["batch", "q_heads", "kv_heads", "head_dim", "contexts", "dtype"]


def predicted_candidates(frame: pd.DataFrame, gpu) -> pd.DataFrame:
    """The measured plans of our kernels (status ok), each predicted as the plan it ran: predicted_us,
    pct_error, spec, and `excluded` for the persistent grids below one CTA per SM the planner skips."""
    ours = frame[frame["strategy"].isin(strategies.candidates()) & frame["status"].eq("ok")].reset_index(drop=True)
    rows = predict_measurements(ours, gpu)
    records = rows.to_dict("records")
    rows["spec"] = [spec_label(r) for r in records]
    rows["asked"] = [requested_label(r) for r in records]  # a default's row: its options are the concrete plan
    rows["excluded"] = rows["strategy"].map(lambda s: strategies.get(s).in_kernel_reduction) \
        & (rows["grid"] < gpu.sm_count) & rows["options"].fillna("").str.contains("grid")
    return rows


def picks(frame: pd.DataFrame, gpu, rows: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per workload: the model's pick among its measured plans and the pick's regret.
    `rows`: predicted_candidates(frame, gpu) when the caller already has it."""
    rows = predicted_candidates(frame, gpu) if rows is None else rows
    out = []
    for _, group in rows.groupby(KEY, sort=False):
        allowed = group[~group["excluded"]]
        pick = allowed.loc[allowed["predicted_us"].idxmin()]
        best = group.loc[group["time_us"].idxmin()]
        default = {s: group.loc[group["asked"] == s, "time_us"].min() for s in strategies.default_names()}
        out.append({"ragged": ";" in str(pick["contexts"]), "pick": pick["spec"],
                    "regret_pct": 100 * (pick["time_us"] / best["time_us"] - 1), "pick_us": pick["time_us"],
                    "pick_predicted_us": pick["predicted_us"], "best": best["spec"], "best_us": best["time_us"],
                    "best_predicted_us": best["predicted_us"], **{k: pick[k] for k in KEY},
                    **{f"{s}_us": t for s, t in default.items()}})
    return pd.DataFrame(out)


def tuned_regrets(rows: pd.DataFrame, k: int) -> np.ndarray:
    """Per workload, the regret (%) of `auto:tune=k` replayed: the model's k fastest predicted distinct plans
    among those measured (one per concrete plan, as the planner ranks them), the fastest measured of them
    running (bench/tune.pick: ties within TIE_PCT to the model's order). The trials and the best are the same
    measurements here, so this is a little kinder than the device, which times the k plans itself."""
    out = []
    for _, group in rows.groupby(KEY, sort=False):
        ranked = group[~group["excluded"]].sort_values("predicted_us").drop_duplicates("spec").head(k)
        trials = [(t, rank) for rank, t in enumerate(ranked["time_us"])]
        out.append(100 * (tune.pick(trials)[0] / group["time_us"].min() - 1))
    return np.array(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv")
    ap.add_argument("--gpu", default="h200")
    ap.add_argument("--tune", default="", help="also replay auto:tune=K for these K (comma-separated), e.g. 2,3,6")
    args = ap.parse_args()
    frame, gpu = pd.read_csv(args.csv, dtype={"contexts": str, "options": str, "status": str}), resolve_gpu(args.gpu)
    rows = predicted_candidates(frame, gpu)
    table = picks(frame, gpu, rows)
    r = table["regret_pct"]
    print(f"{len(table)} workloads: regret mean {r.mean():.2f}%, p95 {np.percentile(r, 95):.2f}%, max {r.max():.2f}%")
    for k in (int(x) for x in args.tune.split(",") if x):
        t = tuned_regrets(rows, k)
        print(f"auto:tune={k} replayed: regret mean {t.mean():.2f}%, p95 {np.percentile(t, 95):.2f}%, max {t.max():.2f}%")
    ragged = table[table["ragged"]]
    for base in strategies.SPEEDUP_BASES:
        speedup = np.exp(np.log(ragged[f"{base}_us"] / ragged["pick_us"]).mean())
        print(f"ragged ({len(ragged)}): geomean speedup of the pick over {base}: {speedup:.3f}x")
    best_default = table[[f"{s}_us" for s in strategies.default_names()]].min(axis=1)
    worse = 100 * (table["pick_us"] / best_default - 1)
    print(f"pick slower than the best default: {int((worse > 0).sum())} workloads, worst {worse.max():.1f}%")


if __name__ == "__main__":
    main()
