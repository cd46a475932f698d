#!/usr/bin/env bash
# One device call: GPU tests, calibration, then the benchmark sweep (resumable), inside ~570 s.
# Usage on the device: bash scripts/h100_session.sh [tests|calibrate|bench]...  (default: all three)
# Everything lands in $OUT: gpu_tests.log, h100.json, bench.csv, session.log.
set -u
export PYTHONPATH=. PYTHONUNBUFFERED=1
OUT=${OUT:-out}
mkdir -p "$OUT"
budget=${BUDGET_S:-570}
steps=${*:-tests calibrate bench}
for step in $steps; do
  left=$((budget - SECONDS))
  echo "== $step (t=${SECONDS}s, ${left}s left)"
  case $step in
    tests) timeout $((left < 150 ? left : 150)) python3 -m pytest -q -m gpu -x tests/kernels -p no:cacheprovider \
             > "$OUT/gpu_tests.log" 2>&1; echo "gpu tests rc=$?"; tail -3 "$OUT/gpu_tests.log" ;;
    calibrate) timeout $((left < 240 ? left : 240)) python3 -m attnsim calibrate --gpu h100 --out "$OUT/h100.json" ;;
    bench) [ -f results/h100/bench.csv ] && [ ! -f "$OUT/bench.csv" ] && cp results/h100/bench.csv "$OUT/bench.csv"
           timeout $((left - 5)) python3 -m attnsim bench --resume --out "$OUT/bench.csv" 2>&1 | grep -v '^\s*bench ' | tail -40 ;;
  esac
done
echo "== done at t=${SECONDS}s"
