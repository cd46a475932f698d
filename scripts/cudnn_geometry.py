"""What PyTorch SDPA's cuDNN (and flash) backend launches for decode: kernels, grid, block, regs, smem.

    PYTHONPATH=. python3 scripts/cudnn_geometry.py --out DIR [--quick] [--budget-s 45]
    PYTHONPATH=. python3 scripts/cudnn_geometry.py --out DIR --thresholds [--time]   # cuDNN only

--thresholds captures the points of scripts/cudnn_thresholds.py instead (the uncertain edges of the
torch-cudnn plan's split rule), prints each call against the plan, and with --time also times each
point as `attnsim bench` does (DIR/cudnn_threshold_times.csv, bench CSV format).

Method: each point (batch, q_heads, kv_heads, head_dim, context, dtype) is called as `attnsim bench` does
(SdpaLauncher: q [b, hq, 1, d], K/V contiguous [b, hkv, ctx, d] views of a random pool, enable_gqa when
hq != hkv), with SDPBackend.CUDNN_ATTENTION then FLASH_ATTENTION: a warm-up call (cuDNN builds and caches
its graph on a shape's first call), then --reps calls, each alone in a record_function range
"geom|<point>|<backend>|<rep>" ended by a synchronize, under torch.profiler (CPU + CUDA; a session per
--chunk points). The chrome trace (temp json) gives each "kernel"/"gpu_memset"/"gpu_memcpy" event to the
range holding its launch (cuda_runtime/cuda_driver event of the same args.correlation), else the range
holding the kernel. Kineto args: "grid", "block", "registers per thread", "shared memory" (static + dynamic
summed; smem_static/_dynamic stay empty unless the args carry them apart), "est. achieved occupancy %".
The commonest kernel sequence over the reps wins (`reps` = how many agreed), duration_us = their median; a
range with no kernel in the trace falls back to prof.events() (names, durations; status says so). Points
with K+V > 8 GiB are dropped, the rest run in priority order (float16 d128, then d64, then bfloat16) until
--budget-s has passed ("skipped: time budget" after); refused shapes are rows with status "error: ...".
Writes DIR/cudnn_kernels.csv (a row per kernel of one call) and DIR/meta.json; prints a summary last.
"""

import argparse
import csv
import itertools
import json
import statistics
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

from attnsim.bench.inputs import KvPool, make_query
from attnsim.kernels.torch_baselines import SdpaLauncher
from attnsim.simulator.workload import DecodeWorkload

TAG = "geom"
RANGE = TAG + "|{}|{}|{}"  # point index, backend, rep
MAX_KV_BYTES = 8 << 30
BATCHES, CONTEXTS = (1, 4, 16, 64), (512, 2048, 8192, 32768, 131072)
HEADS = ((32, 32), (32, 8), (64, 8), (32, 1), (128, 128))
BACKENDS = ("torch-cudnn", "torch-flash")
KERNEL_CATS, LAUNCH_CATS = {"kernel", "gpu_memset", "gpu_memcpy"}, {"cuda_runtime", "cuda_driver"}
GEOMETRY = ["grid_x", "grid_y", "grid_z", "block_x", "block_y", "block_z", "regs", "smem_static",
            "smem_dynamic", "smem_total", "occupancy_pct"]
FIELDS = ["backend", "batch", "q_heads", "kv_heads", "head_dim", "context", "dtype", "kernel_index",
          "name", *GEOMETRY, "duration_us", "reps", "status"]
KEYS = {"regs": ("registers per thread", "registers_per_thread", "registersPerThread", "regs"),
        "smem_static": ("static shared memory", "static_shared_memory", "staticSharedMemory"),
        "smem_dynamic": ("dynamic shared memory", "dynamic_shared_memory", "dynamicSharedMemory"),
        "smem_total": ("shared memory", "shared_memory", "sharedMemory"),
        "occupancy_pct": ("est. achieved occupancy %", "est_occupancy", "occupancy")}
