"""Print a markdown table of a bench CSV: fraction of measured HBM read bandwidth per strategy,
by KV-cache size (median over the sweep points in each bucket), plus geomean speedups.

    python scripts/bench_table.py results/h100/bench.csv
"""

import sys

import numpy as np
import pandas as pd

BUCKETS = [0, 16e6, 64e6, 256e6, 1e9, 4e9, 1e12]
LABELS = ["< 16 MB", "16-64 MB", "64-256 MB", "256 MB-1 GB", "1-4 GB", "> 4 GB"]
ORDER = ["fa2", "flashdecoding", "streamk", "torch-flash", "torch-cudnn"]


def bandwidth_table(frame: pd.DataFrame) -> pd.DataFrame:
    ok = frame[frame["status"] == "ok"].assign(kv=lambda f: pd.cut(f["kv_bytes"], BUCKETS, labels=LABELS))
    table = ok.pivot_table(index="strategy", columns="kv", values="bw_fraction", aggfunc="median", observed=False)
    return table.reindex([s for s in ORDER if s in table.index])


def speedups(frame: pd.DataFrame) -> dict:
    ok = frame[(frame["status"] == "ok") & ~frame["ragged"].astype(bool)]
    wide = ok.pivot_table(index=["batch", "q_heads", "kv_heads", "head_dim", "context"], columns="strategy",
                          values="time_us")
    best_torch = wide[["torch-flash", "torch-cudnn"]].min(axis=1)
    ratio = best_torch / wide["streamk"]
    return {"geomean": float(np.exp(np.log(ratio).mean())), "min": float(ratio.min()), "max": float(ratio.max()),
            "n": int(len(ratio))}


if __name__ == "__main__":
    frame = pd.read_csv(sys.argv[1])
    table = bandwidth_table(frame)
    print("| strategy | " + " | ".join(map(str, table.columns)) + " |")
    print("|---|" + "---:|" * len(table.columns))
    for name, row in table.iterrows():
        print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in row) + " |")
    s = speedups(frame)
    print(f"\nstreamk vs the better of torch-flash and torch-cudnn over {s['n']} uniform points: "
          f"geomean {s['geomean']:.3f}x, range {s['min']:.2f}x .. {s['max']:.2f}x")
