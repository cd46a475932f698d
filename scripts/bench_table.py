"""Print a markdown table of a bench CSV: fraction of measured HBM read bandwidth per strategy,
by KV-cache size (median over the sweep points in each bucket), plus geomean speedups against the
better SDPA backend. The README's "Measured on the H200 / H100" parts are this script's output
(scripts/readme_examples.py renders them from the committed CSVs).

    python scripts/bench_table.py results/h100/bench.csv
"""

import sys

import numpy as np
import pandas as pd

BUCKETS = [0, 16e6, 64e6, 256e6, 1e9, 4e9, 1e12]
LABELS = ["< 16 MB", "16-64 MB", "64-256 MB", "256 MB-1 GB", "1-4 GB", "> 4 GB"]
ORDER = ["fa2", "flashdecoding", "streamk", "auto", "torch-flash", "torch-cudnn"]
SDPA = ["torch-flash", "torch-cudnn"]


def asked(frame: pd.DataFrame) -> pd.Series:
    """The strategy each row was asked for: `requested` where the CSV has it (an `auto` row's
    `strategy` is the plan it chose), else `strategy` (CSVs from before plan specs)."""
    return frame["requested"] if "requested" in frame else frame["strategy"]


def bandwidth_table(frame: pd.DataFrame) -> pd.DataFrame:
    ok = frame[frame["status"] == "ok"].assign(kv=lambda f: pd.cut(f["kv_bytes"], BUCKETS, labels=LABELS),
                                               asked=asked)
    table = ok.pivot_table(index="asked", columns="kv", values="bw_fraction", aggfunc="median", observed=False)
    return table.reindex([s for s in ORDER if s in table.index])


def speedups(frame: pd.DataFrame, name: str = "streamk") -> dict:
    """Geomean, min and max of best(SDPA) time / `name`'s time over the uniform points both ran."""
    ok = frame[(frame["status"] == "ok") & ~frame["ragged"].astype(bool)].assign(asked=asked)
    wide = ok.pivot_table(index=["batch", "q_heads", "kv_heads", "head_dim", "context"], columns="asked",
                          values="time_us").dropna(subset=SDPA + [name])
    ratio = wide[SDPA].min(axis=1) / wide[name]
    return {"geomean": float(np.exp(np.log(ratio).mean())), "min": float(ratio.min()), "max": float(ratio.max()),
            "n": int(len(ratio))}


def markdown(frame: pd.DataFrame) -> str:
    """The bandwidth table and one speedup line per strategy of ours the CSV ran (stream-K, `auto`)."""
    table = bandwidth_table(frame)
    lines = ["| strategy | " + " | ".join(map(str, table.columns)) + " |", "|---|" + "---:|" * len(table.columns)]
    lines += [f"| {name} | " + " | ".join(f"{v:.2f}" for v in row) + " |" for name, row in table.iterrows()]
    lines.append("")
    for name in ("streamk", "auto"):
        if name in table.index:
            s = speedups(frame, name)
            lines.append(f"{name} vs the better of torch-flash and torch-cudnn over {s['n']} uniform points: "
                         f"geomean {s['geomean']:.3f}x, range {s['min']:.2f}x .. {s['max']:.2f}x")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(pd.read_csv(sys.argv[1], dtype={"contexts": str, "options": str})), end="")
