"""FlashMLA's decode schedule (deepseek-ai/FlashMLA, get_mla_metadata / get_decoding_sched_meta),
replayed on our MLA kernel: a stream-K-style cut of the (sequence, KV block) stream over SM parts in
which every piece of a sequence costs FIXED_OVERHEAD_BLOCKS more blocks, so a part takes fewer
blocks the more sequences it touches; split outputs are merged by a combine launch.

Our reading of the rule (DOMAIN.md section 6), in 64-token blocks (FlashMLA's page and KV block):
- total = Σ over sequences of (blocks_i + 5); payload = ceil(total / parts) + 5 per part;
- parts take sequences in order: a part that can still pay for a sequence's remaining blocks + 5
  takes all of them, else it takes (what it has left - 5) of them, if that is > 0, and stops;
- parts = SMs // kv_heads // q-blocks (query rows / 64), and the grid is (parts, q-blocks, kv_heads),
  parts fastest: every q-block of a sequence runs the same cut, so CTA g·parts + p (g = the
  (kv_head, q-block) pair) reads the same tiles at the same time as its siblings (the second
  q-block's latent tiles are L2 hits: cost.l2_reread_bytes). config.grid (a multiple of the pairs)
  sets parts = grid / pairs.
- A sequence's output in one piece is ROLE_COMPLETE; the pieces of a split one are ROLE_PEER partials
  that a combine program merges (a Reductions row, host_cta = -1, peers in part order), as FlashMLA's
  combine kernel does. A CTA may run several segments (consecutive sequences); parts past the last
  piece stay empty.
Our KV tile (32 tokens by default) divides the 64-token block, so pieces are whole tiles; a larger
tile cuts in units of that tile, with the overhead scaled to the same tokens.
"""

from __future__ import annotations

import numpy as np

from attnsim.errors import InputError
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.partition import common, flashdecoding
from attnsim.simulator.schedule import (
    ROLE_COMPLETE, ROLE_PEER, Reductions, Schedule, frozen_array, offsets_from_counts,
)
from attnsim.simulator.workload import DecodeWorkload

BLOCK_TOKENS = 64  # FlashMLA's KV block (PAGE_BLOCK_SIZE): the unit of its cut
FIXED_OVERHEAD_BLOCKS = 5  # FIXED_OVERHEAD_NUM_BLOCKS: what FlashMLA charges per piece of a sequence


def default_grid(workload: DecodeWorkload, gpu: GpuSpec, pairs: int) -> int:
    """FlashMLA's parts (SMs // kv_heads // q-blocks, >= 1) x (kv_head, q-block) pairs."""
    return max(1, gpu.sm_count // pairs) * pairs


def greedy_cut(blocks: np.ndarray, parts: int, overhead: int) -> list[tuple[int, int, int, int]]:
    """FlashMLA's cut of sequences with `blocks` [batch] blocks over `parts` parts: pieces
    (part, sequence, first block, blocks), in part order, sequences ascending within a part."""
    payload = -(-int(blocks.sum() + overhead * len(blocks)) // parts) + overhead
    pieces, seq, done = [], 0, 0  # done: blocks of sequence `seq` already given to earlier parts
    for part in range(parts):
        left = payload
        while seq < len(blocks):
            remaining = int(blocks[seq]) - done
            if left >= remaining + overhead:  # the rest of the sequence fits: take it
                pieces.append((part, seq, done, remaining))
                left -= remaining + overhead
                seq, done = seq + 1, 0
                continue
            if left > overhead:  # part of it fits
                pieces.append((part, seq, done, left - overhead))
                done += left - overhead
            break
    return pieces


def resolve_parts(config: common.PlanConfig, default: int, pairs: int) -> int:
    if config.grid is None:
        return default // pairs
    if config.grid % pairs:
        raise InputError("grid", f"FlashMLA's grid is parts x {pairs} (kv-head, q-block) pairs: give a multiple "
                                 f"of {pairs}, got {config.grid}")
    return config.grid // pairs


def partition(workload: DecodeWorkload, gpu: GpuSpec, config: common.PlanConfig) -> Schedule:
    tile = common.kv_tile_tokens(config)
    outs = common.outputs(workload, tile)
    pairs = outs.count // workload.batch  # (kv_head, q-block) pairs of a sequence
    parts = resolve_parts(config, default_grid(workload, gpu, pairs), pairs)
    unit = max(BLOCK_TOKENS, tile)  # tokens per cut unit: a whole number of tiles
    overhead = max(1, -(-FIXED_OVERHEAD_BLOCKS * BLOCK_TOKENS // unit))
    contexts = np.asarray(workload.contexts, np.int64)
    part, seq, first_unit, n_units = np.array(greedy_cut(-(-contexts // unit), parts, overhead),
                                              np.int64).reshape(-1, 4).T
    pair = np.repeat(np.arange(pairs), len(part))  # every pair runs the same pieces: CTA pair x parts + part
    cta, out_idx = pair * parts + np.tile(part, pairs), np.tile(seq, pairs) * pairs + pair
    first = np.tile(first_unit, pairs) * (unit // tile)
    count = np.minimum(np.tile(n_units, pairs) * (unit // tile), outs.tiles[out_idx] - first)
    n_pieces = np.bincount(out_idx, minlength=outs.count)
    role = np.where(n_pieces[out_idx] > 1, ROLE_PEER, ROLE_COMPLETE)
    segs = common.segment_table(workload, tile, outs, cta, out_idx, first, count, role)
    family = config.family or "flashdecoding"
    reductions, launches = Reductions.empty(), ()
    split = np.flatnonzero(n_pieces > 1)
    if len(split):
        reductions = _part_order_reductions(outs, segs, out_idx, split, n_pieces[split])
        launches = (flashdecoding.combine_launch(workload, outs, n_pieces[split], family + "-combine",
                                                 config.combine_resources),)
    attention = common.attention_launch(workload, parts * pairs, config, family, segs,
                                        outs.rows, Reductions.empty(), tile)
    notes = {"parts": parts, "unit_tokens": unit, "overhead_units": overhead, "split_outputs": int(len(split)),
             "max_pieces": int(n_pieces.max(initial=0))}
    return Schedule("flashmla", workload, gpu.name, tile, (attention, *launches), reductions, 0, notes,
                    {"grid": parts * pairs})


def _part_order_reductions(outs: common.Outputs, segs, out_idx: np.ndarray, split: np.ndarray,
                           pieces: np.ndarray) -> Reductions:
    """One row per split output, ascending; its peers are its pieces' CTAs in part order (the
    launcher maps peer segments to slots by (CTA, output): plan_tables.combine_slots)."""
    peer = np.flatnonzero(segs.role == ROLE_PEER)
    peer = peer[np.lexsort((segs.cta[peer], out_idx[peer]))]  # by output, then part
    return Reductions(
        seq=frozen_array(outs.seq[split]), kv_head=frozen_array(outs.kv_head[split]),
        q_block=frozen_array(outs.q_block[split]), host_cta=frozen_array(np.full(len(split), -1)),
        peer_offsets=frozen_array(offsets_from_counts(pieces)), peer_cta=frozen_array(segs.cta[peer]),
        peer_done_bytes=frozen_array(segs.kv_bytes[peer], np.float64),
    )
