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
- epilogue=last (streamk_last.py): the same segments, but every contributor of a straddled output
  publishes and the last to arrive merges; nobody waits, so an explicit grid may exceed the resident
  capacity (more than one wave).
"""

from __future__ import annotations

import numpy as np

from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.occupancy import check_coresident, resident_capacity
from attnsim.simulator.partition.options import EPILOGUE_LAST
from attnsim.simulator.partition import common, streamk_chunks, streamk_last
from attnsim.simulator.schedule import (
    ROLE_COMPLETE, ROLE_HOST, ROLE_PEER, Reductions, Schedule, SegmentTable, frozen_array,
    offsets_from_counts,
)
from attnsim.simulator.workload import DecodeWorkload


def chunk_bounds(total: int, grid: int) -> np.ndarray:
    """Iteration boundaries of the grid's chunks: chunk c covers [b[c], b[c + 1]). int64 [grid + 1]."""
    share = -(-total // grid)
    high_load = total - (share - 1) * grid
    chunk = np.arange(grid + 1)
    return chunk * (share - 1) + np.minimum(chunk, high_load)  # the first high_load chunks take one tile more


def resolve_grid(workload, gpu, config, total_tiles: int, coresident: bool = True) -> int:
    """The persistent grid: config.grid (co-resident where CTAs wait on each other, else an
    InputError), default the resident capacity; never more programs than tiles."""
    capacity = resident_capacity(gpu, common.resources(config))
    if coresident:
        check_coresident(config.grid or capacity, capacity, gpu.sm_count)
    return min(config.grid or capacity, total_tiles)


def partition(workload: DecodeWorkload, gpu: GpuSpec, config: common.PlanConfig) -> Schedule:
    tile = common.kv_tile_tokens(config)
    outs = common.outputs(workload, tile)
    total = int(outs.tiles.sum())
    merge = streamk_last.epilogue(workload, config.epilogue)
    streamk_chunks.check(config, merge, tile)
    grid = resolve_grid(workload, gpu, config, total, coresident=merge != EPILOGUE_LAST)
    if config.chunk_tokens is not None:  # batch-invariant: cuts at each output's own fixed chunks
        segs, reductions, grid = streamk_chunks.partition(workload, tile, outs, config, grid)
        notes = {"total_tiles": total, "chunks": len(segs),
                 "max_chunks": int(np.diff(reductions.peer_offsets).max(initial=1))}
        # the chunks decide the work, not the grid (min(capacity, chunks)): a plan of one spec in every batch
        chunks = {"grid": config.grid, "chunk_tokens": config.chunk_tokens, "max_splits": config.max_splits}
    else:
        segs, reductions, bounds = share_tiles(workload, tile, outs, 0, grid)
        if merge == EPILOGUE_LAST:
            segs, reductions = streamk_last.last_arrival(segs)
        share = int(bounds[1] - bounds[0]) if grid else 0
        notes, chunks = {"total_tiles": total, "share": share, "high_load": int(total - (share - 1) * grid)}, {}
    launch = common.attention_launch(workload, grid, config, config.family or "streamk", segs, outs.rows,
                                     reductions, tile)
    launch = streamk_last.borrow_merge_terms(launch) if merge == EPILOGUE_LAST else launch
    return Schedule("streamk", workload, gpu.name, tile, (launch,), reductions, 0, notes,
                    {"grid": grid, **chunks, **streamk_last.plan_options(merge)})


def share_tiles(workload: DecodeWorkload, tile: int, outs: common.Outputs, first_output: int, grid: int):
    """Stream-K over the tiles of outputs first_output.. (at least `grid` of them) on programs 0..grid-1.

    Returns the segment table (program-sorted), the host reductions and the chunk bounds
    (int64 [grid + 1], iterations counted from first_output's first tile).
    """
    out_start = offsets_from_counts(outs.tiles[first_output:])  # iteration where each output begins
    bounds = chunk_bounds(int(out_start[-1]), grid)
    prog, prog_rows, out_idx, (lo, hi), (out_lo, out_hi) = _intersect(bounds, out_start)
    role = np.where(lo == out_lo, np.where(hi == out_hi, ROLE_COMPLETE, ROLE_HOST), ROLE_PEER)
    segs = common.segment_table(workload, tile, outs, prog, out_idx + first_output, lo - out_lo, hi - lo, role)
    return segs, _host_reductions(segs, bounds, out_start, out_idx, prog_rows), bounds


def _intersect(bounds: np.ndarray, out_start: np.ndarray):
    """Segments = non-empty intersections of chunk ranges with output ranges, in program order
    (program p runs chunk g - 1 - p; within a program, outputs ascend).

    Returns program, first segment row of each program (int64 [g + 1]), output, the segment's
    iteration range (lo, hi) and its output's (out_lo, out_hi); arrays [n_segments] unless noted.
    """
    chunk_lo, chunk_hi = bounds[-2::-1], bounds[:0:-1]  # [g], indexed by program
    first_out = out_start.searchsorted(chunk_lo, side="right") - 1  # (array methods: np.* wrappers cost more)
    per_prog = out_start.searchsorted(chunk_hi - 1, side="right") - first_out
    prog_rows = offsets_from_counts(per_prog)
    prog = np.arange(len(per_prog)).repeat(per_prog)
    out_idx = first_out[prog] + (np.arange(len(prog)) - prog_rows[prog])
    out_lo, out_hi = out_start[out_idx], out_start[out_idx + 1]
    lo, hi = np.maximum(chunk_lo[prog], out_lo), np.minimum(chunk_hi[prog], out_hi)
    return prog, prog_rows, out_idx, (lo, hi), (out_lo, out_hi)


def _host_reductions(segs: SegmentTable, bounds, out_start, out_idx, prog_rows) -> Reductions:
    """One row per straddling output, ascending: the host program and its peers (lower program ids).

    The host runs the output's first chunk c; its peers run chunks c + 1 .. e - 1 (e: the first
    chunk that starts at or after the output's end), i.e. programs g - e .. g - 2 - c, each as its
    first segment, so a peer's partial is published after exactly that segment's KV bytes.
    """
    hosts = (segs.role == ROLE_HOST).nonzero()[0][::-1]  # descending program = ascending output
    if len(hosts) == 0:
        return Reductions.empty()
    grid = len(bounds) - 1
    host_prog = segs.cta[hosts]
    end_chunk = bounds.searchsorted(out_start[out_idx[hosts] + 1])
    n_peers = end_chunk - (grid - 1 - host_prog) - 1
    peer_offsets = offsets_from_counts(n_peers)
    first_peer = grid - end_chunk  # lowest peer program of each host
    peer_prog = (first_peer - peer_offsets[:-1]).repeat(n_peers) + np.arange(peer_offsets[-1])
    peer_rows = prog_rows[peer_prog]
    return Reductions(
        seq=frozen_array(segs.seq[hosts]), kv_head=frozen_array(segs.kv_head[hosts]),
        q_block=frozen_array(segs.q_block[hosts]), host_cta=frozen_array(host_prog),
        peer_offsets=frozen_array(peer_offsets), peer_cta=frozen_array(peer_prog),
        peer_done_bytes=frozen_array(segs.kv_bytes[peer_rows], np.float64),
    )
