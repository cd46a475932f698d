"""Split-half test of the two terms scripts/oracle_errors.py blames for the planner's misses (issue 20).

    PYTHONPATH=. python3 scripts/oracle_split_half.py results/h200/planner_oracle.csv [--seed 20]

The oracle study's workloads are split in two halves (seeded, fixed). On the fit half only, two
corrections of the shipped model's predictions are fitted; the other half is scored before and after
with oracle_replay's scoring (the model's pick among the measured plans, regret vs the fastest):
- per-SM sharing: at a persistent grid g with S < g < 2S (S SMs), g - S SMs hold two CTAs of equal
  work; if two co-resident CTAs stream at rho times one CTA, they end at 2S / (g rho) of grid S's
  predicted time. Prediction = max(model, that), for in-kernel-reduction plans (stream-K, hybrid),
  where the study measured grid S on the same workload. One parameter, rho.
- groups above 16 query heads per KV head (32-row query tiles): one scale per strategy on the
  predicted time (the tile math the calibrated decode rates leave out).
This is a replay of the committed H200 data on a CPU, not a shipped profile: the fitted values only
say whether the terms are worth measuring and fitting properly (the `cal-search` calibration points).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from attnsim import strategies
from attnsim.profiles import resolve_gpu

sys.path.insert(0, str(Path(__file__).parent))
from oracle_replay import KEY, picks, predicted_candidates  # noqa: E402

WIDE_GROUP = 16  # query heads per KV head above which the tile has 32 query rows


def split_workloads(rows: pd.DataFrame, seed: int) -> pd.Series:
    """True for the rows of the fit half: half the workloads (sorted by KEY), chosen by `seed`."""
    keys = sorted(rows.groupby(KEY).groups)
    chosen = np.random.default_rng(seed).permutation(len(keys))[: len(keys) // 2]
    fit = {keys[i] for i in chosen}
    return pd.Series([tuple(r) in fit for r in rows[KEY].itertuples(index=False)], index=rows.index)


def doubled_sm_bound(rows: pd.DataFrame, sm_count: int) -> pd.Series:
    """2S / g x the predicted time at grid S of the same workload, for in-kernel-reduction plans at
    S < g < 2S (NaN elsewhere, or where grid S was not measured): the time at rho = 1."""
    in_kernel = rows["strategy"].map(lambda s: strategies.get(s).in_kernel_reduction)
    at_s = rows[in_kernel & rows["grid"].eq(sm_count)].groupby(KEY)["predicted_us"].min()
    base = rows[KEY].apply(tuple, axis=1).map(at_s)
    between = in_kernel & (rows["grid"] > sm_count) & (rows["grid"] < 2 * sm_count)
    return (base * 2 * sm_count / rows["grid"]).where(between)


def with_sm_sharing(rows: pd.DataFrame, bound: pd.Series, rho: float) -> pd.Series:
    return np.fmax(rows["predicted_us"], bound / rho)


def fit_rho(rows: pd.DataFrame, bound: pd.Series) -> float:
    """rho in [1, 2] minimising the mean |log(predicted / measured)| of the rows it applies to."""
    mask = bound.notna()
    grid = np.arange(1.0, 2.0001, 0.01)
    loss = [np.abs(np.log(with_sm_sharing(rows[mask], bound[mask], r) / rows.loc[mask, "time_us"])).mean() for r in grid]
    return float(grid[int(np.argmin(loss))])


def wide_group(rows: pd.DataFrame) -> pd.Series:
    return rows["q_heads"] // rows["kv_heads"] > WIDE_GROUP


def fit_group_scales(rows: pd.DataFrame) -> dict[str, float]:
    """Per strategy: exp(mean log(measured / predicted)) over its wide-group rows."""
    wide = rows[wide_group(rows)]
    return {s: float(np.exp(np.log(g["time_us"] / g["predicted_us"]).mean())) for s, g in wide.groupby("strategy")}


def with_group_scales(rows: pd.DataFrame, scales: dict[str, float]) -> pd.Series:
    scale = rows["strategy"].map(scales).fillna(1.0).where(wide_group(rows), 1.0)
    return rows["predicted_us"] * scale


def regret_line(name: str, rows: pd.DataFrame, predicted: pd.Series, gpu) -> str:
    table = picks(None, gpu, rows.assign(predicted_us=predicted))
    r = table["regret_pct"]
    return f"| {name} | {len(table)} | {r.mean():.2f} | {np.percentile(r, 95):.2f} | {r.max():.2f} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv")
    ap.add_argument("--gpu", default="h200")
    ap.add_argument("--seed", type=int, default=20)
    args = ap.parse_args()
    gpu = resolve_gpu(args.gpu)
    rows = predicted_candidates(pd.read_csv(args.csv, dtype={"contexts": str, "options": str, "status": str}), gpu)
    fit = split_workloads(rows, args.seed)
    bound = doubled_sm_bound(rows, gpu.sm_count)
    rho = fit_rho(rows[fit], bound[fit])
    scales = fit_group_scales(rows[fit])
    held = rows[~fit]
    sharing = with_sm_sharing(held, bound[~fit], rho)
    print(f"fit half: {fit[fit].index.size} plans; rho = {rho:.2f} (two co-resident CTAs stream at rho x one); "
          f"wide-group scales: " + ", ".join(f"{s} {v:.3f}" for s, v in sorted(scales.items())))
    print(f"\nheld-out half (seed {args.seed}), the model's pick among the measured plans:\n")
    print("| predictions | workloads | mean regret % | p95 % | max % |\n|---|---:|---:|---:|---:|")
    print(regret_line("shipped model", held, held["predicted_us"], gpu))
    print(regret_line("+ per-SM sharing", held, sharing, gpu))
    print(regret_line("+ wide-group scales", held, with_group_scales(held, scales), gpu))
    print(regret_line("+ both", held, with_group_scales(held.assign(predicted_us=sharing), scales), gpu))


if __name__ == "__main__":
    main()
