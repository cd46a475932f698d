"""Offline replay of `attnsim calibrate --budget`: choose points by information from the rows a
calibration actually measured, fit on those rows only (the normal fit path, validation.fit.calibrate_spec),
score on the standard sweep (none of its points fitted). CPU only, committed data.

    PYTHONPATH=. python3 scripts/calibration_replay.py --gpu h200 --budgets 15,30,60
    PYTHONPATH=. python3 scripts/calibration_replay.py --budgets 15,30 --rule random     # the control
    PYTHONPATH=. python3 scripts/calibration_replay.py --budgets 15,30 --rule d-optimal  # no regime shares

Each row is one fit of the normal path (validation.fit.calibrate_spec): ~1.5-6 min on 2 busy cores.

Pool: results/<gpu>/calibration_data.json (the extended set: option variants, long contexts, MQA,
hybrid / balanced, torch-flash, cuDNN; every row measured on the GPU). Prior for the sensitivities:
the datasheet model (--prior none, default: nothing fitted on these rows steers the choice) or a
preset's shipped profile. `all`: every pool row, the selection of calibrate before this change.

Columns: estimated GPU seconds of the selection (validation/point_cost.py, per-point timers; `all`
at the standard 25 + 20 ms timer), rows picked, the committed rows' own wall_ms (the harness's time
for those rows at the standard timer, set-up excluded), then MAPE % per strategy on the standard
sweep (results/<gpu>/bench.csv); hybrid and balanced (not in the sweep) on the pool rows left out.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from attnsim.profiles import resolve_gpu
from attnsim.simulator import hardware
from attnsim.validation.compare import predict_measurements
from attnsim.validation.fit import calibrate_spec
from attnsim.validation.measurements import load_measurements, measured_points
from attnsim.validation.point_cost import PointCosts, standard_timer
from attnsim.validation.point_selection import choose, make_candidates
from attnsim.validation.trust import EXTRA_STRATEGIES, mape_by_strategy

SWEPT = ("fa2", "flashdecoding", "streamk", "torch-flash", "torch-cudnn")


def pool(gpu: str) -> tuple[dict, pd.DataFrame]:
    doc = json.loads(Path(f"results/{gpu}/calibration_data.json").read_text())
    points = pd.DataFrame(doc["calibration_data"]["points"])
    return doc["calibration_data"], points[points["status"] == "ok"].reset_index(drop=True)


def selected_rows(points: pd.DataFrame, gpu: str, prior: str | None, budget: str,
                  rule: str = "regimes") -> tuple[pd.DataFrame, float]:
    """(rows picked, estimated GPU seconds) for a budget in seconds, or `all` at the standard timer.
    rule: regimes (calibrate's), d-optimal (information per second alone, no regime shares), random
    (a seeded random order, taken while affordable: the control)."""
    spec = resolve_gpu(gpu, prior)
    measured = measured_points(points, spec)
    candidates = make_candidates([p.plan for p in measured], [p.requested for p in measured], spec)
    if budget == "all":
        costs = PointCosts()
        rows = sum(costs.row_s(c.predicted_us, standard_timer()) for c in candidates)
        setup = sum({c.workload_key: c.setup_s for c in candidates}.values())
        compiles = costs.compile_s * len({c.variant_key for c in candidates if c.variant_key})
        return points, costs.start_s + rows + setup + compiles
    if rule == "random":
        return random_rows(points, candidates, float(budget))
    if rule == "d-optimal":
        candidates = [replace(c, stratum="") for c in candidates]
    selection = choose(candidates, spec, float(budget))
    return points.iloc[sorted(selection.indices())], selection.total_s


def random_rows(points: pd.DataFrame, candidates, budget_s: float, seed: int = 0) -> tuple[pd.DataFrame, float]:
    """The control: candidates in a seeded random order, each taken if it still fits the budget
    (same costs as calibrate's: a workload's set-up and a kernel's compile paid once)."""
    costs, spent, paid, picked = PointCosts(), PointCosts().start_s, set(), []
    for i in np.random.default_rng(seed).permutation(len(candidates)):
        c = candidates[i]
        cost = c.row_s + c.setup_s * (c.workload_key not in paid) + costs.compile_s * (
            bool(c.variant_key) and c.variant_key not in paid)
        if spent + cost <= budget_s:
            spent, picked = spent + cost, picked + [c.index]
            paid |= {c.workload_key, c.variant_key}
    return points.iloc[sorted(picked)], spent


def score(gpu: str, data: dict, points: pd.DataFrame, picked: pd.DataFrame, sweep: pd.DataFrame) -> dict:
    """MAPE per strategy of the profile fitted on `picked` (module docstring)."""
    base = hardware.from_name(gpu)
    spec, _ = calibrate_spec(base, pd.DataFrame(data["bandwidth"]), picked, data["kernels"],
                             data["launch_overhead_us"], "calibrated replay")
    mape = mape_by_strategy(predict_measurements(sweep, spec))
    left_out = points.drop(index=picked.index)
    left_out = left_out[left_out["strategy"].isin(EXTRA_STRATEGIES)]
    if not left_out.empty:
        mape.update(mape_by_strategy(predict_measurements(left_out, spec)))
    return mape


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gpu", default="h200")
    parser.add_argument("--budgets", default="15,30,60")
    parser.add_argument("--prior", default="none", help="'none' (datasheet) or 'shipped'")
    parser.add_argument("--rule", default="regimes", choices=("regimes", "d-optimal", "random"))
    args = parser.parse_args()
    data, points = pool(args.gpu)
    sweep = load_measurements(f"results/{args.gpu}/bench.csv")
    prior = None if args.prior == "shipped" else args.prior
    columns = (*SWEPT, *(s for s in EXTRA_STRATEGIES if s in set(points["strategy"])))
    print(f"{args.gpu}, prior {args.prior}, rule {args.rule}: MAPE % on the standard sweep ({len(sweep)} rows, none fitted); "
          f"{', '.join(EXTRA_STRATEGIES)} on the pool rows left out\n")
    print("| budget | est. GPU s | rows | rows' wall s | " + " | ".join(columns) + " | fit s |")
    print("|---|---:|---:|---:|" + "---:|" * (len(columns) + 1))
    for budget in args.budgets.split(","):
        picked, seconds = selected_rows(points, args.gpu, prior, budget, args.rule)
        started = time.perf_counter()
        mape = score(args.gpu, data, points, picked, sweep)
        cells = " | ".join(f"{mape[c]:.2f}" if c in mape else "–" for c in columns)
        label = "all (before)" if budget == "all" else f"{budget} s"
        print(f"| {label} | {seconds:.0f} | {len(picked)} | {picked['wall_ms'].sum() / 1e3:.0f} | {cells} | "
              f"{time.perf_counter() - started:.0f} |", flush=True)


if __name__ == "__main__":
    main()
