#!/usr/bin/env bash
# The CPU half of landing branch land3 (docs/kernels.md, "Landing the three"): the H200 serving sweeps
# re-timed on the merged kernels go into results/h200/, then every recorded figure resting on them is
# re-recorded: the serving terms and bands (both profiles), the engine's golden figures, the README.
#
#     scripts/land3_refit.sh DIR [DIR ...]   # folders holding cal_serving.csv, bench_paged.csv,
#                                            # bench_qlen.csv, bench_fp8.csv (the device calls' files_at)
# Refuses (exit 2, nothing copied) a CSV that is missing, short of the shipped sweep's rows, timed on
# another GPU than an H200, or with a row that is not ok. ~40 s on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD
py=${PYTHON:-python3}; [ -x .venv/bin/python ] && py=${PYTHON:-.venv/bin/python}
trap 'rm -f results/h200/*.csv.new' EXIT  # a refused sweep leaves nothing behind
[ $# -ge 1 ] || { echo "usage: scripts/land3_refit.sh DIR [DIR ...]" >&2; exit 2; }
# the sweeps the serving fit reads (validation/serving_fit.py): the fitted one, then the held-out ones
names=$($py -c "from attnsim.validation.serving_fit import SWEEPS; print('cal_serving', *(f'bench_{s}' for s in SWEEPS))")
check_sweep() {  # $1: a device call's CSV, $2: where it goes, $3: strategies a point; refuses (exit 1) a short,
  # foreign-GPU or failed sweep, else writes $2.new (installed once every sweep passed)
  $py - "$1" "$2" "$3" <<'PY'
import sys
from pathlib import Path
import pandas as pd
path, shipped, per_point = sys.argv[1], sys.argv[2], int(sys.argv[3])
frame = pd.read_csv(path, dtype=str, keep_default_na=False)
# bench_fp8's stage also times stream-K at 8 warps, the bridge to the earlier fp8 tables: those rows are kept
# apart (results/h200/fp8_streamk_w8.csv), as the shipped sweep keeps them
bridge = frame["requested"] == "streamk:num_warps=8"
if bridge.any():
    frame, extra = frame[~bridge], frame[bridge]
    extra.to_csv(shipped.replace("bench_fp8.csv", "fp8_streamk_w8.csv.new"), index=False)
# every point of the sweep as defined today x the stage's strategies (our three kernels and auto; cal-fp8: + split-KV): a call
# cut short leaves rows out
from attnsim.bench.sweep import SWEEPS
name = Path(shipped).stem.removeprefix("bench_").replace("_", "-")
expected = len(SWEEPS[name]("bfloat16")) * per_point
if len(frame) != expected:
    sys.exit(f"land3_refit: {path}: {len(frame)} rows, the sweep has {expected} (the call cut short? rerun its stage)")
gpus, bad = set(frame["gpu"]), frame[frame["status"] != "ok"]
if not all("H200" in g for g in gpus):
    sys.exit(f"land3_refit: {path}: timed on {sorted(gpus)}, not an H200")
if len(bad):
    sys.exit(f"land3_refit: {path}: {len(bad)} rows not ok (first: {bad.iloc[0]['requested']} {bad.iloc[0]['status']})")
frame.to_csv(shipped + ".new", index=False)  # installed once every sweep passed
print(f"{path}: {len(frame)} rows, all ok, {sorted(gpus)[0]}" + (f" (+{bridge.sum()} 8-warp bridge rows)" if bridge.any() else ""))
PY
}
declare -A found
for name in $names; do
  for dir in "$@"; do [ -f "$dir/$name.csv" ] && { found[$name]="$dir/$name.csv"; break; }; done
  [ -n "${found[$name]:-}" ] || { echo "land3_refit: $name.csv: not in $*" >&2; exit 2; }
  check_sweep "${found[$name]}" "results/h200/$name.csv" 4 || exit 2
done
# cal-fp8 (the serving fit's long fp8 streams, device stage bench_cal_fp8: five strategies), where a call measured it
for dir in "$@"; do
  [ -f "$dir/cal_fp8.csv" ] && { check_sweep "$dir/cal_fp8.csv" results/h200/cal_fp8.csv 5 || exit 2; break; }
done
for new in results/h200/*.csv.new; do mv "$new" "${new%.new}"; done
$py scripts/serving_fit.py --write attnsim/profiles/h200.json --same-die attnsim/profiles/h100.json
$py tests/simulator/engine_golden.py --write
$py scripts/readme_examples.py --write
$py scripts/serving_tables.py --gpu h200 results/h200/bench_paged.csv results/h200/bench_fp8.csv results/h200/bench_qlen.csv
