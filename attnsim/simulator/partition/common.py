"""Pieces every partitioner shares: the output/tile geometry, default kernel shapes, and the
assembly of per-CTA work arrays from a segment table."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from attnsim.simulator import mla
from attnsim.simulator.occupancy import CtaResources
from attnsim.simulator.schedule import (
    ROLE_PEER, Launch, Reductions, SegmentTable, frozen_array,
)
from attnsim.simulator.workload import Q_BLOCK_ROWS, DecodeWorkload, query_tile_rows

PARTIAL_BYTES_PER_ROW_ELEM = 4  # partial O and LSE are fp32
COMBINE_SUFFIX = "-combine"  # a split plan's combine launch bills its attention family + this


@dataclass(frozen=True)
class PlanConfig:
    """A plan's knobs. As user options, None means "the strategy's default"; `attnsim.plans`
    fills every field a strategy uses (kernel shape and compiled resources included)."""

    kv_tile_tokens: int | None = None
    splits: int | None = None  # FlashDecoding: override num_splits_heuristic
    grid: int | None = None  # persistent plans: grid size (default: resident capacity)
    num_warps: int | None = None
    num_stages: int | None = None  # the kernel's software-pipelining depth (not used by the model)
    resources: CtaResources | None = None  # attention CTA: compiled kernel's resources, when known
    combine_resources: CtaResources | None = None  # the combine launch's CTA, when there is one
    family: str | None = None  # cost-parameter family (default: the strategy's own)
    dp_outputs: int | None = None  # hybrid: outputs run whole before the stream-K part (a multiple of the grid)
    chunk_tokens: int | None = None  # balanced split-KV: fixed chunk (batch-invariant), a multiple of the KV tile
    max_splits: int | None = None  # balanced: at most this many chunks per sequence (larger chunks beyond)
    batch_invariant: int | None = None  # auto: 1 = only plans whose splits depend on each sequence alone
    tune: int | None = None  # auto: plans the device times before running the fastest (bench/tune.py); model: unused
    epilogue: str | None = None  # stream-K: "tree" (default) or "last" (options.OPTION_CHOICES)
    # Warps at the kernel's default K/V bytes in flight that stream as fast as this CTA (plans.plan fills it
    # for our kernels: a CTA's latency-bound rate follows its bytes in flight, not its warps; cost.cta_stream_gbps)
    stream_warps: float | None = None

    def options(self) -> dict:
        """The fields that are set, by name (for messages and provenance)."""
        return {k: v for k, v in self.__dict__.items() if v is not None}


def fa2_block_n(head_dim: int) -> int:
    """FA2's KV block (kBlockN) for its split-KV kernel: 256 for d <= 64, 128 for d <= 128, else 64."""
    return 256 if head_dim <= 64 else (128 if head_dim <= 128 else 64)


def kv_tile_tokens(config: PlanConfig) -> int:
    """The plan's KV tile (tokens). Partitions plan resolved configs: attnsim.plans fills the tile
    and the resources from the one resources resolver (a baseline's plan sets its library's own)."""
    if config.kv_tile_tokens is None:
        raise ValueError("a partition needs a resolved PlanConfig (kv_tile_tokens unset): plan through attnsim.plans")
    return config.kv_tile_tokens


def resources(config: PlanConfig) -> CtaResources:
    """The attention CTA's resources of a resolved PlanConfig (see kv_tile_tokens)."""
    if config.resources is None:
        raise ValueError("a partition needs a resolved PlanConfig (resources unset): plan through attnsim.plans")
    return config.resources


@dataclass(frozen=True, eq=False)
class Outputs:
    """The outputs (sequence, kv_head, q_block), seq-major, and their tile counts. Arrays [n_outputs]."""

    seq: np.ndarray
    kv_head: np.ndarray
    q_block: np.ndarray
    tiles: np.ndarray  # int64: ceil(context / tile)
    context: np.ndarray  # int64: tokens
    q_blocks: int
    rows: int  # query rows per output CTA tile: q_len x group (capped at the rows per q-block)

    @property
    def count(self) -> int:
        return len(self.seq)


