"""Whether each `auto` row of measured sweeps ran what the profile plans for its workload today (issue 18: "every
`auto` row of the serving sweeps ran the grid the model planned"). A refit moves plans: rows timed before it
ran the old profile's choice, and are re-timed (device_stage.sh serving_auto) until this says all.

    PYTHONPATH=. python3 scripts/auto_as_planned.py results/h200/bench_{fp8,paged,qlen}.csv [--gpu h200] [--strict]

Prints, per CSV, how many `auto` rows ran today's plan (the concrete spec: strategy, grid or splits, chunk)
and the first rows that did not (workload, the spec that ran, today's). --strict: exit 1 if any did not.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from attnsim.planner.choose import make_plan
from attnsim.profiles import resolve_gpu
from attnsim.validation.measurements import row_spec, row_workload

WORKLOAD_COLUMNS = ("batch", "q_heads", "kv_heads", "head_dim", "context", "page_size", "kv_dtype", "q_len")


def off_plan(frame: pd.DataFrame, gpu) -> list[dict]:
    """The `auto` rows of `frame` whose concrete spec is not what make_plan('auto', ...) gives today."""
    rows = []
    for _, row in frame[frame["requested"] == "auto"].iterrows():
        today, ran = make_plan("auto", row_workload(row), gpu).spec, row_spec(row)
        if today != ran:
            rows.append({**{c: row[c] for c in WORKLOAD_COLUMNS if c in row}, "ran": ran, "today": today})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", nargs="+")
    ap.add_argument("--gpu", default="h200", help="the profile whose plans the rows are checked against")
    ap.add_argument("--strict", action="store_true", help="exit 1 if any auto row ran another plan")
    args = ap.parse_args()
    gpu = resolve_gpu(args.gpu)
    missed = 0
    for path in args.csv:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        bad = off_plan(frame, gpu)
        total = int((frame["requested"] == "auto").sum())
        print(f"{path}: {total - len(bad)}/{total} auto rows ran today's plan")
        for row in bad[:8]:
            print("  ", ", ".join(f"{k} {v}" for k, v in row.items()))
        missed += len(bad)
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
