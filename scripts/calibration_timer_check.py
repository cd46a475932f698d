"""Check the per-point timer's assumption on the GPU (validation/point_cost.py): re-time points a
budgeted calibration measured, at the standard timer (warmup 25 ms, rep 20 ms) and again at their
own, and write both with their ratio. GPU only.

    PYTHONPATH=. python3 scripts/calibration_timer_check.py --data OUT/cal.data.json --points 60 \
        --out OUT/timer_check.csv

The assumption holds if |own / standard - 1| stays within ~1% (median) and the repeat of the own
timer agrees with the first as closely: the points' medians are no noisier than the fit needs.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd

from attnsim.bench import calibration as cal
from attnsim.bench.harness import BenchConfig, run_sweep
from attnsim.kernels.timing import TimerConfig
from attnsim.simulator import hardware
from attnsim.validation.measurements import row_spec, row_workload
from attnsim.validation.point_cost import standard_timer


def spread(rows: pd.DataFrame, count: int) -> pd.DataFrame:
    """`count` ok rows spread evenly over the measured times (short and long kernels both)."""
    ok = rows[rows["status"] == "ok"].sort_values("time_us").reset_index(drop=True)
    return ok.iloc[np.unique(np.linspace(0, len(ok) - 1, count).astype(int))]


def retime(rows: pd.DataFrame, gpu, timer_of) -> list[float]:
    points = [(row_workload(r), row_spec(r), timer_of(r)) for _, r in rows.iterrows()]
    config = BenchConfig(strategies=cal.calibrated_names(), gpu=gpu, device_name="", peak_read_gbps=1.0)
    out = []
    for w, spec, timer in points:  # one point at a time: each keeps its own timer
        frame = run_sweep([w], config, candidates=lambda _: [spec], floor=lambda nbytes: None,
                          timer_for=lambda s, _w: timer)
        out.append(float(frame["time_us"].iloc[0]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--gpu", default="h200")
    parser.add_argument("--points", type=int, default=60)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    rows = spread(pd.DataFrame(json.load(open(args.data))["calibration_data"]["points"]), args.points)
    gpu = hardware.from_name(args.gpu)
    own = lambda r: TimerConfig(warmup_ms=float(r["warmup_ms"]), rep_ms=float(r["rep_ms"]))  # noqa: E731
    rows = rows.assign(standard_us=retime(rows, gpu, lambda r: standard_timer()),
                       own_again_us=retime(rows, gpu, own))
    rows["own_vs_standard"] = rows["time_us"] / rows["standard_us"]
    rows["repeat_vs_standard"] = rows["own_again_us"] / rows["standard_us"]
    rows.to_csv(args.out, index=False)
    for column in ("own_vs_standard", "repeat_vs_standard"):
        dev = (rows[column] - 1).abs() * 100
        print(f"{column}: median |dev| {dev.median():.2f}%, p90 {dev.quantile(0.9):.2f}%, max {dev.max():.2f}%")


if __name__ == "__main__":
    main()
