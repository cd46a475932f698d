#!/usr/bin/env bash
# Per-SM sharing study (docs/planner.md, "Per-SM sharing in the engine"): refit the shipped H200
# profile's stream-K family on its calibration points + the cal-search points (results/h200/cal_search.csv)
# with the per-SM stream limit free, refit the serving terms on top, and score the result; the shipped
# profile is not touched (a scratch copy of the tree is). CPU only, ~5 min on 2 cores.
#
#     scripts/persm_study.sh [scratch dir, default /tmp/persm_study]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-/tmp/persm_study}
py=${PYTHON:-python3}
rm -rf "$out" && mkdir -p "$out"
git -C "$repo" archive HEAD | tar -x -C "$out"
cd "$out"
export PYTHONPATH=$PWD
$py scripts/fit_baselines.py h200 streamk calibration results/h200/cal_search.csv --like-calibrate --write
$py scripts/serving_fit.py --write attnsim/profiles/h200.json --same-die attnsim/profiles/h100.json  # held-out tables
$py -m attnsim validate --gpu h200 --calibration attnsim/profiles/h200.json --measurements results/h200/bench.csv | head -9
$py scripts/oracle_replay.py results/h200/planner_oracle.csv | tail -n 4
