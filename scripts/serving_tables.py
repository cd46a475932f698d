"""Issue 13's closing-note tables from the serving sweeps' CSVs (`attnsim bench --sweep paged|fp8|qlen`):
what each feature costs against its twin, measured, and how well the model predicts the feature rows.

    PYTHONPATH=. python3 scripts/serving_tables.py --gpu h200 \\
        results/h200/bench_paged.csv results/h200/bench_fp8.csv results/h200/bench_qlen.csv

Per CSV (its sweep is recognised from its rows): the ratio feature time / twin time per strategy,
grouped by page size (paged), by paging (fp8: fp8 time / bf16 time, < 1 is a speedup) or by q_len
(verify / decode); the model's MAPE on the feature rows (`attnsim validate --rows`); device time
(the rows' wall_ms). Plain text on stdout.
"""

from __future__ import annotations

import argparse

import pandas as pd

from attnsim.bench.results import with_serving_columns
from attnsim.profiles import resolve_gpu
from attnsim.validation.compare import predict_measurements

TWIN_KEYS = ["strategy", "batch", "q_heads", "kv_heads", "head_dim", "contexts", "dtype"]
FEATURES = {  # sweep: (is a feature row, the column the twin differs in, grouping column of the table)
    "fp8": (lambda f: f["kv_dtype"].str.startswith("float8"), "kv_dtype", "page_size"),  # (has paged rows too)
    "qlen": (lambda f: f["q_len"] > 1, "q_len", "q_len"),
    "paged": (lambda f: f["page_size"] > 0, "page_size", "page_size"),
}


def sweep_of(frame: pd.DataFrame) -> str:
    for name, (has, _, _) in FEATURES.items():
        if has(frame).any():
            return name
    raise SystemExit("no paged, fp8 or q_len > 1 rows: not a serving sweep")


def ratios(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """One row per feature row: its time over its twin's (same point, without the feature)."""
    has, differs, _ = FEATURES[name]
    keys = TWIN_KEYS + [c for c in ("page_size", "kv_dtype", "q_len") if c != differs]
    feature, twin = frame[has(frame)], frame[~has(frame)]
    merged = feature.merge(twin[keys + ["time_us"]], on=keys, suffixes=("", "_twin"))
    return merged.assign(ratio=merged["time_us"] / merged["time_us_twin"])


def ratio_table(merged: pd.DataFrame, name: str) -> str:
    group = FEATURES[name][2]
    table = merged.groupby(["strategy", group])["ratio"].agg(["count", "median", "min", "max"]).round(3)
    return table.reset_index().to_string(index=False)


def model_mape(frame: pd.DataFrame, name: str, gpu: str) -> str:
    rows = predict_measurements(frame[FEATURES[name][0](frame)].reset_index(drop=True), resolve_gpu(gpu))
    table = rows.groupby("strategy")["abs_pct_error"].agg(["count", "mean", "median", "max"]).round(2)
    return table.rename(columns={"mean": "MAPE %"}).reset_index().to_string(index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", nargs="+")
    parser.add_argument("--gpu", default="h200", help="profile the model predicts with (as `attnsim validate --gpu`)")
    args = parser.parse_args()
    for path in args.csv:
        frame = with_serving_columns(pd.read_csv(path, dtype={"contexts": str, "kv_dtype": str}))
        frame = frame[frame["status"] == "ok"]
        name = sweep_of(frame)
        what = {"paged": "paged / contiguous", "fp8": "fp8 KV / dtype KV", "qlen": "verify / decode"}[name]
        print(f"## {path}: {what} time (median over points), model on the {name} rows\n")
        print(ratio_table(ratios(frame, name), name), "\n")
        print(model_mape(frame, name, args.gpu), "\n")
        print(f"device time (rows' wall_ms): {frame['wall_ms'].sum() / 1e3:.0f} s\n")


if __name__ == "__main__":
    main()
