"""FlashDecoding: FA2's split-KV path. Each output's KV blocks are cut into `splits` contiguous
ranges, one CTA each, writing a partial (O, LSE); a second launch combines them.

The split count is FlashAttention-2's `num_splits_heuristic` (flash_api.cpp), reproduced exactly:
it assumes two 128-thread CTAs per SM (sms = 2 x SM count), sizes blocks with FA2's kBlockN, and
picks the smallest eligible split count whose wave efficiency is >= 0.85 x the best.
"""

from __future__ import annotations

import functools

import numpy as np

from attnsim.simulator import mla
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.occupancy import CtaResources
from attnsim.simulator.partition import common
from attnsim.simulator.schedule import (
    ROLE_COMPLETE, ROLE_PEER, Launch, Reductions, Schedule, frozen_array, offsets_from_counts,
)
from attnsim.simulator.workload import Q_BLOCK_ROWS, DecodeWorkload, query_tile_rows

MAX_SPLITS = 128


@functools.lru_cache(maxsize=4096)
def num_splits_heuristic(bhm: int, num_sms: int, n_blocks: int, max_splits: int = MAX_SPLITS) -> int:
    """FA2's split count for `bhm` = batch x heads x m-blocks CTAs on `num_sms` CTA slots."""
    if bhm >= 0.8 * num_sms:
        return 1
    splits = np.arange(1, min(max_splits, num_sms, n_blocks) + 1)
    blocks = -(-n_blocks // splits)
    eligible = np.ones(len(splits), dtype=bool)  # a split count that changes the blocks per split
    eligible[1:] = blocks[1:] != blocks[:-1]
    # FA2 computes waves and efficiency in float32 (then compares against 0.85 x best in double):
    # exact ties at the threshold go the way float32 rounding sends them.
    waves = (bhm * splits).astype(np.float32) / np.float32(num_sms)
    efficiency = np.where(eligible, waves / np.ceil(waves), np.float32(0.0)).astype(np.float64)
    return int(splits[eligible & (efficiency >= 0.85 * efficiency.max())][0])


def heuristic_splits(workload: DecodeWorkload, gpu: GpuSpec, block_n: int) -> int:
    """num_splits_heuristic with FA2's arguments: GQA packs the q-head group into the m dimension."""
    bhm = workload.output_count  # batch x kv_heads x m blocks
    n_blocks = -(-workload.max_context // block_n)
    return num_splits_heuristic(bhm, 2 * gpu.sm_count, n_blocks)


def split_ranges(tiles: np.ndarray, splits: int) -> tuple[np.ndarray, np.ndarray]:
    """Split s of an output with n tiles covers [s * nbps, min((s + 1) * nbps, n)), nbps = ceil(n / splits).

    Returns (first, count) arrays [n_outputs, splits]; count is 0 for empty trailing splits.
    """
    per_split = -(-tiles // splits)
    first = per_split[:, None] * np.arange(splits)[None, :]
    count = np.maximum(np.minimum(first + per_split[:, None], tiles[:, None]) - first, 0)
    return first, count


# Query rows one CTA of our combine kernel merges (flash_decoding.combine_kernel): a q-block of more rows
# (MQA decode, verify: 32-64) is merged by ceil(rows / COMBINE_ROWS) CTAs, one row block each, as FA2's
# combine splits rows over CTAs (kBlockM 4-16) rather than merging 64 rows' partials one CTA step by step.
COMBINE_ROWS = 16


def combine_pieces(workload: DecodeWorkload, outs: common.Outputs) -> int:
    """CTAs per combined output of our combine kernel: MLA's column pieces (mla.combine_pieces), else
    row blocks of COMBINE_ROWS query rows."""
    if workload.is_mla:
        return mla.combine_pieces(workload.v_dim)
    return -(-outs.rows // COMBINE_ROWS)


def combine_launch(workload: DecodeWorkload, outs: common.Outputs, splits_used: np.ndarray, family: str,
                   res: CtaResources, rows: int | None = None, per_step: int | None = None,
                   q_block: np.ndarray | None = None) -> Launch:
    """The combine launch: read each output's partials (fp32 O + LSE), write O.

    splits_used: int64 [n_combined], the partials of each output the launch merges (every output here;
    only the split ones in balanced split-KV); q_block: their q-blocks (default 0), whose valid rows a
    row block reads. rows: query rows per combine CTA (default: our combine kernel's, combine_pieces CTAs
    per output, piece·outputs + output as the kernel's 2-D grid linearises: MLA column pieces, or row
    blocks of COMBINE_ROWS, the last of a q-block holding what is left and a block past its rows nothing;
    cuDNN's reduction takes one q-head per CTA). per_step: partials the kernel loads per dependent step
    (default: our combine kernel's, combine_block; 1 for a library's reduction, whose steps are unknown)."""
    splits_used = np.asarray(splits_used, np.int64)
    per_step = combine_block(workload, res.warps) if per_step is None else per_step
    if rows is not None or workload.is_mla:  # one CTA per output, or MLA's column pieces of every row
        pieces = 1 if rows is not None else combine_pieces(workload, outs)
        cta_rows = np.full(len(splits_used) * pieces, float(outs.rows if rows is None else rows))
        columns = pieces
    else:  # row blocks of the q-block's valid rows
        pieces, columns = combine_pieces(workload, outs), 1
        q_block = np.zeros(len(splits_used), np.int64) if q_block is None else np.asarray(q_block, np.int64)
        valid = np.minimum(workload.q_len * workload.group - q_block * Q_BLOCK_ROWS, outs.rows)  # [n_combined]
        left = valid[None, :] - COMBINE_ROWS * np.arange(pieces)[:, None]  # rows from each block on, int64
        cta_rows = np.minimum(np.maximum(left, 0), COMBINE_ROWS).ravel()  # np.clip's ints, without its wrapper
    merged = np.tile(splits_used, pieces)
    partial = common.partial_bytes(workload, 1) / columns  # one row of one partial
    return Launch(
        name="combine", family=common.kernel_family(workload, family), grid=len(merged), resources=res,
        cta_read_bytes=frozen_array(merged * cta_rows * partial, np.float64),
        cta_write_bytes=frozen_array(cta_rows * workload.v_dim * workload.dtype_bytes / columns),
        # a combine CTA's "segments" are its dependent load steps: per_step partials each (none for an empty block)
        cta_tiles=frozen_array(np.zeros(len(merged))),
        cta_segments=frozen_array(np.where(cta_rows > 0, -(-merged // per_step), 0)),
    )


def combine_block(workload: DecodeWorkload, warps: int) -> int:
    """Partials our combine kernel merges per dependent load step at `warps` warps: flash_decoding.combine_kernel
    loads BLOCK_P partials' o tiles at once (BLOCK_P of its CTA's rows, min(query tile, COMBINE_ROWS), and
    width, which the launcher passes); the MLA combine (mla_decode.mla_combine_kernel) one partial's o tile a
    step (mla_tiles.add_partials: its BLOCK_P groups the LSE rows only)."""
    if workload.is_mla:
        return 1
    return common.merge_block(min(query_tile_rows(workload), COMBINE_ROWS), workload.partial_dim, warps)


def split_rows(tiles: np.ndarray, splits: int):
    """Segment rows of the non-empty splits, CTA-sorted: (cta, output or None = identity, first, count)
    arrays [n_segments], and the splits each output uses, int64 [n_outputs]."""
    n_out = len(tiles)
    if splits == 1:  # one CTA per output, the whole context
        return np.arange(n_out), None, np.zeros(n_out, np.int64), tiles, np.ones(n_out, np.int64)
    first, count = split_ranges(tiles, splits)
    keep = count > 0
    if keep.all():
        return (np.arange(n_out * splits), np.arange(n_out).repeat(splits), first.reshape(-1),
                count.reshape(-1), np.full(n_out, splits))
    cta = np.arange(n_out * splits).reshape(n_out, splits)[keep]  # CTA = output x splits + split
    return cta, cta // splits, first[keep], count[keep], keep.sum(axis=1)


def partition(workload: DecodeWorkload, gpu: GpuSpec, config: common.PlanConfig) -> Schedule:
    tile = common.kv_tile_tokens(config)
    heuristic = heuristic_splits(workload, gpu, tile)
    splits = config.splits or heuristic
    family = config.family or "flashdecoding"
    outs = common.outputs(workload, tile)
    grid = outs.count * splits
    cta, out_idx, first, count, n_used = split_rows(outs.tiles, splits)
    segs = common.segment_table(workload, tile, outs, cta, out_idx, first, count,
                                np.full(len(cta), ROLE_PEER if splits > 1 else ROLE_COMPLETE))
    reductions = combine_reductions(outs, segs, n_used) if splits > 1 else Reductions.empty()
    attention = common.attention_launch(workload, grid, config, family, segs, outs.rows,
                                        Reductions.empty(), tile)
    launches = (attention,)
    if splits > 1:
        launches += (combine_launch(workload, outs, n_used, family + "-combine", config.combine_resources,
                                    q_block=outs.q_block),)
    notes = {"heuristic_splits": heuristic, "splits_override": config.splits}
    return Schedule("flashdecoding", workload, gpu.name, tile, launches, reductions, splits, notes, {"splits": splits})


def combine_reductions(outs: common.Outputs, segs, n_used: np.ndarray) -> Reductions:
    """Every output merges its non-empty splits in the combine launch (host_cta = -1)."""
    return Reductions(
        seq=frozen_array(outs.seq), kv_head=frozen_array(outs.kv_head), q_block=frozen_array(outs.q_block),
        host_cta=frozen_array(np.full(outs.count, -1)),
        peer_offsets=frozen_array(offsets_from_counts(n_used)),
        peer_cta=frozen_array(segs.cta),  # segments are sorted by CTA = output-major, split-minor
        peer_done_bytes=frozen_array(segs.kv_bytes, np.float64),
    )


def split_reductions(outs: common.Outputs, segs, split_outs: np.ndarray, pieces: np.ndarray) -> Reductions:
    """Combine rows of the outputs `split_outs` (in CTA order), each cut into `pieces` partials whose
    CTAs ascend: the peer segments in CTA order are the rows' peers (balanced, flashmla)."""
    is_peer = segs.role == ROLE_PEER
    return Reductions(
        seq=frozen_array(outs.seq[split_outs]), kv_head=frozen_array(outs.kv_head[split_outs]),
        q_block=frozen_array(outs.q_block[split_outs]), host_cta=frozen_array(np.full(len(split_outs), -1)),
        peer_offsets=frozen_array(offsets_from_counts(pieces)),
        peer_cta=frozen_array(segs.cta[is_peer]), peer_done_bytes=frozen_array(segs.kv_bytes[is_peer], np.float64),
    )