_keys = lambda point, backend: dict(zip(FIELDS[:7], (backend, *point)))  # noqa: E731  (CSV key columns)


# ---- trace parsing: pure Python, tested without a GPU (tests/kernels/test_cudnn_geometry.py) ----
def _number(v):
    try:
        return int(v) if float(v) == int(float(v)) else float(v)
    except (TypeError, ValueError, OverflowError):
        return None


def _dim3(v) -> list:
    """[x, y, z] from a list/tuple, a "[x, y, z]" string or an {x, y, z} dict; Nones if unknown."""
    if isinstance(v, dict):
        v = [v.get(a) for a in "xyz"]
    elif isinstance(v, str):
        v = v.strip("[]() ").replace(",", " ").split()
    v = [_number(x) for x in v] if isinstance(v, (list, tuple)) else []
    return (v + [1 if v else None] * 3)[:3]


def kernel_record(ev: dict) -> dict:
    """One trace kernel event -> name, geometry, duration (None for whatever the args lack)."""
    args = ev.get("args") or {}
    rec = dict(zip(GEOMETRY, _dim3(args.get("grid", args.get("grid dims")))
                   + _dim3(args.get("block", args.get("block dims")))))
    rec.update({k: next((_number(args[a]) for a in keys if a in args), None) for k, keys in KEYS.items()})
    if rec["smem_total"] is None and (rec["smem_static"], rec["smem_dynamic"]) != (None, None):
        rec["smem_total"] = (rec["smem_static"] or 0) + (rec["smem_dynamic"] or 0)
    return {"name": ev.get("name", ""), **rec, "duration_us": _number(ev.get("dur")), "ts": _number(ev.get("ts")) or 0}


def kernels_by_range(trace, prefix: str = TAG) -> dict[str, list[dict]]:
    """{CPU range name starting with prefix: [its kernel records in start order]}."""
    events = trace.get("traceEvents", []) if isinstance(trace, dict) else trace
    cat = lambda e: str(e.get("cat", "")).lower()  # noqa: E731
    corr = lambda e: (e.get("args") or {}).get("correlation")  # noqa: E731
    ranges = [e for e in events if e.get("ph") == "X" and str(e.get("name", "")).startswith(prefix)
              and not cat(e).startswith("gpu")]  # gpu_user_annotation mirrors the range on the GPU
    launches = {corr(e): e["ts"] for e in events if cat(e) in LAUNCH_CATS and corr(e) is not None}
    out = {r["name"]: [] for r in ranges}
    for ev in (e for e in events if cat(e) in KERNEL_CATS):
        t = launches.get(corr(ev), ev.get("ts"))
        host = next((r for r in ranges if t is not None and r["ts"] <= t <= r["ts"] + r.get("dur", 0)), None)
        if host is not None:
            out[host["name"]].append(kernel_record(ev))
    return {k: sorted(v, key=lambda r: r["ts"]) for k, v in out.items()}


def per_call(reps: list[list[dict]]) -> tuple[list[dict], str]:
    """One call's kernels from several reps: the commonest name sequence, median durations."""
    sigs = Counter(tuple(k["name"] for k in rep) for rep in reps if rep)
    if not sigs:
        return [], "error: no kernels captured"
    sig, agree = sigs.most_common(1)[0]
    same = [rep for rep in reps if tuple(k["name"] for k in rep) == sig]
    calls = [dict(k, duration_us=statistics.median(r[i]["duration_us"] or 0 for r in same), reps=agree)
             for i, k in enumerate(same[0])]
    return calls, "ok" if agree == len(reps) else f"ok: {agree}/{len(reps)} reps agree"


