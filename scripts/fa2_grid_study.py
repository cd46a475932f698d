"""fa2's and split-KV's time against the grid at fixed bytes: the wave structure the model misses (docs/validation.md,
"Per-token work of a lone CTA": fa2 +6% at 128 CTAs, -6% at 512 = 1.29 waves of 396 slots, +4% at 2,048) and
the SM sharing it cannot explain with one per-SM limit (docs/planner.md: split-KV / FlashDecoding +6% at
133-150 CTAs, -5% at 265-300, on the oracle study).

    PYTHONPATH=. python3 scripts/fa2_grid_study.py --out $OUT      # on the device, ~2-3 min
    FA2_GRIDS="792 800 896" FA2_SIZES="64:1073741824" PYTHONPATH=. python3 scripts/fa2_grid_study.py --out $OUT
                                                                     # another set (device stage fa2_tails)

MHA workloads of 8 KV heads (one CTA per sequence x head), batch = grid / 8, the context set so every grid
streams the same KV bytes (1 GiB and 4 GiB at d 128, 1 GiB at d 64); grids from one CTA per SM (128-136) through
396 + k (a first wave of 396 resident CTAs and k in the tail) to 4,096; fa2 and split-KV at one split (the same
grid, the split-KV kernel's tile loop). Every output fp64-checked (bench_one),
the standard timer. Writes OUT/fa2_grid.csv (bench columns + `grid_asked`, rewritten after every point, so an
interrupted run keeps what it timed) and prints GB/s by grid, measured and predicted with the shipped profile.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from attnsim.bench import inputs
from attnsim.bench.results import COLUMNS
from attnsim.predict import predict_one
from attnsim.profiles import resolve_gpu
from attnsim.simulator.workload import DecodeWorkload

sys.path.insert(0, str(Path(__file__).parent))
from fa2_wave_ab import bench_specs, study_setup  # noqa: E402

KV_HEADS = 8
SPECS = ("fa2", "splitkv:splits=1")
# one CTA per SM and the SMs' second and third CTAs (136-176, 272-296: how a crowded SM shares the chip),
# then 396 + k (a first wave of 396 resident CTAs and k in the tail) to many waves
GRIDS = (128, 136, 144, 160, 176, 200, 264, 272, 280, 296, 328, 392, 400, 424, 456, 512, 600, 704, 792, 800,
         896, 1024, 1200, 1536, 2048, 4096)
SIZES = ((128, 2**30), (128, 2**32), (64, 2**30))  # (head_dim, KV bytes)
# FA2_GRIDS="392 400 ..." / FA2_SIZES="128:1073741824 ...": another set (multiples of 8), e.g. the drifted tails'
if os.environ.get("FA2_GRIDS"):
    GRIDS = tuple(int(g) for g in os.environ["FA2_GRIDS"].split())
if os.environ.get("FA2_SIZES"):
    SIZES = tuple(tuple(int(x) for x in s.split(":")) for s in os.environ["FA2_SIZES"].split())


def workload(grid: int, head_dim: int, kv_bytes: int) -> DecodeWorkload:
    batch = grid // KV_HEADS
    context = kv_bytes // (grid * 2 * head_dim * 2)  # K + V, fp16, per sequence x head
    return DecodeWorkload.build(batch, KV_HEADS, KV_HEADS, head_dim, context)


def main() -> None:
    out, config = study_setup(__doc__, SPECS)
    started, gpu = time.time(), resolve_gpu("h200")
    points = [(g, workload(g, d, size)) for d, size in SIZES for g in GRIDS]
    rows = []
    for i, (grid, w) in enumerate(points):
        pool = inputs.KvPool([w], "float16", "cuda", 0)
        rows += [{**row, "grid_asked": grid, "predicted_us": predict_one(spec, w, gpu).total_us}
                 for spec, row in zip(SPECS, bench_specs(i, w, config, pool, SPECS))]
        del pool
        torch.cuda.empty_cache()
        pd.DataFrame(rows, columns=COLUMNS + ["grid_asked", "predicted_us"]).to_csv(out / "fa2_grid.csv", index=False)
        print(f"[{time.time() - started:6.1f}s] {i + 1}/{len(points)} grid {grid} d {w.head_dim}", flush=True)
    frame = pd.DataFrame(rows)
    frame["pred_gbps"] = frame["kv_bytes"] / frame["predicted_us"] / 1e3
    frame["err_pct"] = 100 * (frame["predicted_us"] / frame["time_us"] - 1)
    print(frame[["requested", "head_dim", "kv_bytes", "grid_asked", "grid", "time_us", "achieved_gbps", "pred_gbps", "err_pct",
                 "status"]].round(2).to_string(index=False))
    print("not ok:", int((frame["status"] != "ok").sum()))


if __name__ == "__main__":
    main()
