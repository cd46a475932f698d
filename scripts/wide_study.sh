#!/usr/bin/env bash
# Wide query tiles study (docs/planner.md, "Wide query tiles"): refit the shipped H200 profile's families of
# our kernels that run 32-row decode tiles on their calibration points + the cal-search points
# (results/h200/cal_search.csv, whose MQA 32/1 and 64/2 rows exercise CostParams.wide_tile_ns_per_row_token)
# with the term alone free (every other cost as shipped: --only), then the serving fit (which prints the held-out
# tables) and the scores; the shipped profile is not touched (a scratch copy of the tree is). LIKE_CALIBRATE=1:
# every parameter of the families refitted instead (the alternative the study rejected, docs/planner.md).
#
#     scripts/wide_study.sh [scratch dir, default /tmp/wide_study] [families, default "streamk splitkv fa2 flashdecoding"]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-/tmp/wide_study}
families=${2:-streamk splitkv fa2 flashdecoding}
py=${PYTHON:-python3}
rm -rf "$out" && mkdir -p "$out"
git -C "$repo" archive HEAD | tar -x -C "$out"
cd "$out"
export PYTHONPATH=$PWD
for family in $families; do
  if [ -n "${LIKE_CALIBRATE:-}" ]; then how=--like-calibrate; else how="--only wide_tile_ns_per_row_token"; fi
  $py scripts/fit_baselines.py h200 "$family" calibration results/h200/cal_search.csv $how --write
done
$py scripts/serving_fit.py --write attnsim/profiles/h200.json --same-die attnsim/profiles/h100.json  # held-out tables
$py -m attnsim validate --gpu h200 --calibration attnsim/profiles/h200.json --measurements results/h200/bench.csv | head -9
$py scripts/oracle_replay.py results/h200/planner_oracle.csv | tail -n 4
