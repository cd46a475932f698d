"""Why fa2 at 1024 CTAs measured 7-8% slower on 2026-12-05 than on 2026-12-03 (docs/splitkv.md).

    PYTHONPATH=. python3 scripts/fa2_wave_ab.py --out $OUT      # on the device, ~2 min

The d 128 kernel cross-compiles to the same SASS as the 12-03 one (106 registers, same tile loop), so
the suspect is the harness: since issue 19 item 4 every bench point also times a pure read of its bytes
(membw.ReadFloor), whose buffer (as large as the largest point, 8.6 GB) stays allocated for the rest of
the run. This times fa2, stream-K and FlashDecoding on the points where fa2 slowed (2.6 waves of 1024
CTAs) and on a control (2048 CTAs, not slowed), each under three conditions, in one process:
`bare` (only the K/V pool), `floor` (a ReadFloor buffer of the point's bytes allocated and used first,
as `attnsim bench` does), `bare-again` (freed, to rule out drift). Every output fp64-checked (bench_one).
Writes OUT/fa2_wave_ab.csv (bench columns + `condition`) and prints time per condition.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

from attnsim.bench import inputs
from attnsim.bench.harness import BenchConfig, bench_one, default_prepare
from attnsim.bench.results import COLUMNS
from attnsim.kernels.membw import ReadFloor
from attnsim.kernels.reference import attention_reference
from attnsim.profiles import resolve_gpu
from attnsim.simulator.workload import DecodeWorkload

SHAPES = [(8, 128, 128, 64, 32768), (32, 32, 32, 128, 8192), (8, 128, 128, 128, 4096),  # 1024 CTAs: slowed
          (16, 128, 128, 64, 2048)]  # 2048 CTAs: not slowed (control)
SPECS = ["fa2", "streamk", "flashdecoding"]
CONDITIONS = ["bare", "floor", "bare-again"]


def bench_specs(i: int, w: DecodeWorkload, config: BenchConfig, pool, specs, floor_us: float | None = None) -> list[dict]:
    """Bench rows of `specs` on workload `w` (point index i: its query's seed), every output fp64-checked."""
    q = inputs.make_query(w, i, "cuda", 0)
    with pool.poisoned_padding(w) as (k, v):
        ref = inputs.reference_output(attention_reference, q, k, v, w.contexts)
        rows = [bench_one(spec, w, q, k, v, ref, config, default_prepare, floor_us=floor_us) for spec in specs]
    del q, ref
    torch.cuda.empty_cache()
    return rows


def time_point(i: int, w: DecodeWorkload, config: BenchConfig, pool, condition: str) -> list[dict]:
    floor = ReadFloor(config.timer) if condition == "floor" else None
    floor_us = floor.us(w.kv_bytes() + w.io_bytes()) if floor else None
    rows = [{**row, "condition": condition} for row in bench_specs(i, w, config, pool, SPECS, floor_us)]
    del floor
    torch.cuda.empty_cache()
    return rows


def study_setup(doc: str, specs) -> tuple[Path, BenchConfig]:
    """(--out folder, bench config of `specs` on this device) of a device study whose docstring is `doc`."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    gpu = resolve_gpu("h200")  # its measured read bandwidth divides achieved GB/s (not re-measured here)
    return ap.parse_args().out, BenchConfig(tuple(specs), gpu, torch.cuda.get_device_name(), gpu.hbm_read_gbps)


def main() -> None:
    out, config = study_setup(__doc__, SPECS)
    started = time.time()
    points = [DecodeWorkload.build(b, hq, hkv, d, c) for b, hq, hkv, d, c in SHAPES]
    rows = []
    for i, w in enumerate(points):
        pool = inputs.KvPool([w], "float16", "cuda", 0)
        for condition in CONDITIONS:
            rows += time_point(i, w, config, pool, condition)
            pd.DataFrame(rows, columns=COLUMNS + ["condition"]).to_csv(out / "fa2_wave_ab.csv", index=False)
        del pool
        torch.cuda.empty_cache()
        print(f"[{time.time() - started:6.1f}s] point {i + 1}/{len(points)}", flush=True)
    frame = pd.DataFrame(rows, columns=COLUMNS + ["condition"])
    print(frame.pivot_table(index=["batch", "q_heads", "head_dim", "context", "requested"], columns="condition",
                            values="time_us").round(1).to_string())
    print("not ok:", int((frame["status"] != "ok").sum()))


if __name__ == "__main__":
    main()
