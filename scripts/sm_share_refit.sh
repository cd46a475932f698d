#!/usr/bin/env bash
# The per-SM stream limit under demand-proportional sharing (docs/planner.md, "Per-SM sharing"; cost.py: an SM
# asks for min(k b, sm_stream_gbps), the chip's rate is shared in proportion to the asks): each family's
# sm_stream_gbps refitted for the rule. fa2, FlashDecoding and split-KV: sm_stream_gbps alone (--only), every
# other cost as shipped, on every calibration-type row of the H200 (the profile's calibration points,
# calibrate's 180 s run, cal-search); stream-K, whose persistent grid of two CTAs per SM puts the limit under
# every decode point (the knee's input is the SMs' asks), as calibrate fits it on calibration + cal-search;
# the H100's fa2 and FlashDecoding on its calibration; then the carried fits, the serving terms, the bands
# and the tables.
#
#     scripts/sm_share_refit.sh       # ~10 min on 2 cores; rewrites attnsim/profiles/{h100,h200}.json
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD
py=${PYTHON:-python3}
rows="calibration results/h200/cal180.data.json results/h200/cal_search.csv"
$py scripts/fit_baselines.py h200 streamk calibration results/h200/cal_search.csv --like-calibrate --write
for s in fa2 flashdecoding splitkv; do $py scripts/fit_baselines.py h200 $s $rows --only sm_stream_gbps --write; done
for s in fa2 flashdecoding; do $py scripts/fit_baselines.py h100 $s calibration --only sm_stream_gbps --write; done
carry="--write --into carried_cost"
for s in fa2 flashdecoding streamk; do $py scripts/fit_baselines.py h200 $s calibration $carry; done
$py scripts/fit_baselines.py h200 splitkv $rows $carry
for s in fa2 flashdecoding; do $py scripts/fit_baselines.py h100 $s calibration $carry; done
$py scripts/serving_fit.py --write attnsim/profiles/h200.json --same-die attnsim/profiles/h100.json
$py scripts/error_bands.py
$py scripts/trust_tables.py
