"""Where the fp8 tile loop's time goes, by ablation: the same KV bytes streamed by the same grid, tile,
warps and stages as FlashDecoding's kernel, with the loop's work added one layer at a time.

Levels (each includes the ones before it):
  0 load     K and V tiles loaded (as 32-bit words) and XOR-folded: the loads and the pipeline alone
  1 convert  K and V loaded in their dtype; fp8 converted to fp16 and summed elementwise
  2 dots     s = q K^T and acc += s V (fp16 operands, V through the same layout move as the kernel),
             no softmax
  3 full     the kernel's own tile step (tiles.tile_step, unmasked: whole tiles): dots and online softmax

Every CTA streams its own slice of a [CTAs, tokens, head_dim] K and V cache, so each level reads the
same bytes; the floor is a pure streaming read of those bytes under the same timer (membw.ReadFloor).
Level 3's output is checked against a float64 reference on a few CTAs.

Usage (on the GPU):  PYTHONPATH=. python3 scripts/fp8_loop_probe.py --out probe.csv
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass

import triton
import triton.language as tl

from attnsim.kernels.fastlaunch import interpreting
from attnsim.kernels.tiles import opaque_move, tile_step

LEVELS = ("load", "convert", "dots", "full")
LOG2E = 1.4426950408889634


@dataclass(frozen=True)
class ProbeShape:
    """One kernel geometry: the KV dtype, its tile (tokens), stages, warps and CTAs per SM."""
    kv_dtype: str  # "float8_e4m3fn" or "bfloat16"
    block_n: int
    num_stages: int
    ctas_per_sm: int
    num_warps: int = 4
    head_dim: int = 128
    block_m: int = 16  # query rows (GQA group padded to the mma's 16)


# FlashDecoding's shipped geometries on sm_90 (profiles/kernels_sm90.json, d 128): fp8 128-token tiles at
# 3 stages (104 KB of shared memory: two CTAs an SM), 16-bit 64-token tiles at 3 stages (three an SM); the
# 16-bit loop at two an SM too, so that the two dtypes are also compared at one occupancy
DEFAULT_SHAPES = (ProbeShape("float8_e4m3fn", 128, 3, 2), ProbeShape("bfloat16", 64, 3, 3),
                  ProbeShape("bfloat16", 64, 3, 2))


@triton.jit
def _probe_kernel(q_ptr, k_ptr, v_ptr, kw_ptr, vw_ptr, o_ptr, tiles, sm_scale_log2,
                  HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, WORDS: tl.constexpr,
                  LEVEL: tl.constexpr):
    """One CTA: `tiles` tiles of its K/V slice ([tiles * BLOCK_N, HEAD_DIM] each; kw / vw the same bytes as
    [.., WORDS] int32) through the loop up to LEVEL. Writes o[cta] ([BLOCK_M, HEAD_DIM] fp32): level 3 the
    attention output, lower levels a value that keeps their work alive at [0, 0]."""
    cta = tl.program_id(0).to(tl.int64)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, HEAD_DIM)
    offs_m = tl.arange(0, BLOCK_M)
    o_tile = o_ptr + cta * BLOCK_M * HEAD_DIM + offs_m[:, None] * HEAD_DIM + offs_d[None, :]
    first_row = cta * tiles * BLOCK_N
    if LEVEL == 0:
        offs_w = tl.arange(0, WORDS)
        fold = tl.zeros([BLOCK_N, WORDS], tl.int32)
        for t in range(0, tiles):
            words = (first_row + t * BLOCK_N + offs_n)[:, None] * WORDS + offs_w[None, :]
            fold = fold ^ tl.load(kw_ptr + words) ^ tl.load(vw_ptr + words)
        total = tl.sum(tl.sum((fold & 0xFFFF).to(tl.float32), 1), 0)  # the low halves: no overflow
        tl.store(o_tile, tl.where((offs_m[:, None] == 0) & (offs_d[None, :] == 0), total, 0.0))
    else:
        q = tl.load(q_ptr + cta * BLOCK_M * HEAD_DIM + offs_m[:, None] * HEAD_DIM + offs_d[None, :])
        is_fp8: tl.constexpr = k_ptr.dtype.element_ty == tl.float8e4nv
        acc = tl.zeros([BLOCK_M, HEAD_DIM], tl.float32)
        total = tl.zeros([BLOCK_N, HEAD_DIM], tl.float16 if is_fp8 else k_ptr.dtype.element_ty)
        m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
        l_i = tl.zeros([BLOCK_M], tl.float32)
        if is_fp8:
            qk_scale = tl.full([BLOCK_M], 1.0, tl.float32) * sm_scale_log2  # tile_step's per-row fp8 scale
        else:
            qk_scale = sm_scale_log2
        for t in range(0, tiles):
            offs_tok = t * BLOCK_N + offs_n
            rows = (first_row + offs_tok)[:, None] * HEAD_DIM + offs_d[None, :]
            k = tl.load(k_ptr + rows)
            v = tl.load(v_ptr + rows)
            if LEVEL == 1:
                total = total + k.to(total.dtype) + v.to(total.dtype)
            elif LEVEL == 2:
                s = tl.dot(q, tl.trans(k.to(q.dtype)))
                if is_fp8:
                    v = opaque_move(v.to(tl.float16))
                acc = acc + tl.dot(s.to(q.dtype), v.to(q.dtype))
            else:
                acc, m_i, l_i = tile_step(q, k, v, acc, m_i, l_i, offs_tok, offs_tok, 0, qk_scale, 1, False)
        if LEVEL == 1:
            acc = tl.where((offs_m[:, None] == 0) & (offs_d[None, :] == 0),
                           tl.sum(tl.sum(total.to(tl.float32), 1), 0), 0.0)
        elif LEVEL == 3:
            acc = acc / l_i[:, None]
        tl.store(o_tile, acc)


def tokens_per_cta(kv_bytes: int, ctas: int, shape: ProbeShape) -> int:
    """Whole tiles a CTA so that K + V of all CTAs come to at least kv_bytes."""
    row_bytes = 2 * shape.head_dim * (1 if "float8" in shape.kv_dtype else 2)  # K and V, one token
    tiles = max(1, math.ceil(kv_bytes / (ctas * row_bytes * shape.block_n)))
    return tiles * shape.block_n


def make_inputs(shape: ProbeShape, ctas: int, tokens: int, device: str):
    """(q [ctas, BLOCK_M, d], k, v [ctas, tokens, d] in the KV dtype): standard normal values, rounded to
    the dtype (fp8 KV: q in fp16, the kernels' dot dtype for it)."""
    import torch

    kv_dtype = getattr(torch, shape.kv_dtype)
    q_dtype = torch.float16 if kv_dtype == torch.float8_e4m3fn else kv_dtype
    if q_dtype == torch.bfloat16 and interpreting():
        q_dtype = torch.float32  # the interpreter's NumPy has no bf16 matmul (as the launcher does there)
    gen = torch.Generator(device=device).manual_seed(0)
    q = torch.randn(ctas, shape.block_m, shape.head_dim, generator=gen, device=device).to(q_dtype)
    k, v = (torch.randn(ctas, tokens, shape.head_dim, generator=gen, device=device).to(kv_dtype) for _ in range(2))
    return q, k, v


def launcher(shape: ProbeShape, level: int, q, k, v, out):
    """A no-argument call of the probe at `level` over q, k, v (one CTA per leading index)."""
    import torch

    ctas, tokens, _ = k.shape
    words = shape.head_dim * k.element_size() // 4
    kw, vw = k.view(torch.int32), v.view(torch.int32)
    scale = LOG2E / math.sqrt(shape.head_dim)
    if interpreting():
        from attnsim.kernels.launch import patch_interpreter_index

        patch_interpreter_index()

    def call():
        _probe_kernel[(ctas,)](q, k, v, kw, vw, out, tokens // shape.block_n, scale, shape.head_dim, shape.block_m,
                               shape.block_n, words, level, num_warps=shape.num_warps, num_stages=shape.num_stages)
    return call


def check_full(q, k, v, out, ctas_checked=(0, -1)) -> float:
    """Largest error of level 3's output over a few CTAs, each checked as a sequence of BLOCK_M query heads on
    one KV head over its whole slice (kernels.reference, float64), relative to the reference's largest |value|."""
    from attnsim.kernels.reference import attention_reference, max_relative_error

    tokens = k.shape[1]
    return max(max_relative_error(out[c], attention_reference(q[c][None], k[c][None, None], v[c][None, None],
                                                              [tokens])[0])
               for c in ctas_checked)


def probe(shape: ProbeShape, kv_bytes: int, sms: int, device: str, timer=None, floor=None) -> list[dict]:
    """One row per level: time (µs), floor (µs) and GB/s of the same bytes, the check of level 3."""
    import torch

    from attnsim.kernels.timing import time_us

    ctas = shape.ctas_per_sm * sms
    tokens = tokens_per_cta(kv_bytes, ctas, shape)
    q, k, v = make_inputs(shape, ctas, tokens, device)
    out = torch.zeros(ctas, shape.block_m, shape.head_dim, device=device, dtype=torch.float32)
    read_bytes = 2 * k.numel() * k.element_size()
    floor_us = floor.us(read_bytes) if floor is not None else float("nan")
    rows = []
    for level, name in enumerate(LEVELS):
        call = launcher(shape, level, q, k, v, out)
        call()
        err = check_full(q, k, v, out) if level == 3 else float("nan")
        t = time_us(call, timer) if timer is not None else float("nan")
        rows.append({"kv_dtype": shape.kv_dtype, "block_n": shape.block_n, "num_stages": shape.num_stages,
                     "ctas_per_sm": shape.ctas_per_sm, "grid": ctas, "tokens_per_cta": tokens, "level": name,
                     "kv_bytes": read_bytes, "time_us": round(t, 2), "floor_us": round(floor_us, 2),
                     "vs_floor": round(t / floor_us, 3), "gbps": round(read_bytes / t / 1e3, 1),
                     "max_rel_err": err})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--mb", type=int, default=512, help="K + V bytes a run streams, MB (default 512)")
    parser.add_argument("--out", required=True, help="CSV of one row per geometry and level")
    args = parser.parse_args(argv)
    import pandas as pd
    import torch

    from attnsim.fileio import atomic_path
    from attnsim.kernels.membw import ReadFloor
    from attnsim.kernels.timing import TimerConfig

    if not torch.cuda.is_available() or interpreting():
        print("fp8_loop_probe: needs a GPU (the CPU interpreter is for the tests)", file=sys.stderr)
        return 2
    timer = TimerConfig()
    floor = ReadFloor(timer)
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    rows = [r for shape in DEFAULT_SHAPES for r in probe(shape, args.mb << 20, sms, "cuda", timer, floor)]
    frame = pd.DataFrame(rows)
    frame.insert(0, "gpu", torch.cuda.get_device_name())
    with atomic_path(args.out) as tmp:
        frame.to_csv(tmp, index=False)
    print(frame.drop(columns=["gpu", "kv_bytes"]).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
