"""Device measurements of the fp8 and paged tile loop (issue 18, items 1-2): one stage per device call.

    PYTHONPATH=. python3 scripts/serving_kernels_device.py --stage fp8 --out $OUT
    PYTHONPATH=. python3 scripts/serving_kernels_device.py --stage paged --out $OUT --previous results/h200
    PYTHONPATH=. python3 scripts/serving_kernels_device.py --summary results/h200     # tables, no GPU

Stages (H200, d 128, bf16 q; `--list` prints their points and specs):
- fp8: fp8 KV against its bf16 twin, 2k..128k contexts at three GQA shapes (16 MB .. 4 GB of bf16
  K+V), every strategy of ours and `auto`;
- fp8-shapes: other kv tiles / pipeline depths of the fp8 kernels at a few of those points (does the
  default 16 KB K tile, 3 stages, stream best?);
- paged: bf16 pages of 16, 32 and 64 tokens against the contiguous cache, per strategy;
- paged-fp8: fp8 pages of 16, 64 and 128 tokens against the contiguous fp8 cache;
- paged-warps, paged-fp8-warps: the same points with the 4-warp kernels also at 8 warps.
Every row is a bench row (attnsim.bench: do_bench median, L2 flushed, CUDA-graph replay) checked
against the float64 reference, with floor_us (kernels/membw.ReadFloor: a pure read of the point's
bytes under the same timer) and bw_fraction at the cache's own bytes (fp8: one byte a value).
A stage writes OUT/serving_<stage>.csv after every point and stops starting points after
--budget-s; rerun it with --previous DIR (the folder holding that CSV, e.g. copied to results/h200)
to keep its ok rows and measure the rest. The summary (fp8 speed-up by KV size, paging cost by page
size) is printed and written to OUT/serving_summary.md.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from attnsim.simulator.workload import DecodeWorkload

OURS = ("fa2", "flashdecoding", "streamk", "splitkv")
GQA_SHAPES = ((1, 32, 8), (8, 32, 8), (4, 64, 8))  # (batch, q_heads, kv_heads): Llama-3 8B/70B-like groups
FP8_CONTEXTS = (2048, 8192, 32768, 131072)
PAGED_CONTEXTS = (8192, 32768, 131072)
FP8_SHAPES = ("kv_tile_tokens=64", "kv_tile_tokens=64,num_stages=4", "kv_tile_tokens=128,num_stages=2",
              "num_stages=4", "num_warps=4", "kv_tile_tokens=256,num_stages=2")
SHAPE_STRATEGIES = ("flashdecoding", "streamk", "splitkv")  # fa2 is bound by its CTA count at these points


@dataclass(frozen=True)
class Stage:
    points: tuple[DecodeWorkload, ...]
    specs: tuple[str, ...]


def _point(shape, context: int, page_size: int = 0, kv_dtype: str = "") -> DecodeWorkload:
    batch, q_heads, kv_heads = shape
    return DecodeWorkload.build(batch, q_heads, kv_heads, 128, context, 1, "bfloat16", page_size, kv_dtype)


def stages() -> dict[str, Stage]:
    fp8 = tuple(_point(s, c, 0, kv) for s in GQA_SHAPES for c in FP8_CONTEXTS for kv in ("", "fp8"))
    shapes = tuple(_point(s, c, 0, "fp8") for s in GQA_SHAPES[:2] for c in (8192, 131072))
    paged = tuple(_point(s, c, p) for s in GQA_SHAPES[:2] for c in PAGED_CONTEXTS for p in (0, 16, 32, 64))
    paged8 = tuple(_point(s, c, p, "fp8") for s in GQA_SHAPES[:2] for c in PAGED_CONTEXTS[1:] for p in (0, 16, 64, 128))
    return {"fp8": Stage(fp8, (*OURS, "auto")),
            "fp8-shapes": Stage(shapes, (*SHAPE_STRATEGIES, *(f"{s}:{o}" for s in SHAPE_STRATEGIES for o in FP8_SHAPES))),
            "paged": Stage(paged, OURS),
            "paged-fp8": Stage(paged8, OURS),
            # The paging cost of the 4-warp kernels whose CTAs are few per SM (fa2, split-KV; stream-K on
            # fp8) against the same kernels at 8 warps, paged and contiguous.
            "paged-warps": Stage(paged, ("fa2", "fa2:num_warps=8", "splitkv", "splitkv:num_warps=8")),
            "paged-fp8-warps": Stage(paged8, ("streamk", "streamk:num_warps=8", "splitkv:num_warps=8"))}


def csv_name(stage: str) -> str:
    return f"serving_{stage}.csv"


def run_stage(stage: str, out: Path, previous: Path | None, budget_s: float,
              sweep: Callable | None = None, log: Callable[[str], None] = print) -> pd.DataFrame:
    """Measure the stage's points not already ok in previous/serving_<stage>.csv, one point at a time,
    writing every row so far to out/serving_<stage>.csv; no new point starts after budget_s.
    `sweep(points, done, on_point)` runs points (the bench harness on the GPU; tests pass their own)."""
    from attnsim.bench.results import COLUMNS, done_keys, load_previous, point_key, write_csv

    plan = stages()[stage]
    old = previous / csv_name(stage) if previous else None
    rows = load_previous(old).to_dict("records") if old and old.exists() else []
    done = done_keys(pd.DataFrame(rows, columns=COLUMNS))
    sweep = sweep or gpu_sweep(plan.specs)
    todo = [w for w in plan.points if any(point_key(s, w) not in done for s in plan.specs)]
    started = time.monotonic()
    for i, w in enumerate(todo):
        if time.monotonic() - started > budget_s:
            log(f"budget of {budget_s:.0f} s spent: {len(todo) - i} points left; rerun with --previous {out}")
            break
        sweep([w], done, rows.extend)
        write_csv(pd.DataFrame(rows, columns=COLUMNS), out / csv_name(stage))
        log(f"[{time.monotonic() - started:6.1f} s] {stage}: point {i + 1}/{len(todo)} done")
    frame = pd.DataFrame(rows, columns=COLUMNS)
    write_csv(frame, out / csv_name(stage))
    return frame


def gpu_sweep(specs: tuple[str, ...]) -> Callable:
    """The bench harness on this GPU, planned for the shipped H200 profile."""
    import torch

    from attnsim.bench.harness import BenchConfig, check_pinned_plans, run_sweep
    from attnsim.profiles import resolve_gpu

    gpu = resolve_gpu("h200")
    config = BenchConfig(specs, gpu, torch.cuda.get_device_name(), gpu.hbm_read_gbps)  # the profile's measured read GB/s

    def sweep(points, done, on_point):
        check_pinned_plans(specs, points, gpu)
        run_sweep(points, config, done=done, on_point=on_point)

    return sweep


def _by(df: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    """Ok rows, one per key (the median of repeats: stages share their contiguous twins)."""
    ok = df[df["status"].astype(str) == "ok"]
    return ok.groupby(key, as_index=False)[["time_us", "kv_bytes", "bw_fraction", "vs_floor"]].median()


def fp8_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per strategy and bf16 K+V size: bf16 twin / fp8 time (median over shapes), fp8 bw_fraction and
    vs_floor (at fp8 bytes)."""
    key = ["requested", "batch", "q_heads", "kv_heads", "context", "page_size"]
    rows = _by(df, key + ["kv_dtype"])
    fp8 = rows[rows["kv_dtype"] == "float8_e4m3fn"]
    both = fp8.merge(rows[rows["kv_dtype"] == "bfloat16"], on=key, suffixes=("", "_bf16"))
    both["speedup"] = both["time_us_bf16"] / both["time_us"]
    both["bf16_MB"] = (both["kv_bytes_bf16"] / 2**20).round().astype(int)
    return both.groupby(["requested", "bf16_MB"]).agg(
        speedup=("speedup", "median"), fp8_bw_fraction=("bw_fraction", "median"),
        fp8_vs_floor=("vs_floor", "median"), points=("speedup", "size")).round(3)


