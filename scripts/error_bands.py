"""Write measured error bands into the shipped profiles (attnsim/profiles/*.json) and print coverage.

    PYTHONPATH=. python3 scripts/error_bands.py h100:results/h100/bench.csv h200:results/h200/bench.csv

For each GPU (its shipped profile + the standard sweep measured on it):
- error_bands: residuals of the profile on its calibration set and on its sweep, per cost family x
  KV-size bin (attnsim/validation/bands.py); coverage by 5-fold cross-validation over workloads;
- transfer_bands: residuals of this profile transferred to each other GPU of the list, on that
  GPU's calibration set and sweep (what a transferred profile inherits); coverage likewise.
"""

from __future__ import annotations

import json
import sys

import pandas as pd

from attnsim.fileio import write_text
from attnsim.simulator.hardware import from_name
from attnsim.simulator.profile_io import read_profile_document, shipped_profile_path
from attnsim.profiles import complete_families, resolve_gpu, transfer_from
from attnsim.validation.bands import cv_coverage, error_bands
from attnsim.validation.compare import predict_measurements
from attnsim.validation.measurements import load_measurements


def calibration_rows(preset: str) -> pd.DataFrame:
    doc = read_profile_document(shipped_profile_path(preset))
    points = pd.DataFrame(doc["calibration_data"]["points"])
    return points[points["status"] == "ok"].reset_index(drop=True)


def residuals(spec, preset: str, sweep_csv: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    return (predict_measurements(calibration_rows(preset), spec),
            predict_measurements(load_measurements(sweep_csv), spec))


def main(pairs: list[str]) -> None:
    gpus = dict(p.split(":", 1) for p in pairs)
    for preset, sweep in gpus.items():
        name = from_name(preset).name
        spec = resolve_gpu(preset)
        cal, val = residuals(spec, name, sweep)
        own = error_bands(pd.concat([cal, val]), f"{spec.source}: calibration set + standard sweep residuals")
        own["coverage_cv"] = cv_coverage(cal, val)
        parts = []
        for other, other_sweep in gpus.items():
            if other != preset:
                moved = complete_families(transfer_from(preset, other)[0])  # as resolve_gpu completes it
                parts.append(residuals(moved, from_name(other).name, other_sweep))
        moved_bands = {}
        if parts:
            t_cal, t_val = (pd.concat(x) for x in zip(*parts))
            moved_bands = error_bands(pd.concat([t_cal, t_val]), f"transfers of this profile to "
                                      f"{', '.join(g for g in gpus if g != preset)}: residuals on their sweeps")
            moved_bands["coverage_cv"] = cv_coverage(t_cal, t_val)
        path = shipped_profile_path(name)
        doc = json.loads(path.read_text())
        doc["gpu"]["error_bands"], doc["gpu"]["transfer_bands"] = own, moved_bands
        write_text(path, json.dumps(doc, indent=1) + "\n")
        print(f"{name}: own bands coverage (5-fold CV) {own['coverage_cv']:.3f} over {own['points']} rows; "
              f"transfer bands coverage {moved_bands.get('coverage_cv', float('nan')):.3f}")
        for family, rows in own["families"].items():
            print(f"  {family:<22} " + "  ".join(f"[{lo:+.1f},{hi:+.1f}]" for lo, hi in rows))


if __name__ == "__main__":
    main(sys.argv[1:] or ["h100:results/h100/bench.csv", "h200:results/h200/bench.csv"])
