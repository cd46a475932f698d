#!/usr/bin/env bash
# Refit the combine families after a combine CTA's "segments" became its dependent load steps (our combine
# kernel merges BLOCK_P partials a step: partition.flashdecoding.combine_block) and the registry's COMBINE
# fields gained the per-CTA stream rate (partials are read from L2, not at the HBM stream rate of the
# bandwidth curve): docs/validation.md, "Combine launches". Each combine family alone (--only, --families),
# every other cost as shipped, on its strategy's rows (our kernels on the H200: calibration + cal-search);
# the H100's cuDNN again on its sweep with CV; the carried fits of the strategies with a combine; then the
# serving terms, the bands and the tables.
#
#     scripts/combine_refit.sh        # ~4 min on 2 cores; rewrites attnsim/profiles/{h100,h200}.json
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD
py=${PYTHON:-python3}
only="--only launch_overhead_us,cta_fixed_us,segment_fixed_us,cta_stream_gbps_per_warp --write"
$py scripts/fit_baselines.py h200 flashdecoding calibration results/h200/cal_search.csv $only --families flashdecoding-combine
$py scripts/fit_baselines.py h200 torch-flash calibration $only --families torch-flash-combine
$py scripts/fit_baselines.py h200 torch-cudnn calibration $only --families torch-cudnn-combine
$py scripts/fit_baselines.py h100 flashdecoding calibration $only --families flashdecoding-combine
$py scripts/fit_baselines.py h100 torch-flash calibration $only --families torch-flash-combine
$py scripts/fit_baselines.py h100 torch-cudnn results/h100/bench.csv --cv --write
carry="--write --into carried_cost"
for s in flashdecoding torch-cudnn; do $py scripts/fit_baselines.py h200 $s calibration $carry; done
$py scripts/fit_baselines.py h200 torch-flash calibration results/h200/bench.csv $carry
$py scripts/fit_baselines.py h100 flashdecoding calibration $carry
$py scripts/fit_baselines.py h100 torch-flash calibration results/h100/bench.csv $carry
$py scripts/serving_fit.py --write attnsim/profiles/h200.json --same-die attnsim/profiles/h100.json
$py scripts/error_bands.py
$py scripts/trust_tables.py
