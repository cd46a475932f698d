#!/usr/bin/env bash
# Refit both shipped profiles after the dirty-L2 write-back became f x min(KV, L2) (cost.write_back_bytes;
# docs/validation.md, "Dirty L2 lines a read evicts"). Each family's own fit: the dirty share and the launch
# overhead alone (--only), every other cost as shipped, on the rows it was fitted on (our kernels on the H200:
# calibration + cal-search); the H100's cuDNN costs, fitted on its sweep, again with their 5-fold CV; every
# carried fit (what transfers take) again on its rows; then the serving terms, the error bands and the tables.
#
#     scripts/dirty_refit.sh          # ~6 min on 2 cores; rewrites attnsim/profiles/{h100,h200}.json
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD
py=${PYTHON:-python3}
only="--only l2_dirty_fraction,launch_overhead_us --write"
for s in fa2 flashdecoding streamk splitkv; do $py scripts/fit_baselines.py h200 $s calibration results/h200/cal_search.csv $only; done
for s in torch-flash torch-cudnn; do $py scripts/fit_baselines.py h200 $s calibration $only; done
for s in fa2 flashdecoding streamk torch-flash; do $py scripts/fit_baselines.py h100 $s calibration $only; done
$py scripts/fit_baselines.py h100 torch-cudnn results/h100/bench.csv --cv --write
carry="--write --into carried_cost"
for s in fa2 flashdecoding streamk splitkv torch-cudnn; do $py scripts/fit_baselines.py h200 $s calibration $carry; done
$py scripts/fit_baselines.py h200 torch-flash calibration results/h200/bench.csv $carry
for s in fa2 flashdecoding streamk; do $py scripts/fit_baselines.py h100 $s calibration $carry; done
$py scripts/fit_baselines.py h100 torch-flash calibration results/h100/bench.csv $carry
$py scripts/serving_fit.py --write attnsim/profiles/h200.json --same-die attnsim/profiles/h100.json
$py scripts/error_bands.py
$py scripts/trust_tables.py