@functools.lru_cache(maxsize=32)
def outputs(workload: DecodeWorkload, tile: int, q_block_rows: int = Q_BLOCK_ROWS) -> Outputs:
    """The outputs of a workload, its packed query rows cut into q-blocks of `q_block_rows` (FA2's
    64 unless a kernel packs fewer, e.g. cuDNN's 16); cached (read-only arrays), as every strategy
    planned for one workload asks for the same ones."""
    rows_total = workload.q_len * workload.group
    q_blocks = -(-rows_total // q_block_rows)
    per_seq = workload.kv_heads * q_blocks
    shape = (workload.batch, workload.kv_heads, q_blocks)  # seq-major: output = (seq, kv_head, q_block)
    kv_head, q_block = np.empty(shape, np.int64), np.empty(shape, np.int64)
    kv_head[...] = np.arange(workload.kv_heads)[:, None]
    q_block[...] = np.arange(q_blocks)
    seq = np.repeat(np.arange(workload.batch), per_seq)
    context = np.repeat(np.array(workload.contexts, dtype=np.int64), per_seq)
    return Outputs(frozen_array(seq), frozen_array(kv_head.reshape(-1)), frozen_array(q_block.reshape(-1)),
                   frozen_array(-(-context // tile)), frozen_array(context), q_blocks, min(rows_total, q_block_rows))


def segment_kv_bytes(workload: DecodeWorkload, tile: int, context, first, n) -> np.ndarray:
    """K+V bytes of tiles [first, first + n) of outputs with `context` tokens (last tile may be short)."""
    tokens = np.minimum((first + n) * tile, context) - first * tile
    return tokens * float(workload.kv_token_bytes)  # integers: exact in float64


BLOCK_TABLE_ENTRY_BYTES = 4  # int32 page index


def index_bytes(workload: DecodeWorkload, tile: int, n_tiles) -> np.ndarray:
    """Block-table bytes a paged segment of n_tiles tiles loads: one int32 per page it touches
    (a tile holds tile / page_size whole pages, or lies inside one page). 0 when contiguous."""
    if not workload.paged:
        return np.zeros(np.shape(n_tiles))
    pages_per_tile = max(1, tile // workload.page_size)
    return np.asarray(n_tiles, np.float64) * (pages_per_tile * BLOCK_TABLE_ENTRY_BYTES)


def segment_table(workload, tile, outs: Outputs, cta, out_idx, first, n, role) -> SegmentTable:
    """A SegmentTable for rows (cta, output index, first tile, tile count, role), already sorted by
    CTA (every partitioner emits them in that order). out_idx None: one row per output, in order."""
    pick = (lambda a: a) if out_idx is None else (lambda a: a[out_idx])
    kv_bytes = segment_kv_bytes(workload, tile, pick(outs.context), first, n)
    return SegmentTable(
        cta=frozen_array(cta), seq=frozen_array(pick(outs.seq)), kv_head=frozen_array(pick(outs.kv_head)),
        q_block=frozen_array(pick(outs.q_block)),
        first_tile=frozen_array(first), n_tiles=frozen_array(n), role=frozen_array(role),
        kv_bytes=frozen_array(kv_bytes, np.float64),
    )


def kernel_family(workload: DecodeWorkload, family: str) -> str:
    """The cost family a launch bills: the partitioning's, or its MLA kernel's ('streamk' ->
    'streamk-mla', 'flashdecoding-combine' -> 'flashdecoding-mla-combine'; at 64-row q-blocks
    'streamk-mla64', mla.family_suffix; GpuSpec.cost_for falls back while a profile has no MLA fit)."""
    if not workload.is_mla:
        return family
    base, combine, _ = family.partition(COMBINE_SUFFIX)
    return base + mla.family_suffix(query_tile_rows(workload)) + (COMBINE_SUFFIX if combine else "")


def partial_bytes(workload: DecodeWorkload, rows: int) -> int:
    """Bytes of one fp32 partial (normalised O of partial_dim columns + LSE) of `rows` query rows."""
    return rows * (workload.partial_dim + 1) * PARTIAL_BYTES_PER_ROW_ELEM


MERGE_BLOCK_MAX = 4  # the most partials any of our merges loads per step (merge_block; MLA's mla.MERGE_FANIN - 1)


def merge_block(block_m: int, head_dim: int, num_warps: int) -> int:
    """Partials the stream-K kernel (kernels/lean_decode.py) merges per step (BLOCK_P: 1, 2 or 4): their
    fp32 tiles are held in registers at once, <= 64 elements per thread."""
    per_partial = block_m * head_dim / (32 * num_warps)
    return min(MERGE_BLOCK_MAX, 2 ** int(math.log2(max(1.0, 64 / per_partial))))


def critical_partials(workload: DecodeWorkload, n_peers: np.ndarray, rows: int, res: CtaResources) -> np.ndarray:
    """Partials a host CTA reads on its output's critical path. The in-kernel merges are trees (stream-K:
    peers that hold only this output pre-merge BLOCK_P lower-id peers each before publishing; MLA:
    mla.MERGE_FANIN), so the host reads (fan-in - 1) per level, the rest are read by peers in parallel."""
    if workload.is_mla:
        return mla.critical_partials(n_peers)
    fanin = merge_block(rows, workload.partial_dim, res.warps) + 1
    levels = np.ceil(np.log(np.asarray(n_peers, np.float64) + 1.0) / np.log(fanin) - 1e-9)
    return np.minimum(n_peers, (fanin - 1) * levels)


def segment_side_bytes_max(workload: DecodeWorkload, rows: int) -> float:
    """At most what a segment of `rows` query rows moves besides its K+V and block-table bytes in
    attention_launch: its q tile, its write (o or an fp32 partial) and its host's read of it as a partial."""
    partial, dtb = partial_bytes(workload, rows), workload.dtype_bytes
    return float(rows * workload.head_dim * dtb + max(partial, rows * workload.v_dim * dtb) + partial)


def attention_launch(workload, grid: int, config: PlanConfig, family: str, segs: SegmentTable,
                     rows: int, reductions: Reductions, tile: int = 0) -> Launch:
    """Per-CTA bytes/tiles/segments of an attention launch from its segment table. `config`: the resolved
    plan config (its CTA's resources and stream_warps); `tile`: KV tokens per tile, for the block-table
    loads of a paged cache."""
    res = resources(config)
    dtb = workload.dtype_bytes
    q_bytes = rows * workload.head_dim * dtb  # query tile read per segment
    o_bytes = rows * workload.v_dim * dtb  # final output written by COMPLETE and HOST segments
    partial = partial_bytes(workload, rows)  # fp32 O + LSE
    write = np.where(segs.role == ROLE_PEER, float(partial), float(o_bytes))  # float64 [n_segments]
    read = segs.kv_bytes + q_bytes
    if tile and workload.paged:  # block-table loads (index_bytes is 0 for a contiguous cache)
        read = read + index_bytes(workload, tile, segs.n_tiles)
    n_segments = np.bincount(segs.cta, minlength=grid)  # int64 [grid]
    if len(segs) == grid and n_segments.max(initial=0) == 1:  # one segment per CTA: rows are CTAs
        read_bytes, write_bytes, tiles = read, write, segs.n_tiles
    else:
        read_bytes = np.bincount(segs.cta, weights=read, minlength=grid)
        write_bytes = np.bincount(segs.cta, weights=write, minlength=grid)
        tiles = np.bincount(segs.cta, weights=segs.n_tiles, minlength=grid)
    hosts = reductions.host_cta >= 0
    if len(reductions) and hosts.any():  # hosts read their peers' partials
        n_peers = reductions.peer_offsets[1:] - reductions.peer_offsets[:-1]
        n_peers = critical_partials(workload, n_peers, rows, res)  # the merge tree's chain (the rest in parallel)
        read_bytes = read_bytes + np.bincount(reductions.host_cta[hosts], weights=n_peers[hosts] * partial,
                                              minlength=grid)
    return Launch(
        name="attention", family=kernel_family(workload, family), grid=grid, resources=res,
        cta_read_bytes=frozen_array(read_bytes, np.float64), cta_write_bytes=frozen_array(write_bytes, np.float64),
        cta_tiles=frozen_array(tiles), cta_segments=frozen_array(n_segments), segments=segs,
        stream_warps=config.stream_warps or 0.0,
    )
