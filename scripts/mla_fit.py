"""Fit the MLA cost families into a shipped profile from its MLA calibration points, every other family kept.

    PYTHONPATH=. python3 scripts/mla_fit.py h200 results/h200/cal_mla.csv [--write]

What `attnsim calibrate --add-points cal_mla.csv` does for the MLA families (validation/fit.fit_jobs: each
owner's `mla_families` on the MLA rows of its plans alone, from calibrate's starting costs: the profile's
recorded bandwidth curve and launch time, the tensor-core rate from each of fit.MLA_MMA_STARTS), without refitting
the K/V-head families, whose shipped costs carry later refits (serving terms, per-SM sharing) a fresh
calibrate would drop. Prints each owner's in-sample MAPE; --write stores the families in the profile's
`cost` and their reports in `fit` (keys fa2-mla, flashdecoding-mla, streamk-mla), and with --held-out
(the `mla` validation sweep, none of its points fitted) the `mla` regime's error bands from its residuals
with the fitted families (serving_terms.bands.regimes.mla: what an MLA row's likely_us band is).
Without calibration rows (a GPU whose profile takes the MLA families transferred from another, e.g. h100):
`--held-out` its mla sweep `--write` stores only those bands, from the transferred families' residuals.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np
import pandas as pd

from attnsim.fileio import write_text
from attnsim.profiles import resolve_gpu
from attnsim.simulator.hardware import from_name, spec_to_dict
from attnsim.simulator.profile_io import shipped_profile_path
from attnsim.simulator.terms import MLA_REGIME
from attnsim.validation.bands import error_bands
from attnsim.validation.fit import fit_job, fit_jobs, is_mla, starting_costs, tie_phases
from attnsim.validation.measurements import load_measurements, measured_points
from attnsim.validation.serving_bands import regime_note
from attnsim.validation.serving_fit import scored_points


def mla_jobs(rows: pd.DataFrame) -> dict:
    """Report key -> (MLA cost families, rows) of every owner with MLA rows."""
    return {key: job for key, job in fit_jobs(rows[is_mla(rows)].reset_index(drop=True)).items()
            if key.endswith("-mla")}


def held_out_bands(csv: str, spec) -> dict:
    """{family: [[lo, hi] % per KV bin]} of the MLA rows of `csv` predicted with `spec` (validation.bands)."""
    frame = load_measurements(csv)
    frame = frame[(frame["status"] == "ok") & is_mla(frame)].reset_index(drop=True)
    return error_bands(scored_points(measured_points(frame, spec), spec), "")["families"]


def write_bands(doc: dict, families: dict, basis: str) -> None:
    """The profile document's `mla` regime bands (serving_terms.bands.regimes.mla) and their basis."""
    bands = doc["gpu"].setdefault("serving_terms", {}).setdefault("bands", {})
    bands.setdefault("regimes", {})[MLA_REGIME] = families
    serving_basis, _ = regime_note(bands.get("basis", ""), MLA_REGIME)
    bands["basis"] = f"{serving_basis}; {MLA_REGIME}: {basis}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("gpu")
    ap.add_argument("rows", nargs="*", help="bench CSVs of MLA calibration points (cal-mla)")
    ap.add_argument("--held-out", default=None, help="bench CSV of the mla sweep: the MLA regime's bands")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    path = shipped_profile_path(from_name(args.gpu).name)
    doc = json.loads(path.read_text())
    spec = resolve_gpu(args.gpu)
    if not args.rows:  # no MLA points for this GPU: its bands, with the families its profile takes (transferred)
        if not (args.held_out and args.write):
            ap.error("without calibration rows, give --held-out and --write (the bands of the transferred families)")
        write_bands(doc, held_out_bands(args.held_out, spec), f"held-out residuals of {args.held_out} "
                                                              f"({spec.source.split('; ', 1)[-1]})")
        write_text(path, json.dumps(doc, indent=1) + "\n")
        print(f"wrote the {MLA_REGIME} bands into {path}")
        return
    data = doc["calibration_data"]
    start, _ = starting_costs(pd.DataFrame(data["bandwidth"]), data["launch_overhead_us"])
    rows = pd.concat([load_measurements(p) for p in args.rows], ignore_index=True)
    rows = rows[rows["status"] == "ok"].reset_index(drop=True)
    fitted, params, jobs = {}, {}, mla_jobs(rows)
    for key in (key for phase in tie_phases(jobs) for key in phase):  # a tied family's source first
        families, owned = jobs[key]
        fit = fit_job(dataclasses.replace(spec, cost={**spec.cost, **params, **{f: start[f] for f in families}}),
                      key, owned)
        costs = spec_to_dict(fit.spec)["cost"]
        params.update({f: fit.spec.cost_for(f) for f in families})
        fitted[key] = ({f: costs[f] for f in families},
                       {"points": int(len(owned)), "iterations": fit.iterations, "mape_pct": fit.mape,
                        "max_abs_pct": float(np.max(np.abs(np.expm1(fit.residuals))) * 100),
                        "data": " + ".join(args.rows),
                        "rule": "MLA families alone, from calibrate's starting costs (scripts/mla_fit.py)"})
        print(f"{key}: {len(owned)} rows, in-sample MAPE {fit.mape:.2f}%, max {fitted[key][1]['max_abs_pct']:.1f}%")
    if args.write:
        for key, (costs, report) in fitted.items():
            doc["gpu"]["cost"].update(costs)
            doc["fit"][key] = report
        if args.held_out:
            fitted_spec = dataclasses.replace(spec, cost={**spec.cost, **params})
            write_bands(doc, held_out_bands(args.held_out, fitted_spec), f"held-out residuals of {args.held_out}")
        write_text(path, json.dumps(doc, indent=1) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
