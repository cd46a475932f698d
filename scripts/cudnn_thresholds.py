"""The uncertain edges of cuDNN's decode split rule (attnsim/simulator/partition/torch_cudnn.py): the
point list of `scripts/cudnn_geometry.py --thresholds`, and the check of its capture against the plan.

    PYTHONPATH=. python3 scripts/cudnn_geometry.py --thresholds --time --out results/h200/cudnn_thresholds

With bh = batch x kv_heads x ceil(group / 16) and n_blocks = ceil(context / 128), float16 d 128 unless
said, each group pins one hypothesis (the plan's split count in brackets):
- no-split edge: bh 48, 64 .. 128 at 16k tokens. Captured: bh 32 splits, 128 does not; timed: 64
  splits 4 ways, 96 not at all. The plan: none from bh >= 66 (= SMs / 2) [4 at 64-65, 1 from 66];
- CTA budget: bh 33 and 65 split 8 and 4 ways if the budget is 2 x SMs = 264 CTAs, 4 and 2 if 256;
- small bh 1 .. 24: the caps, 64 splits and 2 x SMs / bh (bh 1-3 at 32k tokens: n_blocks 256 > 64);
- n_blocks edge: bh 2 and 8 at 384 .. 100000 tokens (n_blocks 3 .. 782), bh 24 at 448: none up to 4
  blocks, then capped by n_blocks [5 -> 4, 9 -> 8, 12 -> 8, 24 -> 16]. Their timings are also the
  unsplit few-CTA calls the calibration set lacks (its shortest context, 768 tokens, splits);
- q-blocks: groups of 16, 17, 32, 48 and 128 rows (1, 2, 2, 3, 8 blocks of 16);
- d 64 and bfloat16 at the no-split edge and the n_blocks edge.
No point is in the standard benchmark sweep or the calibration sweep (tests/kernels/test_cudnn_geometry.py
checks), so the `--time` rows (timed as `attnsim bench` times) can join the calibration set.
"""

from __future__ import annotations

# bh -> (batch, q_heads, kv_heads): shapes chosen off the benchmark's and calibration's head pairs
BH_SHAPES = {
    1: (1, 8, 1), 2: (1, 16, 2), 3: (3, 8, 1), 5: (5, 8, 1), 6: (1, 48, 6), 7: (7, 8, 1), 12: (3, 32, 4),
    24: (1, 96, 24), 33: (33, 8, 1), 48: (6, 64, 8), 64: (16, 16, 4), 65: (13, 40, 5), 66: (33, 16, 2),
    67: (67, 8, 1), 72: (9, 64, 8), 80: (10, 64, 8), 88: (11, 64, 8), 92: (23, 16, 4), 96: (6, 64, 16),
    100: (25, 16, 4), 104: (13, 64, 8), 105: (15, 56, 7), 106: (53, 4, 2), 110: (55, 4, 2), 128: (32, 8, 4),
}
EDGE_CONTEXTS = (384, 512, 513, 640, 641, 768, 896, 1024, 1152, 1536, 2047, 3000, 5000, 100000)
Q_BLOCK_SHAPES = ((2, 16, 1), (1, 17, 1), (1, 32, 1), (4, 48, 1), (1, 128, 1), (33, 32, 1))  # last: bh 66


def threshold_points() -> list[tuple]:
    """(batch, q_heads, kv_heads, head_dim, context, dtype), float16 d 128 first."""
    fp16 = [(*BH_SHAPES[bh], 128, 32768 if bh <= 3 else 16384, "float16") for bh in sorted(BH_SHAPES)]
    fp16 += [(1, 16, 2, 128, c, "float16") for c in EDGE_CONTEXTS]  # bh 2
    fp16 += [(2, 32, 4, 128, c, "float16") for c in (384, 513, 640, 1024, 1536, 3000, 100000)]  # bh 8
    fp16 += [(1, 96, 24, d, 448, "float16") for d in (128, 64)]  # bh 24, 4 blocks: unsplit (timed: few CTAs)
    fp16 += [(b, hq, hkv, 128, 16384, "float16") for b, hq, hkv in Q_BLOCK_SHAPES]
    d64 = [(*BH_SHAPES[bh], 64, 16384, "float16") for bh in (64, 66, 67, 80, 96)]
    d64 += [(1, 16, 2, 64, c, "float16") for c in (512, 513, 1024)]
    bf16 = [(*BH_SHAPES[bh], 128, 16384, "bfloat16") for bh in (66, 96)] + [(1, 16, 2, 128, 513, "bfloat16")]
    return fp16 + d64 + bf16


def plan_check(rows: list[dict], gpu_name: str = "h200") -> str:
    """Per captured cuDNN call: bh, n_blocks, the launches and splits measured and planned; then the
    mismatches (where the plan's rule must change)."""
    from attnsim.planner.choose import make_plan
    from attnsim.simulator.hardware import from_name
    from attnsim.simulator.partition import torch_cudnn
    from attnsim.simulator.workload import DecodeWorkload

    gpu, calls = from_name(gpu_name), {}
    for r in rows:
        if r["backend"] == "torch-cudnn" and str(r["status"]).startswith("ok"):
            calls.setdefault(tuple(r[k] for k in ("batch", "q_heads", "kv_heads", "head_dim", "context", "dtype")), []).append(r)
    lines, bad = ["   b  hq/hkv    d   context   bh  n_blk | measured launches:splits | planned"], 0
    for key, call in calls.items():
        w = DecodeWorkload.build(*key[:5], dtype=key[5])
        sched = make_plan("torch-cudnn", w, gpu).schedule
        measured, planned = (len(call), int(call[0]["grid_x"])), (len(sched.launches), sched.splits)
        bad += measured != planned
        bh = w.batch * w.kv_heads * torch_cudnn.q_blocks(w)
        lines.append(f"{key[0]:>4} {key[1]:>3}/{key[2]:<4} {key[3]:>4} {key[4]:>8} {bh:>4} {-(-key[4] // 128):>6} | "
                     f"{measured[0]}:{measured[1]:<22} | {planned[0]}:{planned[1]}{'   MISMATCH' if measured != planned else ''}")
    lines.append(f"{bad} of {len(calls)} captured calls differ from the plan")
    return "\n".join(lines)


def time_points(points: list[tuple], out_csv, gpu_name: str = "h200"):
    """do_bench each point with cuDNN, as `attnsim bench` does (checked against a float64 reference,
    L2 flushed, CUDA-graph replay); rows in the bench CSV format."""
    from attnsim.bench.run import run_bench_to_csv
    from attnsim.profiles import resolve_gpu
    from attnsim.simulator.workload import DecodeWorkload

    workloads = [DecodeWorkload.build(*p[:5], dtype=p[5]) for p in points]
    return run_bench_to_csv(out_csv, workloads, resolve_gpu(gpu_name), ("torch-cudnn",), log=print)
