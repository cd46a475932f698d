"""Two trees' timings of the same points, side by side: time B / time A per plan, by strategy and a grouping.

    PYTHONPATH=. python3 scripts/tree_ab.py main_paged/serving_paged.csv abnew_paged/serving_paged.csv --by page_size
    PYTHONPATH=. python3 scripts/tree_ab.py merge_ab_main.csv merge_ab_abmerge.csv --by q_len

A and B are bench-format CSVs (attnsim bench, serving_kernels_device.py, splitkv_device.py) of one device
call (scripts/device_stage.sh *_ab stages: the same points, this tree first, then a branch extracted beside
it). Rows pair on the plan asked for and the workload; only rows checked ok on both sides count (a row that
failed its fp64 check on either side is listed). Ratios below 1: B is faster.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd

KEYS = ("requested", "batch", "q_heads", "kv_heads", "head_dim", "context", "contexts", "dtype", "kv_dtype",
        "page_size", "q_len", "variant")


def paired(a: pd.DataFrame, b: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows present and ok on both sides with time_a, time_b and ratio = time_b / time_a; the rows that
    failed on either side or are missing from one)."""
    keys = [k for k in KEYS if k in a.columns and k in b.columns]
    a, b = (f.assign(**{k: f[k].astype(str).where(f[k].notna(), "") for k in keys}) for f in (a, b))
    both = a.merge(b, on=keys, how="outer", suffixes=("_a", "_b"), indicator=True)
    ok = both["_merge"].eq("both") & both["status_a"].astype(str).str.startswith("ok") \
        & both["status_b"].astype(str).str.startswith("ok")
    good = both[ok].assign(ratio=lambda d: d["time_us_b"] / d["time_us_a"])
    return good, both[~ok]


def summary(good: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Median / min / max of the ratio and the pair count, per strategy (as run on side A) and `by`."""
    groups = ["strategy_a"] + [f"{c}_a" if f"{c}_a" in good.columns else c for c in by]
    table = good.groupby(groups)["ratio"].agg(pairs="size", median="median", min="min", max="max")
    return table.round(3)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", help="side A (this tree)")
    ap.add_argument("b", help="side B (the branch)")
    ap.add_argument("--by", default="", help="comma-separated columns to group by besides the strategy")
    args = ap.parse_args(argv)
    good, bad = paired(pd.read_csv(args.a), pd.read_csv(args.b))
    if good.empty:
        print("no pair of ok rows", file=sys.stderr)
        return 1
    print(summary(good, [c for c in args.by.split(",") if c]).to_string())
    print(f"\nall {len(good)} pairs: B / A median {good['ratio'].median():.3f}, "
          f"geomean {np.exp(np.log(good['ratio']).mean()):.3f}")
    if len(bad):
        print(f"{len(bad)} rows unpaired or not ok on a side:")
        print(bad[[c for c in ("requested", "batch", "context", "status_a", "status_b") if c in bad.columns]]
              .to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
