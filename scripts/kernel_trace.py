"""Where and when the CTAs of our attention launches run: SM id, start and end of every program (GPU only).

    PYTHONPATH=. python3 scripts/kernel_trace.py --out DIR [--reps 3] [--only fa2-grid,splitkv-small,ragged-d64]

scripts/cta_trace.py traced a streaming read; the engine's misses it points at (docs/validation.md: tails of
1-1.5 waves, split-KV grids of 0.25-1 wave, ragged d 64 batches at two CTAs an SM) are attention launches', so
this traces those: each plan is made as `attnsim bench` makes it (the planner's Plan on this GPU's profile),
checked against the float64 reference, timed as bench times it (do_bench median, L2 flushed, graph replay),
then run --reps times through its kernel's traced copy (kernels/traced.py: the shipped source plus a stamp per
program), each after do_bench's flush (256 MB zeroed), and its output checked again.

Sets (every one a few seconds of GPU time):
- fa2-grid: fa2 at grids 1-2 waves at fixed bytes (1 GiB of bf16 K + V; one output per CTA: batch = grid,
  1/1 heads, d 128), as the streaming read's grid study;
- splitkv-small: split-KV's grids of 0.25-1.5 waves where the planner misses (b2 2/2 d 128 17.6k: splits
  16-48; b2 8/1 d 128 34.9k: 40 splits against 256-token chunks);
- ragged-d64: a ragged b32 32/8 d 64 batch of the standard sweep (longest 235,587 tokens) under fa2,
  FlashDecoding, stream-K and split-KV, and the same lengths at d 128;
- fa2-lone: fa2 at 1 .. one CTA an SM, 8 MiB a CTA (a lone CTA's rate, the share's bend);
- split-tails: FlashDecoding and split-KV at one wave and at 1.29 waves (b4 32/32 d 128 32k, 3 and 4 splits);
- sm-share: a full fa2 wave with a third of the SMs holding 1 (then 2) long CTAs, the rest 3;
- sm-alone: the same with a sixth of the SMs holding 1, 2 or 3 long CTAs and no other (the chip unsaturated).

Writes DIR/kernel_trace.csv (set, spec, plan, rep, cta, sm, start_ns, end_ns: ns from the launch's first start)
and DIR/kernel_trace_points.csv (one row a plan: grid, resident slots, bench's time, the traced launches' median
span, errors), both rewritten after every plan (a call cut short keeps what it measured). Read them against the
engine with scripts/kernel_trace_model.py (CPU).
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import numpy as np

from attnsim.fileio import write_text
from attnsim.kernels.fastlaunch import interpreting
from attnsim.simulator.workload import DecodeWorkload

GIB = 1 << 30
REL_TOL = 2e-2  # attnsim bench's check (BenchConfig.rel_tol)
RAGGED_D64 = (17494, 199179, 2278, 197186, 5771, 10710, 100834, 9903, 21570, 1193, 66825, 20243, 6373, 81101,
              5501, 12660, 2153, 9574, 3164, 4385, 65669, 4848, 15092, 235587, 211934, 56986, 20592, 4755, 2496,
              221877, 17911, 1947)  # results/h200/bench.csv's b32 32/8 d 64 ragged point


def fa2_grid(sms: int) -> list[tuple[str, DecodeWorkload]]:
    """fa2 at one output a CTA (batch = grid, 1/1 heads, d 128 bf16), 1 GiB of K + V at every grid: one to two
    waves of three CTAs an SM (the 16-bit kernel's 70 KB of shared memory) and tails of 4 .. a wave."""
    wave = 3 * sms
    grids = [sms, 2 * sms, wave, wave + 4, wave + 28, wave + wave // 6, wave + wave // 4, wave + wave // 2,
             2 * wave, 2 * wave + 4]
    return [("fa2", DecodeWorkload.build(g, 1, 1, 128, round(GIB / (g * 2 * 128 * 2)), dtype="bfloat16"))
            for g in grids]


def splitkv_small() -> list[tuple[str, DecodeWorkload]]:
    gqa = DecodeWorkload.build(2, 2, 2, 128, 17_600)
    mqa = DecodeWorkload.build(2, 8, 1, 128, 34_900)
    return ([(f"splitkv:splits={s}", gqa) for s in (16, 24, 32, 48)]
            + [("splitkv:splits=40", mqa), ("splitkv:chunk_tokens=256", mqa)])


def ragged_d64() -> list[tuple[str, DecodeWorkload]]:
    plans = ("fa2", "flashdecoding", "streamk", "splitkv")
    return [(s, DecodeWorkload.build(32, 32, 8, d, list(RAGGED_D64))) for d in (64, 128) for s in plans]


def fa2_lone(sms: int) -> list[tuple[str, DecodeWorkload]]:
    """fa2 at 1 .. one CTA an SM, 8 MiB of K + V a CTA (d 128 bf16, 16k tokens): a lone CTA's rate and how the
    chip's share bends as CTAs are added (the engine's b and knee)."""
    return [("fa2", DecodeWorkload.build(g, 1, 1, 128, 16_384, dtype="bfloat16"))
            for g in (1, 2, 8, sms // 4, sms // 2, sms)]


def split_tails() -> list[tuple[str, DecodeWorkload]]:
    """FlashDecoding and split-KV at 512 CTAs on 396 slots (1.29 waves, the standard sweep's 3-9% misses:
    b4 32/32 d 128 32k, 4 splits) and at one wave (3 splits)."""
    w = DecodeWorkload.build(4, 32, 32, 128, 32_768)
    return [(f"{s}:splits={n}", w) for s in ("flashdecoding", "splitkv") for n in (3, 4)]


def sm_share(sms: int) -> list[tuple[str, DecodeWorkload]]:
    """A full wave of fa2 (three CTAs an SM, d 128 bf16, 1/1 heads) where a third of the SMs keep 1 (then 2) long
    CTAs and the others 3: CTAs i, i + SMs, i + 2 SMs share an SM (the traces), so the CTAs past the first
    `keep` of residues below SMs / 3 get 64 tokens and end at once. What a lightly loaded SM streams while the
    chip is saturated (the engine's per-SM asks)."""
    wave, long_tokens = 3 * sms, 32_768
    plans = []
    for keep in (1, 2):
        contexts = [64 if (i % sms) < sms // 3 and i // sms >= keep else long_tokens for i in range(wave)]
        plans.append(("fa2", DecodeWorkload.build(wave, 1, 1, 128, contexts, dtype="bfloat16")))
    return plans


def sm_alone(sms: int) -> list[tuple[str, DecodeWorkload]]:
    """A full fa2 wave where only a sixth of the SMs keep 1, 2 or 3 long CTAs and every other CTA ends at once:
    an SM's stream with 1-3 CTAs while the chip is far from saturated (the engine's per-SM limit R)."""
    wave, long_tokens = 3 * sms, 32_768
    return [("fa2", DecodeWorkload.build(wave, 1, 1, 128, [long_tokens if (i % sms) < sms // 6 and i // sms < keep
                                                          else 64 for i in range(wave)], dtype="bfloat16"))
            for keep in (1, 2, 3)]


SETS = {"fa2-grid": fa2_grid, "splitkv-small": lambda sms: splitkv_small(), "ragged-d64": lambda sms: ragged_d64(),
        "fa2-lone": fa2_lone, "split-tails": lambda sms: split_tails(), "sm-share": sm_share,
        "sm-alone": sm_alone}


def gpu_name() -> str:
    """h200 or h100: the profile of the card that came."""
    name = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                          text=True).stdout
    return "h200" if "H200" in name else "h100"


def bench_time_us(fn) -> float:
    """`attnsim bench`'s time of one call: do_bench's median, L2 flushed, a CUDA-graph replay."""
    from attnsim.bench import measure
    from attnsim.kernels.timing import TimerConfig

    return measure.timed_us(fn, TimerConfig())


def trace_plan(spec: str, w: DecodeWorkload, gpu, reps: int, flush, device: str = "cuda",
               time_us=bench_time_us) -> tuple[dict, np.ndarray]:
    """(the plan's row, its traces [reps, CTAs, 3]): planned, checked, timed (`time_us` of a call), traced."""
    import torch

    from attnsim.bench import inputs, measure
    from attnsim.bench.harness import default_reference
    from attnsim.kernels import traced
    from attnsim.kernels.launch import launcher_for
    from attnsim.simulator.occupancy import resident_capacity

    pool = inputs.KvPool([w], w.dtype, device)
    q = inputs.make_query(w, 0, device)
    with pool.poisoned_padding(w) as (k, v):
        cache = inputs.point_cache(w, k, v)
        ref = inputs.reference_output(default_reference(), q, cache.ref_k, cache.ref_v, w.contexts, **cache.scales)
        launcher = launcher_for(spec, w, gpu, device=device)
        err, out = measure.checked_run(launcher, w, q, cache.k, cache.v, ref, cache.run_kwargs)
        timed = time_us(lambda: launcher.run(q, cache.k, cache.v, out=out, **cache.run_kwargs))
        rows = traced.trace(launcher)
        traced_err, _ = measure.checked_run(launcher, w, q, cache.k, cache.v, ref, cache.run_kwargs)
        runs = []
        for _ in range(reps):
            flush.zero_()  # do_bench's flush: each traced launch starts with a dirty L2, as a timed one
            launcher.run(q, cache.k, cache.v, out=out, **cache.run_kwargs)
            if device != "cpu":
                torch.cuda.synchronize()
            t = rows.cpu().numpy().copy()
            t[:, 1:] -= t[:, 1].min()
            runs.append(t)
    del pool
    runs = np.stack(runs)
    row = dict(spec=spec, plan=launcher.meta["plan"], grid=launcher.meta["grid"], batch=w.batch, q_heads=w.q_heads,
               kv_heads=w.kv_heads, head_dim=w.head_dim, dtype=w.dtype, contexts=";".join(map(str, w.contexts)),
               slots=resident_capacity(gpu, launcher.resources), registers=launcher.meta["n_regs"],
               time_us=round(timed, 3),
               traced_span_us=round(float(np.median(runs[:, :, 2].max(axis=1))) / 1e3, 3),
               max_rel_err=err, traced_max_rel_err=traced_err)
    return row, runs


def write_csv(path: Path, header: list[str], rows: list) -> None:
    write_text(path, "\n".join([",".join(header)] + [",".join(map(str, r)) for r in rows]) + "\n")


def main() -> None:
    import torch

    from attnsim.profiles import resolve_gpu

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", default=",".join(SETS), help="comma-separated sets: " + ", ".join(SETS))
    args = ap.parse_args()
    gpu = resolve_gpu(gpu_name())
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    flush = torch.empty(256 << 20, dtype=torch.int8, device="cuda")
    points, traces = [], []
    point_header = ["set", "gpu", "spec", "plan", "grid", "batch", "q_heads", "kv_heads", "head_dim", "dtype", "slots",
                    "registers", "time_us", "traced_span_us", "max_rel_err", "traced_max_rel_err", "contexts"]
    for name in args.only.split(","):
        for spec, w in SETS[name](sms):
            row, runs = trace_plan(spec, w, gpu, args.reps, flush)
            row.update(set=name, gpu=gpu.name)
            points.append([row.get(c, "") for c in point_header])
            traces += [(name, spec, row["plan"], rep, cta, *map(int, runs[rep, cta]))
                       for rep in range(len(runs)) for cta in range(runs.shape[1])]
            bad = "" if max(row["max_rel_err"], row["traced_max_rel_err"]) <= REL_TOL else " FAILED the fp64 check"
            print(f"{name} {spec} ({row['plan']}, grid {row['grid']}): {row['time_us']} us timed, "
                  f"{row['traced_span_us']} us traced span, err {row['max_rel_err']:.1e} / "
                  f"{row['traced_max_rel_err']:.1e}{bad}", flush=True)
            write_csv(args.out / "kernel_trace_points.csv", point_header, points)
            write_csv(args.out / "kernel_trace.csv", ["set", "spec", "plan", "rep", "cta", "sm", "start_ns", "end_ns"],
                      traces)


if __name__ == "__main__":
    main()
