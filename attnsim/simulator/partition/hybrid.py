"""Data-parallel + stream-K on one persistent grid: CUTLASS stream-K's "DP + two-tile SK" hybrid
(threadblock_swizzle_streamk.h; DOMAIN.md §3, §6) applied to decode attention.

- grid g: stream-K's (resident capacity or config.grid, never above the tile count; same checks).
- The first dp outputs (common.outputs order; dp a multiple of g) run whole: output i < dp is a
  ROLE_COMPLETE segment on CTA i % g, each CTA taking its DP outputs in ascending order before
  anything else. Default dp = all full waves of outputs but the last, so the last full wave plus
  the remainder (between g and 2g - 1 outputs) are shared stream-K style: "two-tile SK".
- The remaining outputs' tiles are cut exactly as `streamk.partition` cuts a workload
  (`streamk.share_tiles`): even chunks, program p running chunk g' - 1 - p, hosts holding an
  output's first tile and waiting only on lower program ids. g' = min(g, those tiles): when fewer
  tiles than programs are left, the high programs run DP work only.

Full waves pay no fix-up at all, while the tail is still balanced to within one tile per CTA.
dp = 0 is stream-K exactly; dp = every output (a multiple of g) is FA2 on a persistent grid. The
stream-K kernel runs the plan unchanged: a program publishes at most once and only to a higher id.
epilogue=last merges the stream-K part by last arrival, as streamk_last.py says.

Cost accounting: as stream-K, with the DP outputs' K+V, q and o added to their CTAs. A peer
publishes after its DP outputs, so its peer_done_bytes counts their bytes (engine._host_ready).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from attnsim.errors import InputError
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.partition import common, streamk, streamk_last
from attnsim.simulator.partition.options import EPILOGUE_LAST
from attnsim.simulator.schedule import ROLE_COMPLETE, Reductions, Schedule, SegmentTable, frozen_array
from attnsim.simulator.workload import DecodeWorkload


def default_dp_outputs(n_outputs: int, grid: int) -> int:
    """All full waves of outputs but the last: the last full wave and the remainder go stream-K."""
    return max(0, n_outputs // grid - 1) * grid


def resolve_dp_outputs(config: common.PlanConfig, n_outputs: int, grid: int) -> int:
    """config.dp_outputs clamped to a multiple of the grid <= n_outputs (None: the default)."""
    if config.dp_outputs is None:
        return default_dp_outputs(n_outputs, grid)
    if config.dp_outputs < 0:
        raise InputError("dp_outputs", f"must be >= 0, got {config.dp_outputs}")
    return min(config.dp_outputs, n_outputs) // grid * grid


def partition(workload: DecodeWorkload, gpu: GpuSpec, config: common.PlanConfig) -> Schedule:
    tile = common.kv_tile_tokens(config)
    outs = common.outputs(workload, tile)
    total = int(outs.tiles.sum())
    merge = streamk_last.epilogue(workload, config.epilogue)
    grid = streamk.resolve_grid(workload, gpu, config, total, coresident=merge != EPILOGUE_LAST)
    dp = resolve_dp_outputs(config, outs.count, grid)
    dp_segs = _dp_segments(workload, tile, outs, dp, grid)
    sk_tiles = total - int(dp_segs.n_tiles.sum())
    notes = {"dp_outputs": dp, "dp_outputs_override": config.dp_outputs, "total_tiles": total,
             "sk_tiles": sk_tiles, "share": 0, "high_load": 0}
    segs, reductions = dp_segs, Reductions.empty()
    if sk_tiles:
        sk_grid = min(grid, sk_tiles)
        sk_segs, reductions, bounds = streamk.share_tiles(workload, tile, outs, dp, sk_grid)
        dp_bytes = np.bincount(dp_segs.cta, weights=dp_segs.kv_bytes, minlength=grid)  # float64 [grid]
        segs, reductions = _dp_first(dp_segs, sk_segs, dp // grid, grid), _after_dp(reductions, dp_bytes)
        share = int(bounds[1] - bounds[0])
        notes.update(share=share, high_load=sk_tiles - (share - 1) * sk_grid)
        if merge == EPILOGUE_LAST:  # publication after the DP outputs: streamk_last.done_bytes counts them
            segs, reductions = streamk_last.last_arrival(segs)
    launch = common.attention_launch(workload, grid, config, config.family or "streamk", segs, outs.rows,
                                     reductions, tile)
    launch = streamk_last.borrow_merge_terms(launch) if merge == EPILOGUE_LAST else launch
    return Schedule("hybrid", workload, gpu.name, tile, (launch,), reductions, 0, notes,
                    {"grid": grid, "dp_outputs": dp, **streamk_last.plan_options(merge)})


def _dp_segments(workload, tile: int, outs: common.Outputs, dp: int, grid: int) -> SegmentTable:
    """Output i < dp whole on CTA i % grid; rows CTA-major, each CTA's outputs ascending."""
    waves = dp // grid
    out_idx = (np.arange(grid)[:, None] + grid * np.arange(waves)[None, :]).reshape(-1)  # [grid * waves]
    cta = np.repeat(np.arange(grid), waves)
    return common.segment_table(workload, tile, outs, cta, out_idx, np.zeros(dp, np.int64), outs.tiles[out_idx],
                                np.full(dp, ROLE_COMPLETE))


def _dp_first(dp: SegmentTable, sk: SegmentTable, waves: int, grid: int) -> SegmentTable:
    """One CTA-sorted table: each CTA's `waves` DP rows, then its stream-K rows in their order."""
    if waves == 0:
        return sk
    sk_before = sk.offsets(grid)[:-1]  # stream-K rows of lower CTAs, int64 [grid]
    dp_pos = (np.arange(grid) * waves + sk_before)[:, None] + np.arange(waves)[None, :]  # [grid, waves]
    sk_pos = np.arange(len(sk)) + (sk.cta + 1) * waves
    pos = np.concatenate((dp_pos.reshape(-1), sk_pos))
    columns = {}
    for f in dataclasses.fields(SegmentTable):
        both = np.concatenate((getattr(dp, f.name), getattr(sk, f.name)))
        column = np.empty_like(both)
        column[pos] = both
        columns[f.name] = frozen_array(column, both.dtype)
    return SegmentTable(**columns)


def _after_dp(reductions: Reductions, dp_bytes: np.ndarray) -> Reductions:
    """Peers publish after streaming their DP outputs: add those bytes to peer_done_bytes."""
    if len(reductions) == 0 or not dp_bytes.any():
        return reductions
    done = reductions.peer_done_bytes + dp_bytes[reductions.peer_cta]
    return dataclasses.replace(reductions, peer_done_bytes=frozen_array(done, np.float64))
