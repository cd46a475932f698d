"""Head dims that are not powers of two on a GPU: d 96 against d 128 and d 160 against d 256 (docs/kernels.md,
"Head dims that are not powers of two"), the same batch, heads and context, our kernels and `auto`.

    PYTHONPATH=. python3 scripts/head_dim_pad_check.py --out $OUT      # on the device, ~2 min
    # the KV tile of d 160-224 (32 tokens by default: 10 KB of real K a tile) against 64-token tiles, ~1 min
    PYTHONPATH=. python3 scripts/head_dim_pad_check.py --out $OUT --pairs 160,192,224 \
        --specs auto,fa2,fa2:kv_tile_tokens=64,flashdecoding,flashdecoding:kv_tile_tokens=64,streamk,streamk:kv_tile_tokens=64

A padded head dim runs its power of two's tile loop with the columns past it masked (tiles.D_VALID): its
bytes are d's, its dots the padded width's. Every output is fp64-checked (bench_one) and every row carries
the pure-read floor of its bytes under the same timer (membw.ReadFloor), so `vs_floor` says whether the
padded kernels stream their (fewer) bytes as close to the floor as the power-of-two ones do. Writes
OUT/head_dim_pad.csv (bench columns) and prints time and vs_floor per head dim.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from attnsim.bench import inputs
from attnsim.bench.harness import BenchConfig
from attnsim.bench.results import COLUMNS
from attnsim.kernels.membw import ReadFloor
from attnsim.plans.spec import split_specs
from attnsim.profiles import resolve_gpu
from attnsim.simulator.workload import DecodeWorkload

sys.path.insert(0, str(Path(__file__).parent))
from fa2_wave_ab import bench_specs  # noqa: E402  (every spec on one point, fp64-checked, with its floor)

# (batch, q_heads, kv_heads, context) x the head-dim pairs: 67 MB - 268 MB of fp16 K+V at the power of two
SHAPES = [(8, 32, 8, 8192), (1, 32, 32, 32768), (16, 32, 8, 2048), (4, 28, 4, 16384)]
PAIRS = [(96, 128), (160, 256)]
SPECS = ["auto", "fa2", "flashdecoding", "splitkv", "streamk"]


def workloads(pairs: list[tuple[int, ...]]) -> list[DecodeWorkload]:
    """Each shape at every head dim of each pair, the padded one first."""
    return [DecodeWorkload.build(b, hq, hkv, d, c) for b, hq, hkv, c in SHAPES for pair in pairs for d in pair]


def bench_point(i: int, w: DecodeWorkload, config: BenchConfig, floor: ReadFloor, specs: list[str]) -> list[dict]:
    pool = inputs.KvPool([w], "float16", "cuda", 0)
    rows = bench_specs(i, w, config, pool, specs, floor.us(w.kv_bytes() + w.io_bytes()))
    del pool
    torch.cuda.empty_cache()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--pairs", action="append", default=None,
                    help="head dims timed on each shape, comma-separated (repeatable; default 96,128 and 160,256)")
    ap.add_argument("--specs", default=",".join(SPECS), help="plan specs, comma-separated")
    ap.add_argument("--name", default="head_dim_pad", help="the CSV's name under --out")
    args = ap.parse_args()
    pairs = [tuple(int(d) for d in p.split(",")) for p in args.pairs] if args.pairs else PAIRS
    specs = split_specs(args.specs)
    name = torch.cuda.get_device_name()
    gpu = resolve_gpu("h200" if "H200" in name else "h100")
    config = BenchConfig(tuple(specs), gpu, name, gpu.hbm_read_gbps)
    floor, started, rows = ReadFloor(config.timer), time.time(), []
    for i, w in enumerate(workloads(pairs)):
        rows += bench_point(i, w, config, floor, specs)
        pd.DataFrame(rows, columns=COLUMNS).to_csv(args.out / f"{args.name}.csv", index=False)
        print(f"[{time.time() - started:6.1f}s] b{w.batch} {w.q_heads}/{w.kv_heads} d{w.head_dim} {w.max_context}",
              flush=True)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    table = frame.pivot_table(index=["batch", "q_heads", "kv_heads", "context", "requested"], columns="head_dim",
                              values=["time_us", "vs_floor"])
    print(table.round(3).to_string())
    print("not ok:", int((frame["status"] != "ok").sum()))


if __name__ == "__main__":
    main()
