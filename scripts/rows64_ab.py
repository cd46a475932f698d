"""Query tiles of 17-32 packed rows: as they run (32-row mma.sync tiles) against padded to 64 rows.

    PYTHONPATH=. python3 scripts/rows64_ab.py --out $OUT      # on the device, ~2 min

On the H200 qlen sweep fa2's 32-row tiles (q_len 4 x group 8) stream 1.23-1.26x slower than its
16-row decode tiles on the same KV, its 64-row tiles 1.06x (results/h200/bench_qlen.csv): at 64 rows
and 4 warps Triton issues Hopper's warpgroup mma (cross-compiled: 605 loop instructions, 5 barriers)
where 32 rows take mma.sync with cross-warp softmax reductions (491, 12 barriers). This times every
kernel of ours on 32-row workloads (verify blocks and group-32 decode) as shipped and with
`query_tile_rows` padding 17-32 rows to 64 (patched in every module that imports it, model included,
so the plan is the one that would ship), each output fp64-checked. Writes OUT/rows64_ab.csv (bench
columns + `rows`) and prints time per condition.
"""

from __future__ import annotations

import importlib
import time

import pandas as pd
import torch

from attnsim.bench import inputs
from attnsim.bench.results import COLUMNS
from attnsim.simulator import workload as workload_module
from attnsim.simulator.workload import DecodeWorkload
from fa2_wave_ab import bench_specs, study_setup

# (batch, q_heads, kv_heads, context, q_len): 32 packed rows each, d 128, bf16
SHAPES = [(1, 8, 1, 8192, 4), (8, 16, 2, 32768, 4), (4, 32, 8, 131072, 8), (32, 8, 1, 8192, 4),
          (4, 32, 1, 32768, 1), (16, 64, 2, 8192, 1), (2, 28, 4, 65536, 4)]
SPECS = ["fa2", "flashdecoding", "streamk", "splitkv", "auto"]
USERS = ["attnsim.kernels.launch", "attnsim.plans.resources", "attnsim.simulator.cost",
         "attnsim.simulator.partition.flashdecoding", "attnsim.bench.harness"]
SHIPPED = workload_module.query_tile_rows


def padded_rows(w: DecodeWorkload) -> int:
    rows = SHIPPED(w)
    return 64 if rows == 32 and not w.is_mla else rows


def use_rows(fn) -> None:
    for name in USERS:
        setattr(importlib.import_module(name), "query_tile_rows", fn)


def main() -> None:
    out, config = study_setup(__doc__, SPECS)
    started, rows = time.time(), []
    points = [DecodeWorkload.build(b, hq, hkv, 128, c, q, "bfloat16") for b, hq, hkv, c, q in SHAPES]
    for i, w in enumerate(points):
        pool = inputs.KvPool([w], "bfloat16", "cuda", 0)
        for label, fn in (("32", SHIPPED), ("64", padded_rows), ("32-again", SHIPPED)):
            use_rows(fn)
            rows += [{**r, "rows": label} for r in bench_specs(i, w, config, pool, SPECS)]
            pd.DataFrame(rows, columns=COLUMNS + ["rows"]).to_csv(out / "rows64_ab.csv", index=False)
        use_rows(SHIPPED)
        del pool
        torch.cuda.empty_cache()
        print(f"[{time.time() - started:6.1f}s] point {i + 1}/{len(points)}", flush=True)
    frame = pd.DataFrame(rows, columns=COLUMNS + ["rows"])
    print(frame.pivot_table(index=["batch", "q_heads", "kv_heads", "context", "q_len", "requested"], columns="rows",
                            values="time_us").round(1).to_string())
    print("not ok:", int((frame["status"] != "ok").sum()))


if __name__ == "__main__":
    main()
