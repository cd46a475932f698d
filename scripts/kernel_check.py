"""One GPU call: tune, check and time the three decode kernels (FA2, FlashDecoding, stream-K).

    PYTHONPATH=. python3 scripts/kernel_check.py [--sweep] [--table] [--out DIR]

--sweep  times each (kv_tile, num_warps, num_stages) candidate per strategy on a few shapes and
         prints the best (figures: GB/s of K+V read, do_bench median with L2 flushed).
--table  batch 1/8/32 x 32 q-heads over 32/8 kv-heads x 16k/128k (+ MQA/GQA extras), d 128, fp16: every kernel,
         FlashDecoding at SDPA's split count, and
         PyTorch SDPA's flash backend, max relative error vs float64 and time; fractions are of the
         HBM read bandwidth measured here (torch.sum over 4 GiB) and of the nominal 3.0 TB/s.
Full rows go to DIR/kernel_check.csv; the compact table prints last.
"""

from __future__ import annotations

import argparse
import dataclasses
import csv
import math
import sys
from pathlib import Path

import torch
from triton.testing import do_bench

from attnsim.kernels.launch import launcher_for
from attnsim.kernels.reference import attention_reference, max_relative_error
from attnsim.simulator.hardware import from_name
from attnsim.simulator.partition.common import PlanConfig, fa2_block_n
from attnsim.simulator.partition.flashdecoding import heuristic_splits
from attnsim.simulator.workload import DecodeWorkload

GPU = from_name("h100")
NOMINAL_GBPS = 3000.0
MAX_KV_BYTES = 40e9  # skip table shapes whose K+V would crowd the 80 GB card
STRATEGIES = ("fa2", "flashdecoding", "streamk")
CANDIDATES = {  # head_dim -> (kv_tile, num_warps, num_stages)
    128: [(64, 4, 3), (32, 8, 4), (64, 8, 2), (64, 8, 3), (128, 8, 2)],
    64: [(128, 4, 2), (128, 8, 3)],
}
SWEEP_SHAPES = {  # strategy -> [(batch, q_heads, kv_heads, head_dim, context)]: stream-K's hard cases
    "streamk": [(1, 32, 8, 128, 131072), (1, 32, 32, 128, 16384), (8, 32, 8, 128, 16384), (1, 32, 1, 128, 524288),
                (4, 32, 32, 64, 32768)],
}
TABLE_SHAPES = [(b, hkv, ctx) for b in (1, 8, 32) for hkv in (32, 8) for ctx in (16384, 131072)] + [
    (1, 1, 524288), (1, 4, 262144), (4, 8, 65536)]  # (batch, kv_heads, context); 32 q-heads, d 128


def inputs(w: DecodeWorkload):
    dtype = getattr(torch, w.dtype)
    q = torch.randn(w.batch, w.q_heads, w.head_dim, device="cuda", dtype=dtype)
    k = torch.randn(w.batch, w.kv_heads, w.max_context, w.head_dim, device="cuda", dtype=dtype)
    v = torch.randn_like(k)
    return q, k, v


def bench_us(fn) -> float:
    return do_bench(fn, warmup=10, rep=50, return_mode="median") * 1e3


def hbm_read_gbps() -> float:
    x = torch.randn(2 * 1024**3, device="cuda", dtype=torch.float16)  # 4 GiB
    t = bench_us(x.sum)
    del x
    return 4 * 1024**3 / t / 1e3


def sdpa_flash(q, k, v):
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.nn.functional import scaled_dot_product_attention

    gqa = q.shape[1] != k.shape[1]

    def run():
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            return scaled_dot_product_attention(q[:, :, None], k, v, enable_gqa=gqa)[:, :, 0]
    return run


def measure(strategy, w, q, k, v, ref, config=None, num_warps=None, num_stages=None) -> dict:
    """Prepare, check (NaN-poisoned output, twice), time; one row."""
    config = dataclasses.replace(config or PlanConfig(), num_warps=num_warps, num_stages=num_stages)
    launcher = launcher_for(strategy, w, GPU, config)
    out = torch.full_like(q, float("nan"))
    err = max(max_relative_error(launcher.run(q, k, v, out), ref) for _ in range(2)) if ref is not None else math.nan
    t = bench_us(lambda: launcher.run(q, k, v, out))
    err_after = max_relative_error(launcher.run(q, k, v, torch.full_like(q, float("nan"))), ref) \
        if ref is not None else math.nan
    m = launcher.meta
    return dict(strategy=strategy, time_us=t, gbps=w.kv_bytes() / t / 1e3, err=max(err, err_after),
                kv_tile=m["kv_tile"], warps=m["num_warps"], stages=m["num_stages"], regs=m["n_regs"],
                spills=m["n_spills"], smem=m["smem_bytes"], grid=m["grid"], splits=m["splits"])


