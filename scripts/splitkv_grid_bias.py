"""The model's error on split-KV's split counts *within* a workload, by grid (SM waves) and call time: how far
the shipped profile's preference between two split counts of one workload can be trusted (docs/validation.md,
"Split-KV's grids within a workload").

    PYTHONPATH=. python3 scripts/splitkv_grid_bias.py [results/h200/planner_oracle.csv] [--gpu h200]

For each uniform workload of the study, each `splitkv:splits=S` row's log error (predicted / measured) less
the mean over that workload's split counts: what is left is the error that changes which split count wins.
Prints its mean (%) by call time x grid / SM count, then the row counts.
"""
import argparse

import numpy as np
import pandas as pd

from attnsim.profiles import resolve_gpu
from attnsim.validation.bands import WORKLOAD_KEY
from attnsim.validation.compare import predict_measurements
from attnsim.validation.measurements import load_measurements


def relative_errors(frame: pd.DataFrame, spec) -> pd.DataFrame:
    """The split-KV rows of `frame` with `rel`: log(predicted / measured) less its workload's mean."""
    frame = frame[frame.ragged.astype(str) == "False"]
    rows = predict_measurements(frame, spec)
    rows = rows[rows.plan.str.startswith("splitkv:splits=")].copy()
    rows["key"] = rows[WORKLOAD_KEY].astype(str).agg("/".join, axis=1)
    rows["err"] = np.log(rows.predicted_us / rows.time_us)
    rows["rel"] = rows.err - rows.groupby("key").err.transform("mean")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", nargs="?", default="results/h200/planner_oracle.csv")
    ap.add_argument("--gpu", default="h200")
    args = ap.parse_args()
    spec = resolve_gpu(args.gpu)
    rows = relative_errors(load_measurements(args.csv), spec)
    waves = pd.cut(rows.grid / spec.sm_count, [0, 0.25, 0.5, 0.75, 1.0, 1.5, 2, 3, 10])
    call = pd.cut(rows.time_us, [0, 20, 40, 80, 200, 1e6])
    table = rows.groupby([call, waves], observed=True).rel
    print("mean relative error % (predicted / measured, less the workload's mean), call time (us) x grid / SMs")
    print((table.mean() * 100).round(1).unstack().to_string())
    print("rows")
    print(table.count().unstack().to_string())


if __name__ == "__main__":
    main()