def paging_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per strategy, KV dtype and page size: paged / contiguous time (median and worst over points)."""
    key = ["requested", "batch", "q_heads", "kv_heads", "context", "kv_dtype"]
    rows = _by(df, key + ["page_size"])
    both = rows[rows["page_size"] > 0].merge(rows[rows["page_size"] == 0], on=key, suffixes=("", "_flat"))
    both["ratio"] = both["time_us"] / both["time_us_flat"]
    return both.groupby(["requested", "kv_dtype", "page_size"]).agg(
        median=("ratio", "median"), worst=("ratio", "max"), points=("ratio", "size")).round(3)


def summary(folder: Path) -> str:
    frames = [pd.read_csv(p) for p in sorted(folder.glob("serving_*.csv"))]
    if not frames:
        return f"no serving_*.csv in {folder}"
    df = pd.concat(frames, ignore_index=True)
    failed = df[~df["status"].astype(str).str.startswith("ok")]
    parts = [f"rows: {len(df)}, not ok: {len(failed)}; worst max_rel_err {df['max_rel_err'].max():.3g}",
             "## fp8 KV: bf16 twin / fp8 time by K+V size (bf16 MB)", fp8_table(df).to_string(),
             "## paging: paged / contiguous time", paging_table(df).to_string()]
    return "\n\n".join(parts) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stage", choices=sorted(stages()))
    ap.add_argument("--out", type=Path)
    ap.add_argument("--previous", type=Path, help="a folder holding an earlier run's serving_<stage>.csv")
    ap.add_argument("--budget-s", type=float, default=480.0, help="start no point after this (a call is 10 min)")
    ap.add_argument("--summary", type=Path, help="print the tables of the serving_*.csv in this folder")
    ap.add_argument("--list", action="store_true", help="the stages' points and specs")
    args = ap.parse_args()
    if args.list:
        for name, st in stages().items():
            print(f"{name}: {len(st.points)} points x {len(st.specs)} specs: {', '.join(st.specs)}")
        return
    if args.summary:
        print(summary(args.summary))
        return
    if not (args.stage and args.out):
        ap.error("--stage and --out (or --summary / --list)")
    args.out.mkdir(parents=True, exist_ok=True)
    run_stage(args.stage, args.out, args.previous, args.budget_s)
    text = summary(args.out)
    (args.out / "serving_summary.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
