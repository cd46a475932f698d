#!/usr/bin/env bash
# The local half of a landing whose H200 sweeps came back in two device calls (docs/kernels.md, "The landing,
# step by step"), in the landed tree (git merge --ff-only first):
#
#     scripts/land_local.sh CALL1_DIR CALL2_DIR
#
# CALL1_DIR: lsum_land's (or lsum_land_solo's) files: cal_fp8.csv, cal_serving.csv, lsum_abls.csv (the landed
# kernel's fp8 sweep) and, from lsum_land, bench_paged.csv / bench_qlen.csv (else the committed ones stand).
# CALL2_DIR: land_refit_auto's: prof/h200.json, prof/h100.json (the device's refit of the same files) and
# bench_fp8.csv, bench_paged.csv, bench_qlen.csv (`auto` re-timed with them).
# 1. scripts/land3_refit.sh on call 1's files; the profiles must equal the device's (1e-6 relative: the hosts'
#    NumPy sums differ in the last bits); 2. again with call 2's held-out sweeps (the fit's inputs are the same
# cal files, so only the held-out figures move); 3. every `auto` row must run what the profile plans today.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: scripts/land_local.sh CALL1_DIR CALL2_DIR" >&2; exit 2; }
c1=$1 c2=$2
py=${PYTHON:-python3}; [ -x .venv/bin/python ] && py=${PYTHON:-.venv/bin/python}
export PYTHONPATH=$PWD
for f in "$c1/cal_fp8.csv" "$c1/cal_serving.csv" "$c1/lsum_abls.csv" "$c2/prof/h200.json" "$c2/prof/h100.json" \
         "$c2/bench_fp8.csv" "$c2/bench_paged.csv" "$c2/bench_qlen.csv"; do
  [ -f "$f" ] || { echo "land_local: $f: missing" >&2; exit 2; }
done
d1=$(mktemp -d) d2=$(mktemp -d); trap 'rm -rf "$d1" "$d2"' EXIT
cp "$c1/cal_fp8.csv" "$c1/cal_serving.csv" "$d1/" && cp "$c1/lsum_abls.csv" "$d1/bench_fp8.csv"
for s in paged qlen; do cp "$c1/bench_$s.csv" "$d1/" 2>/dev/null || cp "results/h200/bench_$s.csv" "$d1/"; done
bash scripts/land3_refit.sh "$d1"
$py - "$c2/prof" <<'PY'
import json, math, sys
from pathlib import Path
def numbers(doc, path=""):
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from numbers(v, f"{path}.{k}")
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from numbers(v, f"{path}[{i}]")
    elif isinstance(doc, (int, float)) and not isinstance(doc, bool):
        yield path, float(doc)
bad = []
for name in ("h200.json", "h100.json"):
    here = dict(numbers(json.loads(Path("attnsim/profiles", name).read_text())["gpu"]))
    there = dict(numbers(json.loads(Path(sys.argv[1], name).read_text())["gpu"]))
    bad += [f"{name}{k}: {here.get(k)} here, {there.get(k)} on the device" for k in sorted(set(here) | set(there))
            if k not in here or k not in there or not math.isclose(here[k], there[k], rel_tol=1e-6, abs_tol=1e-9)]
print("land_local: profiles as the device refitted them" if not bad else "\n".join(bad[:20]))
sys.exit(1 if bad else 0)
PY
cp "$c1/cal_fp8.csv" "$c1/cal_serving.csv" "$c2/bench_fp8.csv" "$c2/bench_paged.csv" "$c2/bench_qlen.csv" "$d2/"
bash scripts/land3_refit.sh "$d2"
$py scripts/auto_as_planned.py results/h200/bench_fp8.csv results/h200/bench_paged.csv results/h200/bench_qlen.csv --strict
