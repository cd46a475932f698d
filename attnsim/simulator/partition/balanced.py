"""Balanced split-KV: FlashInfer's decode planner idea (scheduler.cuh; DOMAIN.md §3, §6). Every
output is cut into ceil(context / chunk) chunks of `chunk` tokens (a multiple of the KV tile), one
CTA each; outputs cut in several write partials that a combine launch merges.

- chunk: config.chunk_tokens when set (batch-invariant: a sequence's boundaries, and so its merge
  order, depend only on its own length); otherwise the smallest multiple of the tile whose total
  chunk count fits the target grid (config.grid, else the kernel CTA's resident capacity), found
  by binary search (`chunk_for_grid`); never below one tile. When even one chunk per output does
  not fit, every output runs whole (FlashInfer's no-split case).
- max_splits (config.max_splits, optional): an output longer than max_splits chunks is cut into
  max_splits chunks of ceil(tiles / max_splits) tiles instead, so long sequences are not cut into
  hundreds of pieces; still a function of the output's own length (batch-invariant with a fixed chunk).
- CTA order is longest-processing-time first: outputs by descending context (stable), each output's
  chunks on consecutive CTAs in ascending chunk order, so long outputs start in the first wave.
- An output of one chunk is ROLE_COMPLETE; the chunks of a longer one are ROLE_PEER, merged by one
  combine program (a Reductions row, host_cta = -1) in ascending chunk order.

The FlashDecoding kernels run the plan unchanged: one segment per program, a peer's partial slot
is its index in the Reductions peer list. Cost accounting: as FlashDecoding's (flash_decoding.py),
with S the chunks of each output; the combine launch covers only the outputs that were split.
"""

from __future__ import annotations

import functools

import numpy as np

from attnsim.errors import InputError
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.occupancy import resident_capacity
from attnsim.simulator.partition import common, flashdecoding
from attnsim.simulator.schedule import ROLE_COMPLETE, ROLE_PEER, Reductions, Schedule, offsets_from_counts
from attnsim.simulator.workload import DecodeWorkload


def chunk_for_grid(workload: DecodeWorkload, tile: int, target_ctas: int) -> int:
    """Smallest chunk (tokens, a multiple of `tile`) with sum over outputs of ceil(context / chunk)
    <= target_ctas; the whole longest context (one chunk per output) when none fits."""
    return chunks_for_grids(workload, tile, (target_ctas,))[0]


