#!/usr/bin/env bash
# The per-SM stream limit for fa2, FlashDecoding and split-KV (docs/planner.md, "Per-SM sharing"): grids just above
# 2 CTAs per SM leave some SMs with a third CTA, and those SMs end last (the oracle's largest regrets: split-KV
# at 270-297 CTAs measured 6-12% slower than at 252). Each family's sm_stream_gbps alone (--only), every other
# cost as shipped, on every calibration-type row of the H200 (the profile's calibration points, calibrate's
# 180 s run, cal-search); split-KV as calibrate fits it; the H100's on its calibration; the carried fits, the
# serving terms, the bands and the tables after.
#
#     scripts/sm_share_refit.sh       # ~5 min on 2 cores; rewrites attnsim/profiles/{h100,h200}.json
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD
py=${PYTHON:-python3}
rows="calibration results/h200/cal180.data.json results/h200/cal_search.csv"
$py scripts/fit_baselines.py h200 splitkv $rows --like-calibrate --write
for s in fa2 flashdecoding; do $py scripts/fit_baselines.py h200 $s $rows --only sm_stream_gbps --write; done
for s in fa2 flashdecoding; do $py scripts/fit_baselines.py h100 $s calibration --only sm_stream_gbps --write; done
carry="--write --into carried_cost"
for s in fa2 flashdecoding; do $py scripts/fit_baselines.py h200 $s calibration $carry; done
$py scripts/fit_baselines.py h200 splitkv $rows $carry
for s in fa2 flashdecoding; do $py scripts/fit_baselines.py h100 $s calibration $carry; done
$py scripts/serving_fit.py --write attnsim/profiles/h200.json --same-die attnsim/profiles/h100.json
$py scripts/error_bands.py
$py scripts/trust_tables.py