def kernels_from_function_events(events, name: str) -> list[dict]:
    """Fallback: kernel names and durations (µs) under the profiler FunctionEvent(s) called `name`."""
    found, stack = [], [e for e in events if e.name == name]
    while stack:
        e = stack.pop()
        found += [{"name": k.name, "duration_us": k.duration} for k in getattr(e, "kernels", [])]
        stack += reversed(list(getattr(e, "cpu_children", [])))  # pre-order: ops in start order
    return found


# ---- the sweep (on the GPU) ----
def sweep_points(quick: bool) -> list[tuple]:
    """(batch, q_heads, kv_heads, head_dim, context, dtype) in priority order, K+V <= 8 GiB."""
    if quick:
        return [(b, hq, hkv, 128, c, "float16") for b in (1, 16) for hq, hkv in HEADS[:2] for c in (2048, 32768)] + [
            (1, 32, 1, 128, 131072, "float16"), (4, 128, 128, 128, 8192, "float16"),
            (1, 32, 8, 64, 8192, "float16"), (1, 32, 8, 128, 8192, "bfloat16")]
    tiers = [(HEADS, (128,), ("float16",)), (HEADS[:4], (64,), ("float16",)), (HEADS[1:2], (128,), ("bfloat16",)),
             (HEADS, (128, 64), ("float16", "bfloat16"))]
    points = dict.fromkeys((b, hq, hkv, d, c, dt) for heads, dims, dtypes in tiers
                           for b, (hq, hkv), d, c, dt in itertools.product(BATCHES, heads, dims, CONTEXTS, dtypes))
    return [p for p in points if 2 * p[0] * p[2] * p[3] * p[4] * 2 <= MAX_KV_BYTES]


def run_point(i, point, backend, pool, reps) -> str:
    """Warm-up, then `reps` profiled calls, each in its own range: "ok" or why it failed."""
    import torch

    w = DecodeWorkload.build(*point[:5], dtype=point[5])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fn, backend_ctx = SdpaLauncher(backend, w).timed_call(make_query(w, i), *pool[w.dtype].views(w))
            with backend_ctx:
                fn()
                torch.cuda.synchronize()
                for r in range(reps):
                    with torch.profiler.record_function(RANGE.format(i, backend, r)):
                        fn()
                        torch.cuda.synchronize()
            return "ok"
        except Exception as exc:  # a refused shape (or OOM) is a row, not a crash; SDPA warns the reasons
            why = " | ".join(str(x.message).splitlines()[0] for x in caught[-4:])
            return f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:100]} [{why[:300]}]"


def capture(points, args) -> tuple[list[dict], int]:
    import torch
    from torch.profiler import ProfilerActivity, profile

    pool = {dt: KvPool([DecodeWorkload.build(*p[:5], dtype=dt) for p in points if p[5] == dt], dt)
            for dt in {p[5] for p in points}}
    rows, start, captured = [], time.perf_counter(), 0
    over = lambda: time.perf_counter() - start > args.budget_s  # noqa: E731
    for c0 in range(0, len(points), args.chunk):
        chunk = [(i, points[i], be) for i in range(c0, min(c0 + args.chunk, len(points))) for be in args.backends]
        if over():
            rows += [{**_keys(p, be), "status": "skipped: time budget"} for i, p, be in chunk]
            continue
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            status = ["skipped: time budget" if over() else run_point(i, p, be, pool, args.reps) for i, p, be in chunk]
        with tempfile.TemporaryDirectory() as tmp:
            prof.export_chrome_trace(f"{tmp}/trace.json")
            ranges = kernels_by_range(json.loads(Path(f"{tmp}/trace.json").read_text()))
        for (i, p, be), st in zip(chunk, status):
            calls = []
            if st == "ok":
                tags = [RANGE.format(i, be, r) for r in range(args.reps)]
                reps = [ranges.get(t, []) for t in tags]
                if not any(reps):  # names and durations only, from the profiler's own events
                    reps = [kernels_from_function_events(prof.events(), t) for t in tags]
                    st = "ok: names only (no kernel events in the chrome trace)"
                calls, got = per_call(reps)
                st = got if st == "ok" or not calls else f"{st}; {got}"
            captured += bool(calls)
            rows += [{**_keys(p, be), "kernel_index": j, **{f: k.get(f) for f in FIELDS[8:-1]}, "status": st}
                     for j, k in enumerate(calls)] or [{**_keys(p, be), "status": st}]
        torch.cuda.empty_cache()
    return rows, captured