def chunks_for_grids(workload: DecodeWorkload, tile: int, targets) -> list[int]:
    """chunk_for_grid of each of `targets` (CTAs); their binary searches share the chunk counts they probe
    (they start alike: the planner asks for several targets of one workload)."""
    tiles = -(-np.asarray(workload.contexts, np.int64) // tile)  # int64 [batch]
    per_seq = common.outputs(workload, tile).count // workload.batch  # kv_heads x q_blocks

    @functools.cache
    def chunks(k: int) -> int:  # CTAs with k tiles per chunk: ceil(ceil(ctx / tile) / k) = ceil(ctx / (k tile))
        return per_seq * int((-(-tiles // k)).sum())

    def first_fit(target_ctas: int) -> int:
        lo, hi = 1, int(tiles.max())
        if chunks(hi) > target_ctas:
            return hi
        while lo < hi:  # chunks(k) is non-increasing in k: find the first k that fits
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if chunks(mid) <= target_ctas else (mid + 1, hi)
        return lo
    return [first_fit(t) * tile for t in targets]


def resolve_chunk(workload: DecodeWorkload, gpu: GpuSpec, config: common.PlanConfig, tile: int) -> int:
    if config.chunk_tokens is None:
        target = config.grid or resident_capacity(gpu, common.resources(config))
        return chunk_for_grid(workload, tile, target)
    if config.chunk_tokens <= 0 or config.chunk_tokens % tile:
        raise InputError("chunk_tokens", f"must be a positive multiple of the KV tile ({tile} tokens), "
                                         f"got {config.chunk_tokens}")
    return config.chunk_tokens


def partition(workload: DecodeWorkload, gpu: GpuSpec, config: common.PlanConfig) -> Schedule:
    tile = common.kv_tile_tokens(config)
    outs = common.outputs(workload, tile)
    chunk = resolve_chunk(workload, gpu, config, tile)
    order, n_chunks, segs = lpt_chunks(workload, tile, outs, chunk, config.max_splits)
    split = n_chunks > 1
    family = config.family or "flashdecoding"
    reductions, launches = Reductions.empty(), ()
    if split.any():
        reductions = flashdecoding.split_reductions(outs, segs, order[split], n_chunks[split])
        launches = (flashdecoding.combine_launch(workload, outs, n_chunks[split], family + "-combine",
                                                 config.combine_resources, q_block=outs.q_block[order[split]]),)
    attention = common.attention_launch(workload, len(segs), config, family, segs, outs.rows,
                                        Reductions.empty(), tile)
    notes = {"chunk_tokens": chunk, "chunk_fixed": config.chunk_tokens is not None,
             "max_chunks": int(n_chunks.max(initial=0)), "split_outputs": int(split.sum())}
    # the chunk decides the work: a grid target only chose it
    return Schedule("balanced", workload, gpu.name, tile, (attention, *launches), reductions, 0, notes,
                    {"grid": None, "chunk_tokens": chunk, "max_splits": config.max_splits})


def output_chunk_tiles(tiles: np.ndarray, chunk_tiles: int, max_splits: int | None) -> np.ndarray:
    """Each output's chunk in tiles (int64, like `tiles`): the chunk, or ceil(tiles / max_splits) when
    that is larger (at most max_splits chunks)."""
    chunk = np.full(len(tiles), chunk_tiles, np.int64)
    return chunk if max_splits is None else np.maximum(chunk, -(-tiles // max_splits))


def lpt_chunks(workload: DecodeWorkload, tile: int, outs: common.Outputs, chunk: int, max_splits: int | None):
    """Every output cut into chunks of `chunk` tokens (at most max_splits), one CTA each in LPT order: outputs
    by descending context (stable), each one's chunks on consecutive CTAs, ascending; roles COMPLETE for an
    output of one chunk, else PEER. (order: int64 [n_outputs], the outputs in CTA order; n_chunks: int64
    [n_outputs] in that order; the CTA-sorted SegmentTable.)"""
    order = np.argsort(-outs.context, kind="stable")  # LPT: longest first, ties by output index
    chunk_tiles = output_chunk_tiles(outs.tiles[order], chunk // tile, max_splits)  # int64 [n_outputs]
    n_chunks = -(-outs.tiles[order] // chunk_tiles)
    out_idx, first, count, role = chunks(outs.tiles, order, n_chunks, chunk_tiles)
    segs = common.segment_table(workload, tile, outs, np.arange(len(out_idx)), out_idx, first, count, role)
    return order, n_chunks, segs


def chunks(tiles: np.ndarray, order: np.ndarray, n_chunks: np.ndarray, chunk_tiles: np.ndarray):
    """Every chunk of the outputs in `order` (tiles: int64 [n_outputs], each output's KV tiles; n_chunks,
    chunk_tiles: int64 in `order`'s order), each output's chunks ascending: (output, first tile, tiles,
    role: COMPLETE for an output of one chunk, else PEER), int64 [n_chunks total] each."""
    out_idx = order.repeat(n_chunks)  # (array methods: np.repeat's wrapper costs as much again)
    per_chunk_tiles = chunk_tiles.repeat(n_chunks)
    first = (np.arange(len(out_idx)) - offsets_from_counts(n_chunks)[:-1].repeat(n_chunks)) * per_chunk_tiles
    count = np.minimum(per_chunk_tiles, tiles[out_idx] - first)
    return out_idx, first, count, np.where(n_chunks.repeat(n_chunks) > 1, ROLE_PEER, ROLE_COMPLETE)