def workload(batch, hq, hkv, d, ctx, dtype="float16"):
    return DecodeWorkload.build(batch, hq, hkv, d, ctx, dtype=dtype)


def sweep(rows: list) -> dict:
    best = {}
    for strategy, shapes in SWEEP_SHAPES.items():
        for shape in shapes:
            w = workload(*shape)
            q, k, v = inputs(w)
            for tile, warps, stages in CANDIDATES[w.head_dim]:
                try:
                    r = measure(strategy, w, q, k, v, None, PlanConfig(kv_tile_tokens=tile), warps, stages)
                except Exception as exc:  # a candidate that does not compile or launch: say so, go on
                    print(f"sweep {strategy} {shape} {(tile, warps, stages)}: {type(exc).__name__}: {exc}")
                    continue
                r.update(section="sweep", shape=str(shape))
                rows.append(r)
                print(f"sweep {strategy:13s} {str(shape):28s} tile {tile:3d} w{warps} s{stages}: "
                      f"{r['time_us']:9.1f} us {r['gbps']:7.0f} GB/s regs {r['regs']} smem {r['smem']} "
                      f"grid {r['grid']}", flush=True)
                key = (strategy, w.head_dim, (tile, warps, stages))
                best.setdefault(key, []).append(r["gbps"])
            del q, k, v
    for strategy in SWEEP_SHAPES:
        for d in CANDIDATES:
            scores = {cfg: sum(g) / len(g) for (s, hd, cfg), g in best.items() if s == strategy and hd == d}
            if scores:
                top = max(scores, key=scores.get)
                print(f"best {strategy} d{d}: tile/warps/stages {top}: mean {scores[top]:.0f} GB/s")
    return best


def table(rows: list, read_gbps: float) -> list:
    lines = []
    for batch, hkv, ctx in TABLE_SHAPES:
        w = workload(batch, 32, hkv, 128, ctx)
        if w.kv_bytes() > MAX_KV_BYTES:
            continue
        q, k, v = inputs(w)
        ref = attention_reference(q, k, v, w.contexts)
        shape = f"b{batch} h32/{hkv} {ctx // 1024}k"
        torch_splits = heuristic_splits(w, GPU, fa2_block_n(128))
        runs = [(s, s, None) for s in STRATEGIES]
        runs.append(("fd@sdpa-splits", "flashdecoding", PlanConfig(splits=torch_splits)))
        for label, strategy, config in runs:
            r = measure(strategy, w, q, k, v, ref, config)
            r.update(section="table", shape=shape, kv_mb=w.kv_bytes() / 1e6, strategy=label)
            rows.append(r)
            lines.append(r)
        fn = sdpa_flash(q, k, v)
        t = bench_us(fn)
        r = dict(section="table", shape=shape, strategy="torch-flash", time_us=t, gbps=w.kv_bytes() / t / 1e3,
                 err=max_relative_error(fn(), ref), splits=torch_splits, kv_mb=w.kv_bytes() / 1e6)
        rows.append(r)
        lines.append(r)
        print(f"table {shape} done", flush=True)
        del q, k, v, ref
        torch.cuda.empty_cache()
    print(f"\nHBM read (torch.sum, 4 GiB): {read_gbps:.0f} GB/s")
    print(f"{'shape':18s} {'kernel':13s} {'KV MB':>8s} {'time_us':>9s} {'GB/s':>6s} {'/meas':>6s} {'/3.0T':>6s} "
          f"{'err':>8s} {'grid':>5s} {'splits':>6s} {'regs':>4s} {'smem':>6s}")
    for r in lines:
        print(f"{r['shape']:18s} {r['strategy']:13s} {r['kv_mb']:8.0f} {r['time_us']:9.1f} {r['gbps']:6.0f} "
              f"{r['gbps'] / read_gbps:6.2f} {r['gbps'] / NOMINAL_GBPS:6.2f} {r['err']:8.1e} "
              + " ".join(f"{str(r.get(key, '')):>{width}s}" for key, width in
                         (("grid", 5), ("splits", 6), ("regs", 4), ("smem", 6))))
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--table", action="store_true")
    ap.add_argument("--out", default="out")
    args = ap.parse_args(argv)
    print(torch.cuda.get_device_name(), torch.__version__, flush=True)
    rows: list = []
    read_gbps = hbm_read_gbps()
    if args.sweep:
        sweep(rows)
    if args.table:
        table(rows, read_gbps)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    with open(Path(args.out) / "kernel_check.csv", "w", newline="") as f:
        keys = sorted({k for r in rows for k in r})
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
