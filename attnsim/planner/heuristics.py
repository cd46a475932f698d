"""Production systems' split rules (DOMAIN.md section 6), replayed on our kernels' plans.

The registry's HEURISTICS name them and the entry each one picks options for; RULES below maps a
rule key to a function (StrategyContext of that entry) -> PlanConfig options. Our own reading of
each system's rule, from its source:

- FlashInfer (scheduler.cuh): max grid = blocks/SM x SMs of its decode kernel; no split when
  batch x kv_heads fills it; else the smallest chunk, at least 128 tokens, whose chunk count x
  kv_heads fits -> balanced with that chunk on our kernel's capacity.
- Lean / ORT (lean_api.cc): a persistent grid of 2 x SMs -> stream-K grid min(2 x SMs, capacity).
- SGLang Triton decode (get_num_kv_splits_triton): per sequence max(ceil(len / c1), ceil(len / c2))
  splits, c1 from the max/min length ratio, c2 from SMs x max(log2(max_len / 64), 1) over the
  head-block grid, both capped at 8 splits -> balanced with chunk min(c1, c2) rounded up to a tile.
- CUTLASS stream-K (threadblock_swizzle_streamk.h, get_blocks / get_sk_blocks): full DP waves of SMs,
  the partial wave (or it plus the last full wave) stream-K when the iterations saved outweigh a
  fix-up cost -> hybrid with one persistent grid running both (DP outputs rounded to its waves).
- FA2 (flash_api.cpp): num_splits_heuristic (sms = 2 x SMs, 0.85 wave efficiency) over our
  kernel's KV tiles, as the split-KV entry computes its default.
- FA3 (hopper/heuristics.h, flash_api.cpp, flash_prepare_scheduler.cu): a static split count from its
  num_splits_heuristic on the SMs (not 2 x SMs; 1 split when n_blocks <= 4; `num_splits` > 0
  replaces it), then, for a batch of at most 992 sequences with per-sequence lengths (the KV-cache
  path), each sequence's splits = ceil(n_blocks / bps), bps = ceil(1.1 x kv_heads x total n_blocks /
  SMs), at most the static count; splits of ceil(n / splits) blocks -> balanced with the chunk of
  the longest sequence (a uniform batch: FA3's ranges exactly; a ragged one: shorter sequences get
  the longest one's split size).
"""

from __future__ import annotations

import math

import numpy as np

from attnsim.planner.candidates import StrategyContext
from attnsim.simulator.partition import balanced, flashdecoding

FLASHINFER_MIN_CHUNK_TOKENS = 128  # max(128 / page_size, 1) pages
SGLANG_MAX_SPLITS = 8
SGLANG_BLOCK_H = 16  # q-heads per program of its grouped kernel
FA3_MAX_SPLITS = 128  # num_splits_heuristic's cap (flash_api.cpp)
FA3_DYNAMIC_MARGIN = 1.1  # flash_prepare_scheduler.cu: "10% margin" on the blocks per SM
FA3_MAX_DYNAMIC_BATCH = 992  # flash_api.cpp: per-sequence (dynamic) splits only for b <= 992
CUTLASS_MIN_ITERS_PER_SK_BLOCK = 2


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def fa2_splits(ctx: StrategyContext) -> dict:
    return {"splits": flashdecoding.heuristic_splits(ctx.workload, ctx.gpu, ctx.tile)}


def flashinfer_chunk(ctx: StrategyContext) -> dict:
    longest = int(ctx.tiles.max()) * ctx.tile
    if ctx.outputs >= ctx.capacity:
        return {"chunk_tokens": longest}
    chunk = balanced.chunk_for_grid(ctx.workload, ctx.tile, ctx.capacity)
    return {"chunk_tokens": min(longest, max(chunk, round_up(FLASHINFER_MIN_CHUNK_TOKENS, ctx.tile)))}


def lean_grid(ctx: StrategyContext) -> dict:
    return {"grid": min(2 * ctx.gpu.sm_count, ctx.capacity)}


