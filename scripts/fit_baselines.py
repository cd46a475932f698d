"""Fit a strategy's cost families into a shipped profile so that transfers carry them (issue 21 item 2).

    PYTHONPATH=. python3 scripts/fit_baselines.py h100 torch-cudnn results/h100/bench.csv --cv --write
    PYTHONPATH=. python3 scripts/fit_baselines.py h200 torch-flash calibration --write --into carried_cost
    PYTHONPATH=. python3 scripts/fit_baselines.py h200 torch-flash calibration --like-calibrate --write

Rows: measurements CSVs, `calibration` for the profile's own calibration points, or calibration data JSONs
(what `attnsim calibrate` measured: results/h200/cal180.data.json). The fit starts at
the datasheet model's costs and moves only what a transfer carries (attnsim/validation/physical_fit.py).
--like-calibrate: fit as `attnsim calibrate` does instead (from the profile's recorded bandwidth curve and
launch time, every registry parameter free; validation.fit.refit_strategy): a strategy's own costs
re-fitted after a deliberate change of its model, the profile's other families kept.
--only FIELD[,FIELD]: fit these CostParams fields alone from the profile's costs, every other one kept (a term
added to the model, fitted without moving what the profile already fits: scripts/wide_study.sh); --families
FAMILY[,FAMILY] limits them to those cost families of the strategy (scripts/combine_refit.sh).
--cv: 5-fold cross-validated MAPE over workloads (each fold predicted by a fit to the others): the
honest figure when the rows are also a validation sweep; the out-of-fold predictions are written next
to the rows' CSV as <strategy>_cv.csv. --write: the families' costs and a fit report
go into attnsim/profiles/<gpu>.json (the rest of the profile is kept): into `cost` (the profile's own
costs: a family it had none of) or `carried_cost` (what transfers take; its own free fit stays in `cost`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from attnsim import strategies
from attnsim.fileio import write_text
from attnsim.profiles import resolve_gpu
from attnsim.simulator.hardware import from_name, spec_to_dict
from attnsim.simulator.profile_io import read_profile_document, shipped_profile_path
from attnsim.validation.fit import fit_points, owned_rows, refit_strategy
from attnsim.validation.measurements import load_measurements, measured_points
from attnsim.validation.physical_fit import cv_predictions, fit_strategy, free_params


def rows_of(gpu: str, source: str) -> pd.DataFrame:
    """A measurements CSV; `calibration`: the shipped profile's calibration points; a calibration data
    JSON (`calibrate`'s, e.g. results/h200/cal180.data.json): its points."""
    if source.endswith(".json"):
        points = pd.DataFrame(json.loads(Path(source).read_text())["calibration_data"]["points"])
    elif source == "calibration":
        points = pd.DataFrame(read_profile_document(shipped_profile_path(gpu))["calibration_data"]["points"])
    else:
        return load_measurements(source)
    return points[points["status"] == "ok"].reset_index(drop=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("gpu")
    ap.add_argument("strategy")
    ap.add_argument("rows", nargs="+", help="measurements CSVs and/or 'calibration' (the profile's own points)")
    ap.add_argument("--cv", action="store_true")
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--into", choices=("cost", "carried_cost"), default="cost")
    ap.add_argument("--like-calibrate", action="store_true")
    ap.add_argument("--only", default=None, help="comma-separated fields: fit these alone, the rest as the profile has them")
    ap.add_argument("--families", default=None, help="with --only: comma-separated cost families of the strategy (default all)")
    args = ap.parse_args()
    name = from_name(args.gpu).name
    spec = resolve_gpu(args.gpu)
    rows = pd.concat([rows_of(name, source) for source in args.rows], ignore_index=True)
    report = {}
    if args.only:
        only = tuple(args.only.split(","))
        chosen = args.families.split(",") if args.families else list(strategies.get(args.strategy).families)
        free = {f: tuple(p for p in fields if p in only) if f in chosen else ()
                for f, fields in strategies.get(args.strategy).families.items()}
        fit = fit_points(measured_points(owned_rows(rows, args.strategy), spec), spec, free)
        rule = f"{', '.join(only)} alone fitted from the profile's costs, every other parameter kept"
    elif args.like_calibrate:
        fit = refit_strategy(spec, read_profile_document(shipped_profile_path(name))["calibration_data"], rows,
                             args.strategy)
        report["residuals_log"] = [round(float(r), 5) for r in fit.residuals]
        free = dict(strategies.get(args.strategy).families)
        rule = "fitted as attnsim calibrate fits it (recorded bandwidth curve and launch time), every parameter free"
    else:
        fit = fit_strategy(spec, rows, args.strategy)
        free = free_params(args.strategy)
        rule = "fitted from the datasheet model's costs; knee, hbm_scale, l2_dirty_fraction held there"
    report = {"points": int(len(fit.residuals)), "iterations": fit.iterations, "mape_pct": fit.mape,
              "max_abs_pct": float(np.max(np.abs(np.expm1(fit.residuals))) * 100),
              "data": " + ".join(args.rows), "free": free, "rule": rule, **report}
    if args.cv:  # out-of-fold predictions next to the rows: scripts/trust_tables.py and error_bands.py use them
        cv = cv_predictions(spec, rows, args.strategy)
        report["cv_mape_pct"] = float(cv["abs_pct_error"].mean())
        if args.rows[0] != "calibration":
            out = Path(args.rows[0]).with_name(f"{args.strategy}_cv.csv")
            write_text(out, cv.to_csv(index=False))
            print(f"wrote {out}")
    print(json.dumps({k: v for k, v in report.items() if k not in ("free", "residuals_log")}, indent=1))
    for family in strategies.families_of(args.strategy):
        print(f"  {family}: " + ", ".join(f"{p}={getattr(fit.spec.cost[family], p):.4g}"
                                          for p in free[family]))
    if args.write:
        path = shipped_profile_path(name)
        doc = json.loads(path.read_text())
        fitted = spec_to_dict(fit.spec)["cost"]
        if args.only:  # the fields alone into the costs, the report beside the family's own fit report
            for family in strategies.families_of(args.strategy):
                doc["gpu"]["cost"][family].update({p: fitted[family][p] for p in free[family]})
            fit_report = doc["fit"].setdefault(args.strategy, {})
            fit_report["added_terms"] = [*fit_report.get("added_terms", []), report]  # one per --only refit, oldest first
            write_text(path, json.dumps(doc, indent=1) + "\n")
            print(f"wrote {path}")
            return
        doc["gpu"].setdefault(args.into, {}).update({f: fitted[f] for f in strategies.families_of(args.strategy)})
        if args.into == "cost":  # the own fit's report, its carried fit's kept
            carried = doc["fit"].get(args.strategy, {}).get("carried")
            doc["fit"][args.strategy] = {**report, **({"carried": carried} if carried else {})}
        else:
            doc["fit"].setdefault(args.strategy, {})["carried"] = report
        write_text(path, json.dumps(doc, indent=1) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
