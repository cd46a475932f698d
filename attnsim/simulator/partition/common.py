"""Pieces every partitioner shares: the output/tile geometry, default kernel shapes, and the
assembly of per-CTA work arrays from a segment table."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attnsim.simulator.occupancy import CtaResources
from attnsim.simulator.schedule import (
    ROLE_PEER, Launch, Reductions, SegmentTable, frozen_array,
)
from attnsim.simulator.workload import DecodeWorkload

Q_BLOCK_ROWS = 64  # FA2's kBlockM: query rows (q_len x group, packed) per CTA
PARTIAL_BYTES_PER_ROW_ELEM = 4  # partial O and LSE are fp32


@dataclass(frozen=True)
class PlanConfig:
    """Knobs a user may set; None means "the strategy's default"."""

    kv_tile_tokens: int | None = None
    splits: int | None = None  # FlashDecoding: override num_splits_heuristic
    grid: int | None = None  # stream-K: persistent grid size (default: resident capacity)
    num_warps: int = 4
    resources: CtaResources | None = None  # compiled kernel's resources, when known
    family: str | None = None  # cost-parameter family (default: the strategy name)


def fa2_block_n(head_dim: int) -> int:
    """FA2's KV block (kBlockN) for its split-KV kernel: 256 for d <= 64, 128 for d <= 128, else 64."""
    return 256 if head_dim <= 64 else (128 if head_dim <= 128 else 64)


def kv_tile_tokens(workload: DecodeWorkload, config: PlanConfig) -> int:
    return config.kv_tile_tokens or fa2_block_n(workload.head_dim)


def default_resources(workload: DecodeWorkload, tile: int, num_warps: int) -> CtaResources:
    """Estimate until a compiled kernel's figures are known: one K+V tile of shared memory."""
    smem = 2 * tile * workload.head_dim * workload.dtype_bytes
    return CtaResources(threads=32 * num_warps, regs_per_thread=128, smem_bytes=smem)


def resources(workload: DecodeWorkload, config: PlanConfig) -> CtaResources:
    return config.resources or default_resources(workload, kv_tile_tokens(workload, config), config.num_warps)


@dataclass(frozen=True, eq=False)
class Outputs:
    """The outputs (sequence, kv_head, q_block), seq-major, and their tile counts. Arrays [n_outputs]."""

    seq: np.ndarray
    kv_head: np.ndarray
    q_block: np.ndarray
    tiles: np.ndarray  # int64: ceil(context / tile)
    context: np.ndarray  # int64: tokens
    q_blocks: int
    rows: int  # query rows per output CTA tile: q_len x group (capped at Q_BLOCK_ROWS per block)

    @property
    def count(self) -> int:
        return len(self.seq)


def outputs(workload: DecodeWorkload, tile: int) -> Outputs:
    rows_total = workload.q_len * workload.group
    q_blocks = -(-rows_total // Q_BLOCK_ROWS)
    per_seq = workload.kv_heads * q_blocks
    seq = np.repeat(np.arange(workload.batch), per_seq)
    kv_head = np.tile(np.repeat(np.arange(workload.kv_heads), q_blocks), workload.batch)
    q_block = np.tile(np.arange(q_blocks), workload.batch * workload.kv_heads)
    context = np.asarray(workload.contexts, dtype=np.int64)[seq]
    return Outputs(seq, kv_head, q_block, -(-context // tile), context, q_blocks, min(rows_total, Q_BLOCK_ROWS))


def segment_kv_bytes(workload: DecodeWorkload, tile: int, context, first, n) -> np.ndarray:
    """K+V bytes of tiles [first, first + n) of outputs with `context` tokens (last tile may be short)."""
    tokens = np.minimum((first + n) * tile, context) - first * tile
    return 2.0 * tokens * workload.head_dim * workload.dtype_bytes


def segment_table(workload, tile, outs: Outputs, cta, out_idx, first, n, role) -> SegmentTable:
    """A SegmentTable for rows (cta, output index, first tile, tile count, role), sorted by CTA."""
    cta = np.asarray(cta)
    if len(cta) > 1 and (cta[1:] < cta[:-1]).any():  # FA2 / FlashDecoding rows come sorted already
        order = np.argsort(cta, kind="stable")
        cta, out_idx, first, n, role = (np.asarray(a)[order] for a in (cta, out_idx, first, n, role))
    kv_bytes = segment_kv_bytes(workload, tile, outs.context[out_idx], first, n)
    return SegmentTable(
        cta=frozen_array(cta), seq=frozen_array(outs.seq[out_idx]), kv_head=frozen_array(outs.kv_head[out_idx]),
        q_block=frozen_array(outs.q_block[out_idx]),
        first_tile=frozen_array(first), n_tiles=frozen_array(n), role=frozen_array(role),
        kv_bytes=frozen_array(kv_bytes, np.float64),
    )


def attention_launch(workload, grid: int, res: CtaResources, family: str, segs: SegmentTable,
                     rows: int, reductions: Reductions) -> Launch:
    """Per-CTA bytes/tiles/segments of an attention launch from its segment table."""
    d, dtb = workload.head_dim, workload.dtype_bytes
    q_bytes = rows * d * dtb  # query tile read per segment
    o_bytes = rows * d * dtb  # final output written by COMPLETE and HOST segments
    partial_bytes = rows * (d + 1) * PARTIAL_BYTES_PER_ROW_ELEM  # fp32 O + LSE
    is_peer = segs.role == ROLE_PEER
    write = np.where(is_peer, partial_bytes, o_bytes).astype(np.float64)
    read = segs.kv_bytes + q_bytes
    if len(reductions) and (reductions.host_cta >= 0).any():  # hosts read their peers' partials
        n_peers = np.diff(reductions.peer_offsets)
        host_read = np.bincount(reductions.host_cta[reductions.host_cta >= 0],
                                weights=n_peers[reductions.host_cta >= 0] * partial_bytes, minlength=grid)
    else:
        host_read = np.zeros(grid)
    return Launch(
        name="attention", family=family, grid=grid, resources=res,
        cta_read_bytes=frozen_array(np.bincount(segs.cta, weights=read, minlength=grid) + host_read, np.float64),
        cta_write_bytes=frozen_array(np.bincount(segs.cta, weights=write, minlength=grid), np.float64),
        cta_tiles=frozen_array(np.bincount(segs.cta, weights=segs.n_tiles, minlength=grid)),
        cta_segments=frozen_array(np.bincount(segs.cta, minlength=grid)),
        segments=segs,
    )


def peer_done_bytes(segs: SegmentTable) -> np.ndarray:
    """For every segment: bytes its CTA has streamed when the segment ends (cumulative within CTA)."""
    cum = np.cumsum(segs.kv_bytes)
    first_of_cta = np.ones(len(cum), dtype=bool)
    first_of_cta[1:] = segs.cta[1:] != segs.cta[:-1]
    bytes_before = cum - segs.kv_bytes  # streamed before each segment, counting earlier CTAs too
    return cum - np.maximum.accumulate(np.where(first_of_cta, bytes_before, 0.0))
