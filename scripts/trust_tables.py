"""Markdown tables for docs/validation.md: each shipped profile on its own sweep, every transfer between
them, a quick calibration, and error-band coverage. CPU only (committed measurements).

    PYTHONPATH=. python3 scripts/trust_tables.py [--quick-profile FILE]
"""

from __future__ import annotations

import argparse

import pandas as pd

from attnsim import strategies
from attnsim.simulator.profile_io import load_profile
from attnsim.profiles import resolve_gpu, transfer_from
from attnsim.validation.bands import covered
from attnsim.validation.compare import error_metrics, predict_measurements
from attnsim.validation.measurements import load_measurements

SWEEPS = {"h100": "results/h100/bench.csv", "h200": "results/h200/bench.csv"}


def row(label: str, spec, sweep: str) -> dict:
    rows = predict_measurements(load_measurements(sweep), spec)
    metrics = error_metrics(rows)
    out = {"profile": label, "all": f"{rows['abs_pct_error'].mean():.2f}",
           "band coverage": f"{covered(rows, spec.error_bands).mean():.2f}" if spec.error_bands else "-"}
    for name in strategies.predictable():
        if name in metrics:
            m = metrics[name]
            out[name] = f"{m['mape']:.2f} / {m['p90_ape']:.1f}"
    return out


def markdown(records: list[dict]) -> str:
    frame = pd.DataFrame(records).fillna("-")
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in frame.itertuples(index=False)]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick-profile", default=None, help="a quick-calibrated H200 profile to add")
    args = ap.parse_args()
    records = [row(f"{g} calibrated, on the {g} sweep", resolve_gpu(g), s) for g, s in SWEEPS.items()]
    for src in SWEEPS:
        for dst, sweep in SWEEPS.items():
            if src != dst:
                records.append(row(f"{src} -> {dst} transfer, on the {dst} sweep", transfer_from(src, dst)[0], sweep))
    if args.quick_profile:
        records.append(row("quick (h100 costs + H200 bandwidth/launch), on the h200 sweep",
                           load_profile(args.quick_profile), SWEEPS["h200"]))
    print("MAPE % / p90 APE % per strategy; band coverage: share of rows inside their error band")
    print(markdown(records))


if __name__ == "__main__":
    main()
