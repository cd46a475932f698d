"""L2 reuse between the q-blocks of one output: when an output's packed rows take more than one
64-row q-block (MLA: 128 query heads on one latent KV head; verify: q_len x group rows, e.g. 16
positions x 8 heads), each q-block is a CTA reading the same KV tiles. Where they read a tile at
about the same time, the second read is an L2 hit, not HBM traffic.

The plan says when that happens (cost.bandwidth_model takes it out of the HBM-limited traffic):
a segment of q-block b > 0 re-reads from L2 when the segment of q-block 0 of the same sequence and
kv-head covers exactly the same tiles, runs in the same wave of CTAs (launch order // resident
slots), and starts within `l2_bytes / CTAs streaming` bytes of it in its CTA's stream: in between,
the chip streams at most the L2's capacity, so the tiles are still there. FA2-style and split plans
put siblings on CTAs that start together at offset 0 (hits); FlashMLA's grid runs every q-block on
the same cut (hits); a stream-K cut places sibling ranges apart (counted as misses unless aligned).
GQA verify blocks count it too (issue 18: their serving terms are fitted with it, docs/serving.md).

A latency-bound stream is faster on those bytes too (l2_hit_speedup): sibling CTAs leapfrog over the
same tiles, each leading (an HBM miss) part of the time and trailing (an L2 hit) the rest, so each
CTA's, and each SM's, bytes in flight turn over faster. fa2's verify blocks of two 64-row q-blocks
streamed 1,640-1,660 µs over 131k tokens where one 64-row q-block alone took 1,941 (H200,
results/h200/bench_qlen.csv). The l2-siblings serving term (CostParams.l2_hit_latency_ratio) prices
it for verify blocks (terms.verify_siblings); decode keeps its calibrated rates.
"""

from __future__ import annotations

import numpy as np

from attnsim.simulator.hardware import CostParams, GpuSpec
from attnsim.simulator.occupancy import occupancy
from attnsim.simulator.schedule import Launch
from attnsim.simulator.workload import DecodeWorkload

_TILE_BITS = 21  # tiles of a sequence < 2^21 (limits.MAX_CONTEXT = 2^25 tokens over tiles of >= 16)
_OUTPUT_BITS = 21  # (sequence, kv_head) pairs < 2^21: a key fits 63 bits (MLA: one kv-head, <= 4,096 sequences)


def segment_offsets(launch: Launch) -> np.ndarray:
    """K+V bytes each segment's CTA streamed before it. float64 [n_segments] (rows are CTA-sorted)."""
    segs = launch.segments
    before = np.cumsum(segs.kv_bytes) - segs.kv_bytes  # exclusive, over the whole table
    first_row = segs.offsets(launch.grid)[segs.cta]  # each row's CTA's first row
    return before - before[first_row]


def _keys(segs, rows: np.ndarray, kv_heads: int) -> np.ndarray:
    """One int64 per (sequence, kv_head, first tile, tiles) of segment rows `rows`."""
    out = segs.seq[rows] * kv_heads + segs.kv_head[rows]
    return ((out << _TILE_BITS) | segs.first_tile[rows]) << _TILE_BITS | segs.n_tiles[rows]


def l2_reread_bytes(launch: Launch, kv_heads: int, slots: int, l2_bytes: float) -> float:
    """K+V bytes of an attention launch that q-blocks > 0 read from L2 (module docstring)."""
    segs = launch.segments
    if segs is None or not len(segs) or not (segs.q_block > 0).any() \
            or (int(segs.seq.max()) + 1) * kv_heads >= 1 << _OUTPUT_BITS:
        return 0.0
    first_block, later = np.flatnonzero(segs.q_block == 0), np.flatnonzero(segs.q_block > 0)
    keys = _keys(segs, first_block, kv_heads)
    order = np.argsort(keys, kind="stable")
    found = np.searchsorted(keys[order], _keys(segs, later, kv_heads))
    found = np.minimum(found, len(keys) - 1)
    sibling = first_block[order[found]]
    same = keys[order[found]] == _keys(segs, later, kv_heads)
    offsets = segment_offsets(launch)
    streaming = max(1, min(launch.grid, slots))
    close = np.abs(offsets[later] - offsets[sibling]) * streaming <= l2_bytes
    same_wave = segs.cta[later] // max(1, slots) == segs.cta[sibling] // max(1, slots)
    return float(segs.kv_bytes[later][same & close & same_wave].sum())


def l2_hit_bytes(gpu: GpuSpec, launch: Launch, workload: DecodeWorkload) -> float:
    """Bytes of an attention launch read from L2 rather than HBM: the sibling q-blocks of an output
    whose packed rows (MLA's heads, a verify block's q_len x group) take more than one q-block
    (simulator/reuse.py); 0 for every other workload."""
    if launch.name != "attention" or workload.q_blocks == 1:  # one q-block per output: no siblings
        return 0.0
    slots = gpu.sm_count * occupancy(gpu, launch.resources).blocks_per_sm
    return l2_reread_bytes(launch, workload.kv_heads, slots, gpu.l2_bytes)


def l2_hit_speedup(params: CostParams, hit_share: float) -> float:
    """How much faster a latency-bound stream (one CTA's, one SM's) turns its bytes in flight over when a
    share `hit_share` of them are L2 hits at l2_hit_latency_ratio of the HBM latency: sibling q-blocks
    leapfrog over the same tiles, each leading (missing) part of the time and trailing (hitting) the rest."""
    return 1.0 / ((1.0 - hit_share) + hit_share * params.l2_hit_latency_ratio)
