"""Fit the split-KV kernel's cost family on its measured rows and check it on rows held out of the fit.

    PYTHONPATH=. python3 scripts/splitkv_fit.py results/h200/splitkv_device.csv [--write attnsim/profiles/h200.json]
    PYTHONPATH=. python3 scripts/splitkv_fit.py results/h100/cal_search.csv --gpu h100 [--write attnsim/profiles/h100.json]

Rows: the `splitkv` plan specs of scripts/splitkv_device.py (status ok, no kernel variant), each with
its compiled resources, split count and tile (validation.measurements.measured_points plans them as
measured). Every fourth row (in file order) is held out; the family's parameters (registry:
streaming + last-arrival merge) start from the calibrated FlashDecoding family (its serving fields at their defaults), whose tile
loop the kernel shares, and are fitted on the rest.

    --merge-rows results/h200/cal_serving.csv

adds to the fitted rows the split-KV plans of that sweep (cal-serving: `auto` runs them) that read the
dtype's KV from a contiguous cache and merge more than one row step (q_len x group > 4): their last
arrival merges 16-144 load rounds (merge_cost.last_arrival_steps), the decode rows here 2-9, so only they pin
the per-round cost (fixup_per_peer_us) apart from the fixed fix-up and CTA costs. They use no serving
term but the tile math, left at its default (no cap) as serving_fit then keeps it where it holds out
no better. None of them is in the validation sweeps (serving_fit.check_disjoint). Prints MAPE on both parts and per point; --write stores the
family, its fit record, its error bands (in-sample residuals per KV bin, widened as `calibrate`
widens them) and the rows in the profile (gpu.cost, fit, gpu.error_bands, calibration_data.points, where they
replace the family's earlier rows). Run scripts/serving_fit.py --write after it: the family's serving fields
start again from FlashDecoding's here.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd

from attnsim import strategies
from attnsim.fileio import write_json
from attnsim.simulator.engine import simulate
from attnsim.profiles import resolve_gpu
from attnsim.validation.fit import fit_points as fit_measured
from attnsim.validation.bands import IN_SAMPLE_WIDENING, error_bands
from attnsim.validation.compare import predict_measurements
from attnsim.simulator import merge_cost
from attnsim.simulator.terms import TERMS
from attnsim.validation.measurements import load_measurements, measured_points
from attnsim.validation.serving_fit import at_defaults

NAME = "splitkv"
# what a row needs to replay as the plan that ran, whatever the profile's older points record
PLAN_COLUMNS = ("options", "requested", "plan", "kv_dtype", "page_size", "q_len")
START_FAMILY = "flashdecoding"
HOLD_OUT_EVERY = 4


def errors_pct(points, spec) -> np.ndarray:
    predicted = np.array([simulate(p.plan.schedule, spec).total_us for p in points])
    return (predicted / np.array([p.time_us for p in points]) - 1) * 100


def merge_points(path: Path, spec) -> list:
    """The split-KV rows of `path` whose merge takes more than one row step and that use no serving term
    but the tile math: the dtype's KV, contiguous (see the module docstring)."""
    frame = load_measurements(path)
    rows = frame[(frame["strategy"] == NAME) & (frame["kv_dtype"] == frame["dtype"]) & (frame["page_size"] == 0)
                 & (frame["q_len"] * frame["q_heads"] // frame["kv_heads"] > merge_cost.LAST_ARRIVAL_MERGE_ROWS)
                 & (frame["splits"] > 1)]
    return measured_points(rows.reset_index(drop=True), spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", type=Path)
    ap.add_argument("--write", type=Path, help="profile JSON to add the fitted family to")
    ap.add_argument("--merge-rows", type=Path, help="cal-serving CSV whose multi-row-step split-KV merges join the fit")
    ap.add_argument("--gpu", default="h200", help="the profile whose FlashDecoding family the fit starts from")
    args = ap.parse_args()
    frame = pd.read_csv(args.csv, dtype={"contexts": str, "options": str, "variant": str})
    plain = frame["variant"].isna() if "variant" in frame else True  # no kernel variant (splitkv_device.py's)
    rows = frame[(frame["strategy"] == NAME) & (frame["status"] == "ok") & plain].reset_index(drop=True)
    base = resolve_gpu(args.gpu)
    spec = at_defaults(dataclasses.replace(base, cost={**base.cost, NAME: base.cost_for(START_FAMILY)}), [NAME])
    points = measured_points(rows, spec)
    held = [i % HOLD_OUT_EVERY == HOLD_OUT_EVERY - 1 for i in range(len(points))]
    fit_points = [p for p, h in zip(points, held) if not h]
    if args.merge_rows:
        merges = merge_points(args.merge_rows, spec)
        print(f"+ {len(merges)} multi-row-step merges of {args.merge_rows} fitted")
        fit_points += merges
    serving = {name for term in TERMS.values() for name in term.fields}  # serving_fit's, at their defaults here
    free = tuple(f for f in strategies.get(NAME).families[NAME] if f not in serving)
    result = fit_measured(fit_points, spec, free={NAME: free})
    err = errors_pct(points, result.spec)
    fitted, test = err[~np.array(held)], err[np.array(held)]
    print(f"{len(fit_points)} fitted: MAPE {np.abs(fitted).mean():.2f}%   {len(test)} held out: MAPE "
          f"{np.abs(test).mean():.2f}% (max {np.abs(test).max():.1f}%)")
    for (_, row), e, h in zip(rows.iterrows(), err, held):
        print(f"  {'held' if h else 'fit ':<5}b{row['batch']} {row['q_heads']}/{row['kv_heads']} {row['context']:>7} "
              f"{str(row['options']) if isinstance(row['options'], str) else '':<34} {row['time_us']:>8.2f} us {e:+6.1f}%")
    params = dataclasses.asdict(result.spec.cost_for(NAME))
    print(json.dumps({k: round(v, 5) for k, v in params.items()}))
    if args.write:
        doc = json.loads(args.write.read_text())
        doc["gpu"]["cost"][NAME] = params
        doc["fit"][NAME] = {"points": len(fit_points), "merge_rows": str(args.merge_rows or ""),
                            "iterations": result.iterations,
                            "mape_pct": float(np.abs(fitted).mean()), "max_abs_pct": float(np.abs(fitted).max()),
                            "held_out_points": len(test), "held_out_mape_pct": float(np.abs(test).mean()),
                            "residuals_log": [round(float(r), 5) for r in result.residuals]}
        banded = predict_measurements(rows, result.spec)  # in-sample, widened as `calibrate` widens its bands
        family_bands = error_bands(banded, "", IN_SAMPLE_WIDENING)["families"][NAME]
        doc["gpu"]["error_bands"]["families"][NAME] = family_bands
        print(f"error bands (%, per KV bin): {family_bands}")
        # the family's rows replace its earlier ones: those timed an earlier version of the kernel (and
        # rows whose options were the default rule of then no longer replay as the plan that ran)
        kept = [p for p in doc["calibration_data"]["points"] if p.get("strategy") != NAME]
        keep = [c for c in rows.columns if c in kept[0] or c in PLAN_COLUMNS]  # the options say which chunks ran
        doc["calibration_data"]["points"] = kept + json.loads(rows[keep].to_json(orient="records"))
        write_json(args.write, doc, indent=1)
        print(f"wrote {NAME} into {args.write}")


if __name__ == "__main__":
    main()
