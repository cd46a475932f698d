"""Write measured error bands into the shipped profiles and the datasheet model's bands; print coverage.

    PYTHONPATH=. python3 scripts/error_bands.py            # ~2 min on 2 cores

For each swept GPU (results/<gpu>/: calibration_data.json and the standard sweep bench.csv):
- error_bands of its shipped profile: its residuals on its calibration set and sweep (a strategy fitted
  on the sweep itself, e.g. the H100's cuDNN, enters with its out-of-fold residuals, <strategy>_cv.csv);
- transfer_bands: the residuals of this profile transferred to the other GPU, on that GPU's rows (what
  a transferred profile inherits); quick_bands (top level of the document): the same for a quick
  calibration from this profile, replayed on the other GPU's recorded bandwidth curve and launch time;
- attnsim/profiles/datasheet_bands.json: the datasheet model's residuals on every swept GPU.
Each table holds, per cost family x KV-size bin, the 5th-95th percentile band and the MAPE of the same
residuals (`expected_pct`, what predictions print as their expected error), and its coverage held out
(5-fold over workloads; attnsim/validation/trust.py); the datasheet's also by leaving one GPU out.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from attnsim.fileio import write_text
from attnsim.profiles import resolve_gpu, transfer_from
from attnsim.profiles.datasheet import BANDS_FILE
from attnsim.simulator.profile_io import shipped_profile_path
from attnsim.validation.bands import covered, error_bands
from attnsim.validation.compare import predict_measurements
from attnsim.validation.trust import cv_coverage, quick_spec, residuals_on

sys.path.insert(0, str(Path(__file__).parent))
from trust_tables import GPUS, gpu_data, out_of_fold  # noqa: E402


def bands_with_coverage(rows: pd.DataFrame, scored: pd.DataFrame, basis: str) -> dict:
    bands = error_bands(rows, basis)
    bands["coverage_cv"] = round(cv_coverage(rows, scored), 3)
    return bands


def write_profile_bands(name: str, own: dict, moved: dict, quick: dict) -> None:
    path = shipped_profile_path(name)
    doc = json.loads(path.read_text())
    doc["gpu"]["error_bands"], doc["gpu"]["transfer_bands"], doc["quick_bands"] = own, moved, quick
    write_text(path, json.dumps(doc, indent=1) + "\n")


def main() -> None:
    data = {gpu: gpu_data(gpu, folder) for gpu, folder in GPUS.items()}
    for gpu, d in data.items():
        other = next(g for g in data if g != gpu)
        spec = resolve_gpu(gpu)
        own_rows = out_of_fold(residuals_on(spec, d), GPUS[gpu])
        own = bands_with_coverage(own_rows, out_of_fold(predict_measurements(d.sweep, spec), GPUS[gpu]),
                                  f"{spec.source}: calibration set + standard sweep residuals")
        moved_spec = transfer_from(gpu, other)[0]
        moved = bands_with_coverage(residuals_on(moved_spec, data[other]), predict_measurements(data[other].sweep, moved_spec),
                                    f"transfer of this profile to {other}: residuals on its calibration set and sweep")
        quick_spec_ = quick_spec(gpu, data[other])
        quick = bands_with_coverage(residuals_on(quick_spec_, data[other]), predict_measurements(data[other].sweep, quick_spec_),
                                    f"quick calibration from this profile on {other} (its recorded bandwidth curve and "
                                    "launch time): residuals on its calibration set and sweep")
        write_profile_bands(d.name, own, moved, quick)
        print(f"{gpu}: own bands coverage {own['coverage_cv']:.3f} ({own['points']} rows), transfer bands "
              f"{moved['coverage_cv']:.3f} ({moved['points']} rows), quick bands {quick['coverage_cv']:.3f}")
    per_gpu = {g: residuals_on(resolve_gpu(g, "none"), d) for g, d in data.items()}
    rows = pd.concat(per_gpu.values(), ignore_index=True)
    sheet = bands_with_coverage(rows, rows, "datasheet model (first principles): residuals on the H100 and H200 "
                                "calibration sets and sweeps")
    sheet["coverage_leave_one_gpu_out"] = {g: round(float(covered(r, error_bands(pd.concat(
        [x for h, x in per_gpu.items() if h != g]), "held out")).mean()), 3) for g, r in per_gpu.items()}
    path = Path(shipped_profile_path("h200")).with_name(BANDS_FILE)
    write_text(path, json.dumps(sheet, indent=1) + "\n")
    print(f"datasheet: coverage {sheet['coverage_cv']:.3f} (5-fold), leaving one GPU out "
          f"{sheet['coverage_leave_one_gpu_out']}; wrote {path}")


if __name__ == "__main__":
    main()
