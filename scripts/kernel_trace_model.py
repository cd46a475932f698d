"""The engine's CTA timeline against a measured one (scripts/kernel_trace.py's files; CPU only).

    PYTHONPATH=. python3 scripts/kernel_trace_model.py DIR [--gpu h100] [--set fa2-grid] [--csv OUT.csv]

For every traced plan: the model's prediction (the whole call: launches, combine) against bench's time, and
the attention launch CTA by CTA, the model's (SimResult's first launch, from its own start) against the
trace's (the median repetition, from the first CTA's start): the span, when the first wave's CTAs end (p10 /
p50 / p90), when the CTAs past the resident slots start (median), and the mean |end error| a CTA over the
span. The trace's CTA p is the plan's CTA p (kernels/traced.py). --gpu: the profile (default: the traces'
GPU); --csv: the table as a file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from attnsim.fileio import write_text
from attnsim.planner.choose import make_plan
from attnsim.profiles import resolve_gpu
from attnsim.simulator.engine import simulate
from attnsim.simulator.workload import DecodeWorkload


def load(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(points, traces with a `point` column: the points' row numbers, in the order they were traced)."""
    points = pd.read_csv(folder / "kernel_trace_points.csv")
    traces = pd.read_csv(folder / "kernel_trace.csv")
    traces["point"] = np.cumsum((traces.rep.values == 0) & (traces.cta.values == 0)) - 1
    return points, traces


def workload_of(row) -> DecodeWorkload:
    contexts = [int(c) for c in str(row.contexts).split(";")]
    return DecodeWorkload.build(int(row.batch), int(row.q_heads), int(row.kv_heads), int(row.head_dim), contexts,
                                dtype=row["dtype"])


def median_run(trace: pd.DataFrame) -> np.ndarray:
    """[CTAs, 3] (sm, start µs, end µs) of the repetition whose span is the median of the reps."""
    runs = [r.sort_values("cta")[["sm", "start_ns", "end_ns"]].to_numpy(np.float64) for _, r in trace.groupby("rep")]
    spans = [r[:, 2].max() for r in runs]
    run = runs[int(np.argsort(spans)[len(spans) // 2])]
    run[:, 1:] /= 1e3
    return run


def shape_of(start: np.ndarray, end: np.ndarray, slots: int) -> dict:
    """Span, the first wave's end percentiles and the later CTAs' median start, µs."""
    first = end[:slots]
    out = dict(span=end.max(), end_p10=np.percentile(first, 10), end_p50=np.median(first),
               end_p90=np.percentile(first, 90))
    out["tail_start"] = float(np.median(start[slots:])) if len(start) > slots else np.nan
    return out


def compare(row, trace: pd.DataFrame, gpu) -> dict:
    w = workload_of(row)
    result = simulate(make_plan(row.plan, w, gpu).schedule, gpu)
    launch = result.launches[0]
    model = shape_of(launch.cta_start_us - launch.start_us, launch.cta_end_us - launch.start_us, launch.slots)
    run = median_run(trace)
    measured = shape_of(run[:, 1], run[:, 2], int(row.slots))
    end_error = np.abs((launch.cta_end_us - launch.start_us) - run[:, 2]).mean() / measured["span"]
    out = dict(set=row.set, plan=row.plan, grid=int(row.grid), slots=int(row.slots), time_us=row.time_us,
               model_us=round(result.total_us, 1), err_pct=round(100 * (result.total_us / row.time_us - 1), 1))
    for key in measured:
        out[f"{key}"] = round(measured[key], 1)
        out[f"model_{key}"] = round(model[key], 1)
    out["cta_end_err_pct"] = round(100 * end_error, 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--gpu", default=None)
    ap.add_argument("--set", default=None)
    ap.add_argument("--csv", type=Path, default=None)
    args = ap.parse_args()
    points, traces = load(args.folder)
    gpu = resolve_gpu(args.gpu or ("h200" if "H200" in str(points.gpu.iloc[0]).upper() else "h100"))
    rows = [compare(row, traces[traces.point == i], gpu) for i, row in points.iterrows()
            if args.set is None or row.set == args.set]
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 250, "display.max_columns", 40):
        print(table.to_string(index=False))
    if args.csv:
        write_text(args.csv, table.to_csv(index=False))


if __name__ == "__main__":
    main()
