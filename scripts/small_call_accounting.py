"""Where the microseconds of a small decode call go: do_bench time vs the kernels' own durations.

    PYTHONPATH=. python3 scripts/small_call_accounting.py --out DIR

For small KV caches (batch 1-8, 1k-16k tokens) each plan spec (our strategies with their default and
a few alternative splits / grids, and PyTorch's flash and cuDNN backends) is timed as `attnsim bench`
times it (do_bench median, L2 flushed, CUDA-graph replay), then run a few times under torch.profiler:
the kernels' durations (CUPTI), how many launches, and the span from the first kernel's start to the
last one's end. do_bench time - span = what the call costs outside its kernels (launch, the event gap,
the dirty-L2 write-back happens inside the kernels). An empty one-CTA kernel gives the launch floor.
Writes DIR/accounting.csv and prints a table last.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import tempfile
from pathlib import Path

import torch

from attnsim.bench import inputs
from attnsim.bench.harness import BenchConfig, default_prepare, run_sweep, timed_call
from attnsim.kernels.timing import TimerConfig, time_us
from attnsim.profiles import resolve_gpu
from attnsim.simulator.workload import DecodeWorkload

SHAPES = [(1, 32, 8, 128, 1024), (1, 32, 8, 128, 4096), (1, 32, 8, 128, 16384), (1, 32, 32, 128, 4096),
          (8, 32, 8, 128, 4096), (1, 8, 1, 128, 8192), (4, 64, 8, 64, 2048)]
SPECS = ["fa2", "flashdecoding", "flashdecoding:splits=2", "flashdecoding:splits=4", "flashdecoding:splits=8",
         "streamk", "streamk:grid=132", "streamk:grid=66", "streamk:grid=33", "balanced", "hybrid",
         "torch-flash", "torch-cudnn"]


def profile_spec(spec, w, q, k, v, gpu, reps=5) -> dict:
    """Kernel names, summed durations and span (µs) of one call, medians over `reps` calls."""
    sys_path = Path(__file__).parent
    import sys

    sys.path.insert(0, str(sys_path))
    from cudnn_geometry import kernels_by_range  # the trace parser, tested on the CPU

    config = BenchConfig((spec,), gpu, "", 0.0)
    launcher = default_prepare(spec, w, config)
    fn, ctx = timed_call(launcher, q, k, v, inputs.poisoned_like(q))
    with ctx:
        fn()
        torch.cuda.synchronize()
        # the same call back to back from one graph (no L2 flush, no launch gaps): kernel time with a warm L2
        warm_us = time_us(fn, TimerConfig(cudagraph=True))
        eager_us = time_us(fn, TimerConfig(replay=False))  # L2 flushed, launched from Python
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA,
                                                torch.profiler.ProfilerActivity.CPU]) as prof:
            for r in range(reps):
                with torch.profiler.record_function(f"acct|{r}"):
                    fn()
                    torch.cuda.synchronize()
    with tempfile.TemporaryDirectory() as tmp:
        prof.export_chrome_trace(f"{tmp}/t.json")
        ranges = kernels_by_range(json.loads(Path(f"{tmp}/t.json").read_text()), "acct|")
    calls = [ranges.get(f"acct|{r}", []) for r in range(reps)]
    calls = [c for c in calls if c]
    if not calls:
        return {"launches": 0}
    busy = [sum(k["duration_us"] or 0 for k in c) for c in calls]
    span = [max(k["ts"] + (k["duration_us"] or 0) for k in c) - min(k["ts"] for k in c) for c in calls]
    return {"launches": len(calls[0]), "kernel_us": round(statistics.median(busy), 2),
            "graph_warm_l2_us": round(warm_us, 2), "eager_flushed_us": round(eager_us, 2),
            "span_us": round(statistics.median(span), 2),
            "kernels": " + ".join(f"{k['name'][:40]}<{k['grid_x']}x{k['grid_y']}x{k['grid_z']}>" for k in calls[0])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--gpu", default="h200")
    args = ap.parse_args()
    gpu = resolve_gpu(args.gpu)
    points = [DecodeWorkload.build(*s[:4], s[4]) for s in SHAPES]
    from attnsim.bench.calibration import measure_launch_overhead_us

    timer = TimerConfig()
    empty_us = measure_launch_overhead_us(timer)
    frame = run_sweep(points, BenchConfig(tuple(SPECS), gpu, torch.cuda.get_device_name(), 1.0, timer))
    rows = []
    pool = inputs.KvPool(points, "float16")
    for i, w in enumerate(points):
        q, (k, v) = inputs.make_query(w, i), pool.views(w)
        for spec in SPECS:
            name, _, options = spec.partition(":")
            match = frame[(frame["strategy"] == name) & (frame["options"].fillna("") == options)
                          & (frame["batch"] == w.batch) & (frame["q_heads"] == w.q_heads) & (frame["kv_heads"] == w.kv_heads)
                          & (frame["head_dim"] == w.head_dim) & (frame["context"] == w.max_context)]
            row = {"batch": w.batch, "q_heads": w.q_heads, "kv_heads": w.kv_heads, "head_dim": w.head_dim,
                   "context": w.max_context, "spec": spec, "empty_kernel_us": round(empty_us, 2)}
            if len(match):
                m = match.iloc[0]
                row.update(time_us=m["time_us"], status=m["status"], grid=m["grid"], splits=m["splits"],
                           max_rel_err=m["max_rel_err"])
            try:
                row.update(profile_spec(spec, w, q, k, v, gpu))
            except Exception as exc:  # a refused baseline shape is a row
                row["status"] = f"profile error: {type(exc).__name__}: {str(exc)[:120]}"
            if row.get("time_us") and row.get("span_us"):
                row["outside_kernels_us"] = round(float(row["time_us"]) - row["span_us"], 2)
            rows.append(row)
    args.out.mkdir(parents=True, exist_ok=True)
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with open(args.out / "accounting.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fields)
        writer.writeheader()
        writer.writerows(rows)
    print(f"empty kernel under do_bench: {empty_us:.2f} us")
    for r in rows:
        print(f"b{r['batch']} {r['q_heads']}/{r['kv_heads']} d{r['head_dim']} {r['context']:>6} {r['spec']:<24} "
              f"t {r.get('time_us', '-'):>8} warm {r.get('graph_warm_l2_us', '-'):>7} kern {r.get('kernel_us', '-'):>7} "
              f"span {r.get('span_us', '-'):>7} "
              f"out {r.get('outside_kernels_us', '-'):>6} L{r.get('launches', '-')} {r.get('status', '')}")


if __name__ == "__main__":
    main()
