"""Score what `attnsim calibrate` fits from measured calibration data, as issue 21's acceptance reads it.

    PYTHONPATH=. python3 scripts/calibration_score.py results/h200/cal180.data.json [--gpu h200]   # ~1-2 min

Runs `attnsim calibrate --gpu GPU --from-data DATA` (the measurements as the device took them, the fit by
this tree's code) into a scratch profile, then prints its MAPE per strategy on the GPU's standard sweep
(results/<gpu>/bench.csv, none of it fitted) and, for hybrid and balanced (not in the sweep), on the
hybrid / balanced rows of results/<gpu>/calibration_data.json: the same workloads a budgeted calibration
re-measures and fits, timed in another session, so not independent points (docs/validation.md).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from attnsim.profiles import resolve_gpu
from attnsim.validation.compare import predict_measurements
from attnsim.validation.measurements import load_measurements
from attnsim.validation.trust import EXTRA_STRATEGIES, mape_by_strategy


def fitted_profile(gpu: str, data: str, out: Path) -> None:
    cmd = [sys.executable, "-m", "attnsim", "calibrate", "--gpu", gpu, "--from-data", data, "--out", str(out)]
    subprocess.run(cmd, check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("--gpu", default="h200")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        profile = Path(scratch) / "calibrated.json"
        fitted_profile(args.gpu, args.data, profile)
        spec = resolve_gpu(args.gpu, str(profile))
    sweep = load_measurements(f"results/{args.gpu}/bench.csv")
    scores = mape_by_strategy(predict_measurements(sweep, spec))
    pool = pd.DataFrame(json.loads(Path(f"results/{args.gpu}/calibration_data.json").read_text())
                        ["calibration_data"]["points"])
    extra = pool[(pool["status"] == "ok") & pool["strategy"].isin(EXTRA_STRATEGIES)]
    if not extra.empty:
        scores.update({f"{k} (pool rows)": v for k, v in mape_by_strategy(predict_measurements(extra, spec)).items()})
    print(f"{args.data} fitted by this tree, MAPE % on results/{args.gpu}/bench.csv (none fitted):")
    for name, value in scores.items():
        print(f"  {name:28s} {value:6.2f}")


if __name__ == "__main__":
    main()
