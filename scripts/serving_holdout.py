"""Split the serving sweeps into a small fitting set and a held-out validation set, by a fixed rule.

    PYTHONPATH=. python3 scripts/serving_holdout.py results/h200/bench_{paged,fp8,qlen}.csv --out-dir DIR

The dedicated serving calibration sweep (`bench --sweep cal-serving`) could not be measured in the
session's device time, so the new cost fields are fitted on every 7th feature workload of each
validation sweep (sorted by workload key: a fixed rule, not a choice) and validated on the others
(>= 40 per sweep). Writes DIR/serving_fit.csv (all rows of the fitting workloads) and
DIR/<sweep>_holdout.csv (the rest).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

KEY = ["batch", "q_heads", "kv_heads", "head_dim", "contexts", "dtype"]
EVERY = 7


def split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    keys = frame[KEY].astype(str).agg("|".join, axis=1)
    chosen = set(sorted(keys.unique())[::EVERY])
    fit = keys.isin(chosen)
    return frame[fit], frame[~fit]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csvs", nargs="+")
    ap.add_argument("--out-dir", required=True, type=Path)
    args = ap.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    fits = []
    for path in args.csvs:
        frame = pd.read_csv(path, dtype={"contexts": str, "options": str, "status": str})
        fit, held = split(frame)
        fits.append(fit)
        name = Path(path).stem.removeprefix("bench_")
        held.to_csv(args.out_dir / f"{name}_holdout.csv", index=False)
        print(f"{name}: {fit[KEY].drop_duplicates().shape[0]} workloads to fit, "
              f"{held[KEY].drop_duplicates().shape[0]} held out")
    fit = pd.concat(fits)  # a contiguous twin can belong to two sweeps: keep one row per point
    point = [c for c in ("strategy", "options", *KEY, "kv_dtype", "page_size", "q_len") if c in fit.columns]
    fit.drop_duplicates(point).to_csv(args.out_dir / "serving_fit.csv", index=False)


if __name__ == "__main__":
    main()
