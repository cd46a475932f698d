"""Device measurements of the single-launch split-KV kernel (issue 19), one stage per device call.

    cd .kdev && PYTHONPATH=. python3 scripts/splitkv_device.py --stage 1 --out $OUT

Per point (d 128, fp16; K/V from one random pool, NaN past each length, fresh q): every plan spec is
checked against the float64 reference and timed as `attnsim bench` times it (bench.bench_one:
do_bench median, L2 flushed by do_bench's 256 MB write before every call, each call a CUDA-graph
replay). Beside the specs:
- floor: a pure streaming read of the point's K+V bytes (membw's kernel, 512 CTAs x 4 warps) under
  the same timer;
- variants of the split-KV kernel, built from its source with one block changed (not checked: they
  compute something else): `bp4` (4 partials per merge step, stage 1's kernel), `nomerge` (the
  last arrival does not merge: the merge's cost), `noepilogue` (partials stored, no counter, no
  merge, the code still there: the epilogue's cost), `nocode` (the epilogue's code deleted: whether
  its presence slows the main loop);
- determinism: 100 CUDA-graph replays of a split plan (and a ragged one) bitwise identical to the
  first and to an eager run, counters 0 after each.
Writes OUT/splitkv_stage<N>.csv (rows in bench columns, floor_us among them, + `variant`) and
OUT/determinism_stage<N>.json; prints a short table last.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from attnsim.bench import inputs
from attnsim.kernels import membw
from attnsim.bench.harness import BenchConfig, bench_one, default_prepare
from attnsim.bench.results import COLUMNS, base_row
from attnsim.kernels.fastlaunch import CachedLaunch
from attnsim.kernels.reference import attention_reference
from attnsim.kernels.timing import TimerConfig, replayable, time_us
from attnsim.profiles import resolve_gpu
from attnsim.simulator.workload import DecodeWorkload

sys.path.insert(0, str(Path(__file__).parent))
import splitkv_variants  # noqa: E402

NAME = "splitkv"
SHAPES = [(1, 32, 8, 1024), (1, 32, 8, 4096), (1, 32, 8, 16384), (1, 32, 8, 65536), (1, 32, 8, 262144),
          (4, 32, 32, 256), (1, 32, 32, 1024), (1, 32, 32, 4096), (1, 32, 32, 16384), (8, 32, 32, 8192),
          (8, 32, 8, 8192)]  # (batch, q_heads, kv_heads, context): 4 MB .. 1 GB of K+V at d 128, fp16
CONFIGS = ["kv_tile_tokens=32,num_stages=4", "kv_tile_tokens=128,num_stages=2"]
BASELINES = ["torch-cudnn", "flashdecoding", "streamk"]
STAGE_CONFIGS = {1: CONFIGS, 2: ["kv_tile_tokens=128,num_stages=2"], 3: ["kv_tile_tokens=128,num_stages=2"], 5: []}
STAGE_VARIANTS = {1: (("bp4", 4), ("nomerge", None), ("noepilogue", None)),
                  2: (("nomerge", None), ("noepilogue", None), ("nocode", None)),
                  3: (("nomerge", None), ("noepilogue", None)), 5: ()}  # and v2merge until 737084f
# stage 3 (v3: the merge's loads pipelined): split counts x1/4 .. x4 around the default, since the
# default rule halved S for v2's serial merge
STAGE_SPLIT_FACTORS = {1: (0.5, 2), 2: (0.5, 2), 3: (0.25, 0.5, 2, 4), 5: (0.5, 2)}
# stage 5: a tree A/B (the same script run once on this tree and once with PYTHONPATH at another one's
# attnsim: scripts/device_stage.sh merge_ab): cuDNN, the default and half / twice its splits, no variants
STAGE_BASELINES = {5: ["torch-cudnn"]}


def points() -> list[DecodeWorkload]:
    return [DecodeWorkload.build(b, hq, hkv, 128, c) for b, hq, hkv, c in SHAPES]


def stage_specs(stage: int, w: DecodeWorkload, default_splits: int, tiles: int) -> list[str]:
    """Plan specs timed at this point: baselines, our default, split counts around it, kernel configs."""
    specs = STAGE_BASELINES.get(stage, BASELINES) + [NAME]
    specs += [f"{NAME}:splits={s}" for s in sorted({int(default_splits * f) for f in STAGE_SPLIT_FACTORS[stage]})
              if 1 <= s <= tiles and s != default_splits]
    return specs + [f"{NAME}:{c}" for c in STAGE_CONFIGS[stage]]


def time_variant(launcher, variant: str, q, k, v, block_p: int | None = None) -> float:
    """µs of the launcher's plan run by a variant kernel (same arguments, same grid)."""
    if variant in splitkv_variants.VARIANTS:
        launcher.launch_attention = CachedLaunch(splitkv_variants.load(variant).split_kv_kernel)
    else:
        launcher.launch_attention = CachedLaunch(launcher.launch_attention.jit_fn)  # new constexprs: recompile
    if block_p:
        launcher.shape = dataclasses.replace(launcher.shape, block_p=block_p)
    out = inputs.poisoned_like(q)
    launcher.run(q, k, v, out)
    torch.cuda.synchronize()
    return time_us(replayable(lambda: launcher.run(q, k, v, out)), TimerConfig())