def summarize(rows: list[dict]) -> str:
    """Per backend: launches per call, distinct kernels, then each float16 call's kernel grids by workload."""
    out, grid = [], lambda r: "x".join(str(r[f"grid_{a}"]) for a in "xyz").removesuffix("x1x1")
    for be in dict.fromkeys(r["backend"] for r in rows):
        calls, failed = {}, Counter()
        for r in (r for r in rows if r["backend"] == be):
            if str(r["status"]).startswith("ok"):
                calls.setdefault(tuple(r[f] for f in FIELDS[1:7]), []).append(r)
            else:
                failed[str(r["status"])[:120]] += 1
        out.append(f"== {be}: {len(calls)} workloads captured; launches/call "
                   f"{dict(Counter(len(v) for v in calls.values()))}; not captured {dict(failed)}")
        kinds = Counter((r["name"], r["block_x"], r["regs"], r["smem_total"]) for v in calls.values() for r in v)
        out += [f"  {n:4d}x block {bx} regs {regs} smem {smem}  {name[:160]}"
                for (name, bx, regs, smem), n in kinds.most_common()]
        for d in sorted({k[3] for k in calls}, reverse=True):
            out.append(f"  float16 d{d}: launches per call: grid of each kernel launch (memsets omitted)")
            out.append("     b  hq/hkv | " + " ".join(f"{c:>16}" for c in CONTEXTS))
            for b, (hq, hkv) in itertools.product(BATCHES, HEADS):
                got = [calls.get((b, hq, hkv, d, c, "float16")) for c in CONTEXTS]
                cells = [f"{len(v)}:" + "+".join(grid(k) for k in v if k["grid_x"] is not None) if v else "-" for v in got]
                if any(got):
                    out.append(f"  {b:>4} {hq:>3}/{hkv:<3} | " + " ".join(f"{x:>16}" for x in cells))
    return "\n".join(out)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--quick", action="store_true", help="a dozen points")
    ap.add_argument("--budget-s", type=float, default=45.0, help="start no new point after this many seconds")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--chunk", type=int, default=32, help="points per profiler session")
    ap.add_argument("--backends", nargs="+", default=None, choices=BACKENDS,
                    help="default: both; cuDNN only with --thresholds")
    ap.add_argument("--thresholds", action="store_true", help="the split-rule edges (scripts/cudnn_thresholds.py)")
    ap.add_argument("--time", action="store_true", help="with --thresholds: also time each point (do_bench)")
    args = ap.parse_args(argv)
    args.backends = args.backends or (["torch-cudnn"] if args.thresholds else list(BACKENDS))
    import torch

    from cudnn_thresholds import plan_check, threshold_points, time_points

    points = threshold_points() if args.thresholds else sweep_points(args.quick)
    t0 = time.perf_counter()
    rows, captured = capture(points, args)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "cudnn_kernels.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    props = torch.cuda.get_device_properties(0)
    meta = {"device": props.name, "sms": props.multi_processor_count, "torch": torch.__version__,
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(), "points": len(points),
            "backends": args.backends, "captured_calls": captured, "reps": args.reps,
            "wall_s": round(time.perf_counter() - t0, 1)}
    (args.out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(json.dumps(meta))
    print(summarize(rows))
    if args.thresholds:
        print(plan_check(rows))
    if args.thresholds and args.time:
        time_points(points, args.out / "cudnn_threshold_times.csv")


if __name__ == "__main__":
    main()