def sglang_chunk(ctx: StrategyContext, max_splits: int = SGLANG_MAX_SPLITS) -> dict:
    """max_splits: --triton-attention-num-kv-splits (default 8)."""
    w = ctx.workload
    longest, shortest = max(w.contexts), min(w.contexts)
    if longest * 8 < shortest * 10:  # within 25%: treated as uniform
        shortest = longest
    splits_ratio = min(-(-longest // shortest), max_splits)
    cores = int(ctx.gpu.sm_count * max(math.log2(longest / 64.0), 1.0))
    heads = w.q_heads if w.group == 1 else -(-w.q_heads // min(SGLANG_BLOCK_H, w.group))
    splits_cores = min(-(-cores // (w.batch * w.q_len * heads)), max_splits)
    chunk = min(-(-longest // splits_ratio), -(-longest // splits_cores))
    return {"chunk_tokens": min(round_up(chunk, ctx.tile), int(ctx.tiles.max()) * ctx.tile)}


def fa3_static_splits(ctx: StrategyContext, max_splits: int = FA3_MAX_SPLITS) -> int:
    """FA3's num_splits_heuristic: the smallest split count within 0.85 of the best wave efficiency
    of outputs x splits CTAs on the SMs (no eligibility rule, unlike FA2's)."""
    n_blocks, sms = int(ctx.tiles.max()), ctx.gpu.sm_count
    if ctx.outputs >= 0.8 * sms or n_blocks <= 4:
        return 1
    efficiency = [w / math.ceil(w) for w in (ctx.outputs * s / sms for s in range(1, min(max_splits, sms, n_blocks) + 1))]
    return 1 + next(i for i, e in enumerate(efficiency) if e >= 0.85 * max(efficiency))


def fa3_chunk(ctx: StrategyContext, num_splits: int = 0) -> dict:
    """num_splits: FA3's argument (0: its heuristic; n > 0: n, a cap on the per-sequence splits)."""
    static = num_splits if num_splits > 0 else fa3_static_splits(ctx)
    longest = int(ctx.tiles.max())
    splits = static
    if ctx.workload.batch <= FA3_MAX_DYNAMIC_BATCH:
        per_sm = max(1, math.ceil(FA3_DYNAMIC_MARGIN * float(ctx.tiles.sum()) / ctx.gpu.sm_count))
        splits = max(1, min(-(-longest // per_sm), static))
    return {"chunk_tokens": -(-longest // min(splits, longest)) * ctx.tile}


def cutlass_sk_blocks(sk_tiles: int, iters: int, sms: int, max_occupancy: int, partial_wave: bool) -> tuple[int, float]:
    """(SK blocks, iterations saved) of the best-scoring SK grid for `sk_tiles` output tiles."""
    if sk_tiles == 0:
        return 0, -math.inf
    sk_iters = sk_tiles * iters
    low = min(sms, sk_tiles + 1) if partial_wave else sms
    blocks = np.arange(low, min(sms * max_occupancy, sk_iters // CUTLASS_MIN_ITERS_PER_SK_BLOCK) + 1)
    if len(blocks) == 0:
        return 0, -math.inf
    waves = -(-blocks // sms)
    equiv = -(-sk_iters // blocks) * waves  # iterations of the slowest SK block, per wave
    aligned = blocks % sk_tiles == 0
    peers = np.where(aligned, blocks // sk_tiles, -(-blocks // sk_tiles) + 1)
    skew_cost = np.where(aligned, 0.0, 0.02 * peers * equiv)
    fixup = (2.0 * waves + skew_cost + 2.0 * peers).astype(np.int64)
    saved = iters * -(-sk_tiles // sms) - equiv - fixup
    best = len(saved) - 1 - int(np.argmax(saved[::-1]))  # the last of the best (ties to more blocks)
    return int(blocks[best]), float(saved[best])


def cutlass_split(outputs: int, iters: int, sms: int, occupancy: int) -> tuple[int, int]:
    """(DP outputs, SK blocks): CUTLASS's choice between full DP waves and a stream-K tail."""
    full = outputs // sms
    partial = outputs - full * sms
    if partial == 0:
        return outputs, 0
    if full < occupancy:
        blocks, saved = cutlass_sk_blocks(partial, iters, sms, occupancy - full, True)
        return (full * sms, blocks) if saved >= 0 else (outputs, 0)
    if occupancy > 1 and full % occupancy == occupancy - 1:
        blocks, saved = cutlass_sk_blocks(partial, iters, sms, 1, True)
        if saved >= 0:
            return full * sms, blocks
    blocks, saved = cutlass_sk_blocks(partial + sms, iters, sms, occupancy - (full - 1) % occupancy, False)
    return ((full - 1) * sms, blocks) if saved >= 0 else (outputs, 0)


def cutlass_blocks(ctx: StrategyContext) -> dict:
    sms = ctx.gpu.sm_count
    iters = max(1, round(float(ctx.tiles.mean())))
    dp, sk_blocks = cutlass_split(ctx.outputs, iters, sms, max(1, ctx.capacity // sms))
    floor = sms if dp else 1
    grid = min(ctx.capacity, ctx.outputs if sk_blocks == 0 else max(sk_blocks, floor))
    return {"grid": grid, "dp_outputs": min(dp, ctx.outputs) // grid * grid}


RULES = {"fa2_splits": fa2_splits, "flashinfer_chunk": flashinfer_chunk, "lean_grid": lean_grid, "sglang_chunk": sglang_chunk,
         "cutlass_blocks": cutlass_blocks, "fa3_chunk": fa3_chunk}
