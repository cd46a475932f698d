"""Why the H100's baseline costs miss on the H200 (issue 21): residuals of the transfer, and a counterfactual.

    PYTHONPATH=. python3 scripts/baseline_transfer_study.py                 # ~3 min on 2 cores
    PYTHONPATH=. python3 scripts/baseline_transfer_study.py --shares 1,0.5 --source h200

1. The transferred profile's signed error on the target's sweep per cost family x KV bin (where the
   transfer misses, and whether the calibrated profile misses there too).
2. A counterfactual of the dirty-L2 term (simulator/cost.dirty_write_back_bytes): a launch writes back
   min(share x KV bytes, l2_dirty_fraction x L2 bytes) instead of min(KV bytes, ...). The measured
   floor under do_bench's zeroing flush on the H200 (/work/shared/research/small-call-decode.md: a
   plain streaming read pays 0.45 / 2.1 / 6.6 / 8.6 / 8.5 us at 4 / 16 / 64 / 256 MB / 1 GB) is
   write-back of about half the KV bytes up to ~38 MB (share 0.5), where the model bills all of
   them (share 1: 0.9 / 3.6 / 9.5 / 9.6 us). Each share refits the baseline's carried costs on the
   source (validation/physical_fit.py, the source's sweep + calibration rows: never the target's)
   and scores the source sweep and the transfer on the target sweep. Only the baseline's families
   are refitted; the patched term is this process's, not the model's.
"""

from __future__ import annotations

import argparse
import dataclasses

import pandas as pd

from attnsim.profiles import resolve_gpu, transfer_from
from attnsim.simulator import cost
from attnsim.validation import physical_fit
from attnsim.validation.compare import predict_measurements
from attnsim.validation.fit import fit_points
from attnsim.validation.measurements import measured_points
from trust_tables import GPUS, gpu_data

BASELINES = ("torch-flash", "torch-cudnn")
KV_BINS_MB = (0, 4, 16, 64, 256, 1024, 1e9)


def residual_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean signed and absolute % error per family x KV bin."""
    kv_bin = pd.cut(rows["kv_bytes"] / 2**20, KV_BINS_MB)
    grouped = rows.groupby([rows["family"], kv_bin], observed=True)["pct_error"]
    return grouped.agg(n="size", mean="mean", mape=lambda s: s.abs().mean()).round(2)


def with_write_back_share(share: float):
    """cost.dirty_write_back_bytes with min(share x KV, dirty L2) (module docstring, item 2)."""
    def write_back(launch, gpu):
        if launch.name != "attention":
            return 0.0
        kv = launch.segments.kv_bytes if launch.segments is not None else launch.cta_read_bytes
        return min(share * float(kv.sum()), gpu.cost_for(launch.family).l2_dirty_fraction * gpu.l2_bytes)
    return write_back


def counterfactual(strategy: str, source: str, target: str, share: float) -> dict:
    """The baseline refitted (carried fit) on `source` under `share`, scored on both sweeps."""
    cost.dirty_write_back_bytes = with_write_back_share(share)
    spec, src, tgt = resolve_gpu(source), gpu_data(source, GPUS[source]), gpu_data(target, GPUS[target])
    rows = pd.concat([src.sweep, src.calibration], ignore_index=True)
    rows = rows[rows["strategy"] == strategy]
    start = physical_fit.datasheet_start(spec, strategy)
    free = physical_fit.free_params(strategy)
    fit = fit_points(measured_points(rows, start), start, free, physical_fit.rate_bounds(start, strategy))
    moved = transfer_from(source, target)[0]
    moved = dataclasses.replace(moved, cost={**moved.cost, **{f: fit.spec.cost[f] for f in free}})
    own = predict_measurements(src.sweep[src.sweep["strategy"] == strategy], fit.spec)
    there = predict_measurements(tgt.sweep[tgt.sweep["strategy"] == strategy], moved)
    rates = {f: round(fit.spec.cost[f].cta_stream_gbps_per_warp, 2) for f in free if "combine" not in f}
    return {"strategy": strategy, "share": share, "source sweep MAPE": round(float(own["abs_pct_error"].mean()), 2),
            f"transferred to {target} MAPE": round(float(there["abs_pct_error"].mean()), 2), "rates GB/s/warp": rates}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", default="h100", choices=tuple(GPUS))
    ap.add_argument("--shares", default="1,0.5")
    args = ap.parse_args()
    target = next(g for g in GPUS if g != args.source)
    tgt = gpu_data(target, GPUS[target])
    sweep = tgt.sweep[tgt.sweep["strategy"].isin(BASELINES)]
    for label, spec in (("transferred", transfer_from(args.source, target)[0]), ("calibrated", resolve_gpu(target))):
        print(f"\n{label} ({args.source} -> {target} or own) on {target}'s sweep: signed % error\n")
        print(residual_table(predict_measurements(sweep, spec)).unstack(1).to_string())
    original = cost.dirty_write_back_bytes
    try:
        for strategy in BASELINES:
            for share in (float(s) for s in args.shares.split(",")):
                print(counterfactual(strategy, args.source, target, share), flush=True)
    finally:
        cost.dirty_write_back_bytes = original


if __name__ == "__main__":
    main()
