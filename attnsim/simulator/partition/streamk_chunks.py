"""Stream-K cut at fixed chunks (stream-K options chunk_tokens[, max_splits] with epilogue=last): the
persistent grid of stream-K, the batch invariance of a fixed chunk.

- Every output is cut into chunks exactly as balanced.py cuts it: chunk_tokens (a multiple of the KV
  tile), or, with max_splits, at most that many equal chunks (balanced.output_chunk_tiles): a function
  of the output's own length alone.
- Each chunk is one segment with its own partial, even where one CTA runs several chunks of an
  output, and an output of several chunks is merged by its last-arriving contributor in chunk order
  (streamk_last.last_arrival; kernels/lean_last.py). So a sequence's output bits depend only on its
  length: not on which CTA ran which chunk, nor on what else is in the batch.
- The chunks, outputs in order and each output's chunks ascending, are dealt to the grid as
  contiguous runs of about equal tiles: chunk u goes to CTA floor(mid_u * grid / total), mid_u its
  middle tile in the flattened order (stream-K's even share, cuts moved to chunk boundaries), on
  grid = min(the grid asked for, the chunk count) CTAs; a CTA whose share a longer chunk took runs
  nothing and exits.

Cost accounting: stream-K's last-arrival epilogue (streamk_last.py) over these segments: each
contributor writes G·(d + 1)·4 bytes of partial; the last arrival of an output reads all of them.
"""

from __future__ import annotations

import numpy as np

from attnsim.errors import InputError
from attnsim.simulator.partition import balanced, common, streamk_last
from attnsim.simulator.partition.options import EPILOGUE_LAST
from attnsim.simulator.schedule import SegmentTable, offsets_from_counts
from attnsim.simulator.workload import DecodeWorkload


def check(config: common.PlanConfig, epilogue: str, tile: int) -> None:
    """chunk_tokens needs the last-arrival epilogue and a multiple of the KV tile; max_splits needs a chunk."""
    if config.chunk_tokens is None:
        if config.max_splits is not None:
            raise InputError("max_splits", "stream-K takes max_splits only with chunk_tokens")
        return
    if epilogue != EPILOGUE_LAST:
        raise InputError("chunk_tokens", "stream-K cuts at fixed chunks only with epilogue=last (a host CTA's "
                                         "merge tree would follow the batch): add epilogue=last (--epilogue last)")
    if config.chunk_tokens % tile:
        raise InputError("chunk_tokens", f"must be a multiple of the KV tile ({tile} tokens), got {config.chunk_tokens}")


def chunk_segments(workload: DecodeWorkload, tile: int, outs: common.Outputs, config: common.PlanConfig,
                   grid: int) -> tuple[SegmentTable, int]:
    """(the chunks of every output dealt to the grid's CTAs (module docstring), CTA-sorted, each CTA's
    chunks in output order, roles COMPLETE (an output of one chunk) or PEER; the grid)."""
    chunk_tiles = balanced.output_chunk_tiles(outs.tiles, config.chunk_tokens // tile, config.max_splits)
    n_chunks = -(-outs.tiles // chunk_tiles)  # int64 [n_outputs]
    out_idx, first, count, role = balanced.chunks(outs.tiles, np.arange(len(n_chunks)), n_chunks, chunk_tiles)
    start = offsets_from_counts(count)  # each chunk's first tile in the flattened order, int64 [n_chunks + 1]
    grid = min(grid, len(out_idx))
    middle = start[:-1] + count / 2.0
    cta = np.minimum((middle * grid / start[-1]).astype(np.int64), grid - 1)  # non-decreasing: CTA-sorted
    return common.segment_table(workload, tile, outs, cta, out_idx, first, count, role), grid


def partition(workload: DecodeWorkload, tile: int, outs: common.Outputs, config: common.PlanConfig, grid: int):
    """(segments, reductions, grid) of a chunked stream-K plan on at most `grid` CTAs."""
    segs, grid = chunk_segments(workload, tile, outs, config, grid)
    segs, reductions = streamk_last.last_arrival(segs)
    return segs, reductions, grid
