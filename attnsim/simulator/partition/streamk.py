"""Stream-K / LeanAttention: a persistent grid shares the flattened (output, KV-tile) iteration
space evenly; outputs whose tiles straddle CTAs are merged in-kernel by a host CTA.

- total = sum of tiles over outputs; grid g = resident capacity (or explicit, never more);
  share = ceil(total / g); the first `high_load` = total - (share - 1) * g chunks take `share`
  tiles, the rest `share - 1`.
- Program ids run in reverse chunk order (program p processes chunk g - 1 - p). The host of a
  straddling output is the chunk holding its first tile: there the output is the chunk's *last*
  segment, while its peers (later chunks = lower program ids) process it as their *first* segment.
  So peers publish early, the host waits only on lower program ids (which the CPU interpreter,
  running programs in id order, has already finished), and all CTAs are co-resident (g <= capacity).
"""

from __future__ import annotations

import numpy as np

from attnsim.errors import InputError
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.occupancy import resident_capacity
from attnsim.simulator.partition import common
from attnsim.simulator.schedule import (
    ROLE_COMPLETE, ROLE_HOST, ROLE_PEER, Reductions, Schedule, SegmentTable, frozen_array,
    offsets_from_counts,
)
from attnsim.simulator.workload import DecodeWorkload


def chunk_bounds(total: int, grid: int) -> np.ndarray:
    """Iteration boundaries of the grid's chunks: chunk c covers [b[c], b[c + 1]). int64 [grid + 1]."""
    share = -(-total // grid)
    high_load = total - (share - 1) * grid
    sizes = np.where(np.arange(grid) < high_load, share, share - 1)
    return offsets_from_counts(sizes)


def resolve_grid(workload, gpu, config, total_tiles: int) -> int:
    capacity = resident_capacity(gpu, common.resources(workload, config))
    if capacity == 0:
        raise InputError("grid", "the kernel's CTA cannot launch on this GPU (resources too large)")
    if config.grid is not None:
        if config.grid > capacity:
            raise InputError("grid", f"{config.grid} exceeds the resident capacity {capacity} "
                                     f"({gpu.sm_count} SMs x {capacity // gpu.sm_count} CTAs/SM); "
                                     "stream-K CTAs must be co-resident")
        return min(config.grid, total_tiles)
    return min(capacity, total_tiles)


def partition(workload: DecodeWorkload, gpu: GpuSpec, config: common.PlanConfig) -> Schedule:
    tile = common.kv_tile_tokens(workload, config)
    outs = common.outputs(workload, tile)
    out_start = offsets_from_counts(outs.tiles)  # iteration where each output begins
    total = int(out_start[-1])
    grid = resolve_grid(workload, gpu, config, total)
    bounds = chunk_bounds(total, grid)
    chunk, out_idx, lo, hi = _intersect(bounds, out_start)
    whole = (lo == out_start[out_idx]) & (hi == out_start[out_idx + 1])
    has_first = lo == out_start[out_idx]
    role = np.where(whole, ROLE_COMPLETE, np.where(has_first, ROLE_HOST, ROLE_PEER))
    segs = common.segment_table(workload, tile, outs, grid - 1 - chunk, out_idx, lo - out_start[out_idx],
                                hi - lo, role)
    reductions = _host_reductions(segs, workload.kv_heads, outs.q_blocks)
    launch = common.attention_launch(workload, grid, common.resources(workload, config),
                                     config.family or "streamk", segs, outs.rows, reductions)
    share = int(bounds[1] - bounds[0]) if grid else 0
    notes = {"total_tiles": total, "share": share, "high_load": int(total - (share - 1) * grid)}
    return Schedule("streamk", workload, gpu.name, tile, (launch,), reductions, 0, notes)


def _intersect(bounds: np.ndarray, out_start: np.ndarray):
    """Segments = non-empty intersections of chunk ranges with output ranges, in chunk order.

    Returns (chunk, output, lo, hi) arrays [n_segments] with iteration range [lo, hi).
    """
    first_out = np.searchsorted(out_start, bounds[:-1], side="right") - 1
    last_out = np.searchsorted(out_start, bounds[1:] - 1, side="right") - 1
    per_chunk = last_out - first_out + 1
    chunk = np.repeat(np.arange(len(per_chunk)), per_chunk)
    rank = np.arange(len(chunk)) - np.repeat(np.cumsum(per_chunk) - per_chunk, per_chunk)
    out_idx = first_out[chunk] + rank
    lo = np.maximum(bounds[chunk], out_start[out_idx])
    hi = np.minimum(bounds[chunk + 1], out_start[out_idx + 1])
    return chunk, out_idx, lo, hi


def _host_reductions(segs: SegmentTable, kv_heads: int, q_blocks: int) -> Reductions:
    """One row per straddling output: the host program and its peers (lower program ids)."""
    done = common.peer_done_bytes(segs)
    # Map each segment row (sorted by program) back to its output via (seq, kv_head, q_block).
    out_of_row = (segs.seq * kv_heads + segs.kv_head) * q_blocks + segs.q_block
    hosts = np.flatnonzero(segs.role == ROLE_HOST)
    peers = np.flatnonzero(segs.role == ROLE_PEER)
    if len(hosts) == 0:
        return Reductions.empty()
    order = np.argsort(out_of_row[peers], kind="stable")
    peers = peers[order]  # grouped by output; within an output, ascending program id
    host_out = out_of_row[hosts]
    host_order = np.argsort(host_out)
    hosts, host_out = hosts[host_order], host_out[host_order]
    counts = np.searchsorted(out_of_row[peers], host_out, side="right") - np.searchsorted(
        out_of_row[peers], host_out, side="left")
    return Reductions(
        seq=frozen_array(segs.seq[hosts]), kv_head=frozen_array(segs.kv_head[hosts]),
        q_block=frozen_array(segs.q_block[hosts]), host_cta=frozen_array(segs.cta[hosts]),
        peer_offsets=frozen_array(offsets_from_counts(counts)), peer_cta=frozen_array(segs.cta[peers]),
        peer_done_bytes=frozen_array(done[peers], np.float64),
    )
