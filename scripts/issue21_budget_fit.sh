#!/usr/bin/env bash
# Issue 21 on the device: `attnsim calibrate --budget B` on the H200 with the corner-aware fit
# (validation/fit.fit_points), scored on the committed standard sweep (none of its points fitted).
#   PYTHONPATH=. bash scripts/issue21_budget_fit.sh 60     # then 30; one budget per call (< 10 min)
# Writes under $OUT: the profile, its calibration data, the calibrate log (measured / fitted seconds)
# and validate's per-family MAPE table.
set -euo pipefail
budget=${1:-60}
out=${OUT:?set OUT}
PYTHONPATH=. python3 -m attnsim calibrate --gpu h200 --budget "$budget" --out "$out/h200_b$budget.json" \
    2>&1 | tee "$out/calibrate_b$budget.log"
PYTHONPATH=. python3 -m attnsim validate --calibration "$out/h200_b$budget.json" \
    --measurements results/h200/bench.csv | tee "$out/validate_b$budget.txt"
