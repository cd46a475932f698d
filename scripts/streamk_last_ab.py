"""Device A/B of stream-K's two epilogues (issue 19 item 2): the host CTA's flag tree (default) against
the last-arrival merge (epilogue=last), one stage per device call, each well under 9 minutes.

    PYTHONPATH=. python3 scripts/streamk_last_ab.py --stage 1 --out $OUT    # uniform, 4 MB .. 4 GB
    PYTHONPATH=. python3 scripts/streamk_last_ab.py --stage 2 --out $OUT    # ragged, 4 MB .. 4 GB
    PYTHONPATH=. python3 scripts/streamk_last_ab.py --stage 3 --out $OUT    # determinism, compiled resources

Stages 1-2 run the project's bench harness (attnsim.bench.run.run_bench_to_csv, as `attnsim bench`
does): every row checked against the float64 reference, timed by kernels.timing.time_us (do_bench
median, L2 flushed by a 256 MB write before every call, CUDA-graph replay), with floor_us and vs_floor
from kernels/membw.ReadFloor (a pure streaming read of the point's bytes under the same timer). Plans:
stream-K and hybrid with each epilogue on the same grid (the resident capacity), plus cuDNN and
FlashDecoding where they apply (cuDNN takes no ragged batch). A stage is resumable: run it again with
the same --out and the rows already there are kept (write_every_s 5).
Stage 3: 100 CUDA-graph replays of epilogue=last (uniform MQA: one output over every CTA; ragged)
bitwise identical to an eager run with the counters 0 after each, and the compiled registers, spills
and shared memory of lean_decode vs lean_last at d 64/128, fp16/bf16 (launch meta from the device).

Writes OUT/streamk_last_stage<N>.csv (bench columns) or OUT/streamk_last_stage3.json; prints a table.
The peak read bandwidth for bw_fraction is the shipped H200 profile's measured one (hbm_read_gbps), not re-measured.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from splitkv_device import determinism  # noqa: E402

from attnsim.simulator.workload import DecodeWorkload  # noqa: E402

TREE, LAST = "streamk", "streamk:epilogue=last"
PLANS = [TREE, LAST, "hybrid", "hybrid:epilogue=last", "flashdecoding"]
UNIFORM = [(1, 32, 8, 1024), (1, 32, 8, 4096), (1, 32, 8, 16384), (1, 32, 1, 65536), (1, 32, 8, 65536),
           (8, 32, 32, 1024), (16, 32, 8, 4096), (4, 32, 8, 65536), (4, 32, 8, 262144)]  # 4 MB .. 4 GB at d 128 fp16
RAGGED = [(32, 8, [300, 700]), (32, 8, [100, 5000, 2000, 800]), (32, 8, [65536, 1000, 16384, 4096]),
          (32, 8, [1000, 70000, 3000, 500, 20000, 120000, 8000, 40000]), (32, 8, [600000, 200000, 100000, 100000])]


def points(stage: int) -> list[DecodeWorkload]:
    if stage == 1:
        return [DecodeWorkload.build(b, hq, hkv, 128, c) for b, hq, hkv, c in UNIFORM]
    return [DecodeWorkload.build(len(c), hq, hkv, 128, c) for hq, hkv, c in RAGGED]


def bench_stage(stage: int, out: Path) -> pd.DataFrame:
    from attnsim.bench.run import run_bench_to_csv
    from attnsim.profiles import resolve_gpu

    names = tuple(PLANS + (["torch-cudnn"] if stage == 1 else []))
    started = time.time()
    gpu = resolve_gpu("h200")
    return run_bench_to_csv(out / f"streamk_last_stage{stage}.csv", points(stage), gpu, names,
                            resume=True, peak_read_gbps=gpu.hbm_read_gbps,
                            progress=lambda i, n, label: print(f"[{time.time() - started:6.1f}s] {i}/{n} {label}",
                                                               flush=True),
                            log=print)


def summary(df: pd.DataFrame) -> str:
    """One line per point: KV MB, floor, each plan's µs (tree / last), last / tree, last - floor."""
    ok = df[df["status"].astype(str) == "ok"].copy()
    ok["spec"] = ok["requested"].astype(str)
    lines = [f"{'point':<34}{'MB':>7}{'floor':>8}{'sk tree':>9}{'sk last':>9}{'last/tree':>10}"
             f"{'hy tree':>9}{'hy last':>9}{'cudnn':>8}{'last-floor':>11}"]
    for (b, hq, hkv, contexts), g in ok.groupby(["batch", "q_heads", "kv_heads", "contexts"], sort=False):
        t = g.set_index("spec")["time_us"]
        floor = g["floor_us"].iloc[0]
        label = f"b{b} {hq}/{hkv} {contexts}"
        lines.append(f"{label[:33]:<34}{g['kv_bytes'].iloc[0] / 2**20:>7.0f}{floor:>8.1f}{t.get(TREE, float('nan')):>9.1f}"
                     f"{t.get(LAST, float('nan')):>9.1f}{t.get(LAST, float('nan')) / t.get(TREE, float('nan')):>10.3f}"
                     f"{t.get('hybrid', float('nan')):>9.1f}{t.get('hybrid:epilogue=last', float('nan')):>9.1f}"
                     f"{t.get('torch-cudnn', float('nan')):>8.1f}{t.get(LAST, float('nan')) - floor:>11.1f}")
    return "\n".join(lines)


def resources_rows() -> list[dict]:
    """Compiled resources of both stream-K kernels, from the launcher's meta (compiled on this device)."""
    from attnsim.kernels.launch import launcher_for
    from attnsim.profiles import resolve_gpu

    rows = []
    for d in (64, 128):
        for dtype in ("float16", "bfloat16"):
            w = DecodeWorkload.build(1, 32, 8, d, 16384, dtype=dtype)
            for spec in (TREE, LAST):
                meta = launcher_for(spec, w, resolve_gpu("h200")).meta
                rows.append({"spec": spec, "head_dim": d, "dtype": dtype,
                             **{k: meta[k] for k in ("n_regs", "n_spills", "smem_bytes", "num_warps", "grid")}})
    return rows


def stage3(out: Path) -> dict:
    from attnsim.bench.harness import BenchConfig
    from attnsim.bench import inputs
    from attnsim.profiles import resolve_gpu
    import torch

    gpu = resolve_gpu("h200")
    config = BenchConfig((LAST,), gpu, torch.cuda.get_device_name(), gpu.hbm_read_gbps)
    ws = [DecodeWorkload.build(1, 32, 1, 128, 65536), DecodeWorkload.build(3, 32, 8, 128, [100, 5000, 20000])]
    pool = inputs.KvPool(ws, "float16", "cuda", 0)
    result = {"determinism": [determinism(config, pool, w, spec) for w in ws for spec in (LAST, "hybrid:epilogue=last")],
              "resources": resources_rows()}
    (out / "streamk_last_stage3.json").write_text(json.dumps(result, indent=1, default=str))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stage", type=int, choices=(1, 2, 3), required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.stage == 3:
        print(json.dumps(stage3(args.out), indent=1, default=str))
        return
    df = bench_stage(args.stage, args.out)
    print(summary(df))
    bad = df[~df["status"].astype(str).str.startswith(("ok", "unavailable"))]
    if len(bad):
        print(bad[["strategy", "options", "workload", "status"]].to_string())
        raise SystemExit(1)


if __name__ == "__main__":
    main()