def floor_us(w: DecodeWorkload, buffer) -> float:
    """A pure streaming read of w's K+V bytes: 512 CTAs x 4 warps, same timer."""
    block, ctas = 2048, 512
    per_cta = max(block, (w.kv_bytes() // 2 // ctas) // block * block)
    sums = torch.empty(ctas, dtype=torch.float32, device="cuda")
    fn = lambda: membw.launch_stream_read(buffer, sums, ctas, 4, block, per_cta)  # noqa: E731
    fn()
    torch.cuda.synchronize()
    return time_us(replayable(fn), TimerConfig())


def determinism(config: BenchConfig, pool, w: DecodeWorkload, spec: str, replays: int = 100) -> dict:
    """Bitwise identity of `replays` CUDA-graph replays and an eager run; counters after each."""
    q = inputs.make_query(w, 99, "cuda", 0)
    with pool.poisoned_padding(w) as (k, v):
        launcher = default_prepare(spec, w, config)
        eager = launcher.run(q, k, v, inputs.poisoned_like(q)).clone()
        out = inputs.poisoned_like(q)
        graph_replay = replayable(lambda: launcher.run(q, k, v, out))
        identical, counters_zero = 0, 0
        for _ in range(replays):
            out.fill_(float("nan"))
            graph_replay()
            torch.cuda.synchronize()
            identical += int(torch.equal(out, eager))
            counters_zero += int(int(launcher.tables.flags.abs().sum()) == 0)
        ref = inputs.reference_output(attention_reference, q, k, v, w.contexts)
        err = inputs.max_rel_err(out, ref)
    return dict(spec=spec, workload=f"b{w.batch} {w.q_heads}/{w.kv_heads} {w.context_label}", splits=launcher.schedule.splits,
                grid=launcher.schedule.grid, replays=replays, bitwise_identical=identical, counters_zero=counters_zero,
                max_rel_err=err)


def run_point(index: int, w: DecodeWorkload, stage: int, config: BenchConfig, pool, buffer) -> list[dict]:
    q = inputs.make_query(w, index, "cuda", 0)
    rows = []
    with pool.poisoned_padding(w) as (k, v):
        ref = inputs.reference_output(attention_reference, q, k, v, w.contexts)
        floor = floor_us(w, buffer)
        default = default_prepare(NAME, w, config).schedule
        tiles = -(-w.max_context // default.kv_tile_tokens)
        for spec in stage_specs(stage, w, default.splits, tiles):
            row = bench_one(spec, w, q, k, v, ref, config, default_prepare)
            rows.append({**row, "variant": "", "floor_us": floor})
        if default.splits > 1:
            for variant, block_p in STAGE_VARIANTS[stage]:
                launcher = default_prepare(NAME, w, config)
                row = base_row(NAME, w, config)
                row.update(variant=variant, floor_us=floor, splits=launcher.schedule.splits, grid=launcher.schedule.grid)
                try:
                    row.update(time_us=round(time_variant(launcher, variant, q, k, v, block_p), 3), status="ok (unchecked)")
                except Exception as exc:  # a variant that does not build is a row, not the end of the run
                    row.update(status=f"error: {type(exc).__name__}: {str(exc).splitlines()[-1][:200]}")
                rows.append(row)
    return rows


def summary(df: pd.DataFrame) -> str:
    """One line per point: floor, cuDNN, FlashDecoding, stream-K, our default and best spec (µs)."""
    lines = [f"{'point':<22}{'MB':>6}{'floor':>8}{'cudnn':>8}{'fd':>8}{'sk':>8}{'skv':>8}{'best skv (spec)':>44}{'-floor':>8}"]
    for (b, hq, hkv, ctx), g in df.groupby(["batch", "q_heads", "kv_heads", "context"], sort=False):
        ok = g[g["status"].astype(str).str.startswith("ok") & (g["variant"] == "")]
        # keyed by the spec asked for (`requested`): `options` holds the concrete plan since issue 17
        t = ok.drop_duplicates("requested").set_index("requested")["time_us"]
        mine = t[[s for s in t.index if s.split(":")[0] == NAME]]
        best = mine.idxmin().partition(":")[2] or "1" if len(mine) else ""  # the best spec's options
        fl = g["floor_us"].iloc[0]
        lines.append(f"b{b} {hq}/{hkv} {ctx:<12}{g['kv_bytes'].iloc[0] / 2**20:>6.0f}{fl:>8.1f}"
                     f"{t.get('torch-cudnn', float('nan')):>8.1f}{t.get('flashdecoding', float('nan')):>8.1f}"
                     f"{t.get('streamk', float('nan')):>8.1f}{t.get(NAME, float('nan')):>8.1f}"
                     f"{(f'{mine.min():.1f} ({best})' if len(mine) else '-'):>44}"
                     f"{(mine.min() - fl if len(mine) else float('nan')):>8.1f}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stage", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    started = time.time()
    gpu = resolve_gpu("h200")  # its measured read bandwidth divides achieved GB/s (not re-measured here)
    config = BenchConfig((NAME,), gpu, torch.cuda.get_device_name(), gpu.hbm_read_gbps)
    pts = points()
    pool = inputs.KvPool(pts, "float16", "cuda", 0)
    buffer = membw.make_buffer(max(w.kv_bytes() for w in pts) + (64 << 20))
    rows = []
    for i, w in enumerate(pts):
        rows += run_point(i, w, args.stage, config, pool, buffer)
        pd.DataFrame(rows, columns=COLUMNS + ["variant"]).to_csv(args.out / f"splitkv_stage{args.stage}.csv",
                                                                           index=False)
        print(f"[{time.time() - started:6.1f}s] point {i + 1}/{len(pts)} done", flush=True)
    det = [determinism(config, pool, DecodeWorkload.build(1, 32, 8, 128, 16384), NAME),
           determinism(config, pool, DecodeWorkload.build(3, 32, 8, 128, [100, 5000, 20000]), NAME)]
    (args.out / f"determinism_stage{args.stage}.json").write_text(json.dumps(det, indent=1))
    df = pd.DataFrame(rows, columns=COLUMNS + ["variant"])
    bad = df[df["status"].astype(str).str.startswith(("fail", "error"))]
    full = df[(df["requested"] == NAME) & (df["variant"] == "")]  # the default plan (options are concrete)
    full = full.assign(variant="full")
    variants = pd.concat([full, df[df["variant"] != ""]]).pivot_table(
        index=["batch", "kv_heads", "context", "splits"], columns="variant", values="time_us")
    mine = df[(df["strategy"] == NAME) & (df["variant"] == "")].assign(options=lambda d: d["options"].fillna(""))
    resources = mine.groupby("options")[["num_warps", "num_stages", "kv_tile", "registers", "spills",
                                         "smem_bytes"]].max()
    print("\nfailures:", len(bad), bad[["strategy", "options", "batch", "kv_heads", "context", "status"]].to_string()
          if len(bad) else "")
    print("determinism:", json.dumps(det))
    print("compiled resources:\n" + resources.to_string())
    print("variants (µs):\n" + variants.round(1).to_string())
    print(summary(df))
    print(f"total {time.time() - started:.0f}s")


if __name__ == "__main__":
    main()
