"""Split-KV in one launch, merged by the last-arriving split (`attnsim/kernels/split_kv.py` runs it).

Each output's KV tiles are cut into S contiguous splits with FA2's ranges (split s of n tiles covers
[s·per, min((s + 1)·per, n)), per = ceil(n / S)), one CTA each, all in one launch of outputs × S
CTAs. CTAs are numbered split-major, cta = output + split·outputs, which is how the kernel's 2-D grid
(outputs, S) is linearised and dispatched; so CTAs 0 .. outputs - 1 are every output's split 0,
never empty, whose plan rows the kernel reads by program id.

- S = 1: one ROLE_COMPLETE CTA per output, no reductions.
- S > 1: every non-empty split is a ROLE_PEER segment writing an fp32 partial. One Reductions row
  per output with host_cta = LAST_ARRIVAL and all S CTAs as peers (an empty split of a short
  sequence reads nothing but still arrives at the output's counter). The engine puts the merge —
  reading the S partials, L2-resident, and writing o — on whichever peer finishes last, as time
  (fixup_fixed_us + fixup_per_peer_us per L2 load round of the merge, merge_cost.last_arrival_steps: its
  q-block's rows 4 at a time x its published partials 1024 / head_dim at a time), not as streamed bytes.

Fixed chunks (`chunk_tokens`, optionally `max_splits`; batch-invariant): output o is cut at balanced's rule,
per_o = max(chunk, ceil(n / max_splits)) tiles a chunk, S_o = ceil(n / per_o) chunks, and the launch is
balanced's grid: one CTA per chunk, no empty CTAs, outputs longest first (LPT), each output's chunks on
consecutive CTAs in KV order (`chunked`). An output of one chunk writes o (ROLE_COMPLETE); the chunks of a
longer one are ROLE_PEER, merged in chunk order by whichever arrives last (one LAST_ARRIVAL row each, peers
in KV order), so a sequence's bits depend on its own length only. Stream-K's last-arrival segment body runs
it, one segment per program, at split-KV's 4 warps (kernel_specs.SPLIT_KV_CHUNKS_KERNEL:
lean_last.one_segment_kernel). Why not the (outputs, max S_o) grid of the split-count mode, which ran these
plans before: on a ragged batch with one long sequence most of that grid is empty splits and the long
sequence's capped chunks are spread over it, and the kernel ran the same chunks up to 35-55% slower than
balanced's LPT grid did (H200, results/h200/invariant_oracle_dense.csv: b7 56/8 d64 with one 180k
sequence 178.9 against 116.0 µs; b22 16/1 d64 71.6 against 52.9), where the model, placing CTAs by its own
slot rule, said 117 and 50: 13% optimistic on ragged chunk plans, none on uniform ones. On the LPT grid
(H100, results/h100/chunk_order_ab_{new,old}.csv, the same chunks in one session): 0.92x the dense grid's
time on ragged batches (median, 0.78-1.11), 1.00x on uniform ones (0.92-1.10); the model's mean error on
ragged chunk plans +0.4% (H100 profile).

Default split count (`splits` overrides): the largest power of two S <= 64 whose outputs·S CTAs stay
within CTAS_PER_SM per SM and within one resident wave, no larger than the tiles of the longest
sequence (every split of it holds >= 1 tile); 1 when the outputs alone reach that. (The issue's
design said 1-2 waves of the resident capacity; measured on the H200, fewer CTAs won: CTAS_PER_SM.)
The planner (`auto`) searches other split counts with the calibrated model.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from attnsim.errors import InputError
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.occupancy import resident_capacity
from attnsim.simulator.partition import balanced, common, flashdecoding
from attnsim.simulator.schedule import (
    LAST_ARRIVAL, ROLE_COMPLETE, ROLE_PEER, Reductions, Schedule, frozen_array, offsets_from_counts,
)
from attnsim.simulator.workload import DecodeWorkload

MAX_DEFAULT_SPLITS = 64
# Split-KV runs FlashDecoding's tile loop (kernels/tiles.attend_range: the same tile, warps and stages), so
# its launches take FlashDecoding's tile-math and fp8 conversion rates (Launch.math_family): one fit of
# them over both kernels' rows sees split-KV's one CTA per SM and FlashDecoding's two (serving_fit)
MATH_FAMILY = "flashdecoding"
# Measured on the H200 (results/h200/splitkv_v1.csv, splitkv_v2.csv: d 128 fp16, 4 MB - 1 GB, S a
# power of two): 512 CTAs (past the 396 resident: a second wave) were 11-35% slower than 256; with
# the merge costing ~0.2 µs per split partial (v2), 1 CTA per SM was fastest or within 1.6% of the
# fastest at every point, 2 per SM up to 18% slower (b1 32/8 at 16 MB: 18.2 vs 21.5 µs).
CTAS_PER_SM = 1


def default_splits(n_outputs: int, max_tiles: int, target_ctas: int) -> int:
    """Largest power of two S <= 64 with n_outputs·S <= target_ctas, capped at max_tiles (>= 1 tile
    per split); 1 when the outputs alone reach the target."""
    splits = 1
    while n_outputs * 2 * splits <= target_ctas and 2 * splits <= min(MAX_DEFAULT_SPLITS, max_tiles):
        splits *= 2
    return splits


def target_ctas(gpu: GpuSpec, capacity: int) -> int:
    """CTAS_PER_SM per SM, never more than one resident wave."""
    return min(capacity, CTAS_PER_SM * gpu.sm_count)


def split_major(tiles: np.ndarray, splits: int):
    """Non-empty splits in CTA order (cta = output + split·outputs), FA2's ranges (flashdecoding.split_ranges):
    (cta, output, first, count) arrays [n_segments], plus the K+V-tile counts of every (output, split),
    int64 [n_outputs, splits]."""
    first, count = flashdecoding.split_ranges(tiles, splits)  # [n_outputs, splits]
    n_out = len(tiles)
    cta = np.arange(splits)[:, None] * n_out + np.arange(n_out)[None, :]  # [splits, n_outputs]
    keep = count.T > 0
    kept = cta[keep]
    return kept, kept % n_out, first.T[keep], count.T[keep], count  # output = cta mod outputs


def split_count(config: common.PlanConfig, default: int) -> int:
    """The split-count mode's S: config.splits, else `default`."""
    if config.max_splits is not None:
        raise InputError("max_splits", "caps the chunks of chunk_tokens; give chunk_tokens too")
    return config.splits or default


def last_arrival_reductions(outs: common.Outputs, splits: int, done_bytes: np.ndarray) -> Reductions:
    """One row per output, merged by whichever of its `splits` CTAs arrives last. done_bytes: float64
    [n_outputs, splits], K+V bytes each split streams before it publishes (0 for an empty split)."""
    n_out = outs.count
    peers = np.arange(n_out)[:, None] + np.arange(splits)[None, :] * n_out  # [n_outputs, splits], split order
    return Reductions(
        seq=frozen_array(outs.seq), kv_head=frozen_array(outs.kv_head), q_block=frozen_array(outs.q_block),
        host_cta=frozen_array(np.full(n_out, LAST_ARRIVAL)),
        peer_offsets=frozen_array(offsets_from_counts(np.full(n_out, splits))),
        peer_cta=frozen_array(peers.reshape(-1)), peer_done_bytes=frozen_array(done_bytes.reshape(-1), np.float64),
    )


def partition(workload: DecodeWorkload, gpu: GpuSpec, config: common.PlanConfig) -> Schedule:
    tile = common.kv_tile_tokens(config)
    outs = common.outputs(workload, tile)
    res = common.resources(config)
    capacity = resident_capacity(gpu, res)
    default = default_splits(outs.count, int(outs.tiles.max()), target_ctas(gpu, capacity))
    notes = {"default_splits": default, "splits_override": config.splits, "capacity": capacity}
    if config.chunk_tokens is not None:
        return chunked(workload, gpu, config, tile, outs, notes)
    splits = split_count(config, default)
    cta, out_idx, first, count, counts = split_major(outs.tiles, splits)
    role = np.full(len(cta), ROLE_PEER if splits > 1 else ROLE_COMPLETE)
    segs = common.segment_table(workload, tile, outs, cta, out_idx, first, count, role)
    reductions = Reductions.empty()
    if splits > 1:
        done = np.zeros(counts.shape)
        done[out_idx, cta // outs.count] = segs.kv_bytes
        reductions = last_arrival_reductions(outs, splits, done)
    attention = tile_loop_of(common.attention_launch(workload, outs.count * splits, config, config.family or "splitkv",
                                                     segs, outs.rows, reductions, tile))
    return Schedule("splitkv", workload, gpu.name, tile, (attention,), reductions, splits, notes, {"splits": splits})


def chunked(workload: DecodeWorkload, gpu: GpuSpec, config: common.PlanConfig, tile: int, outs: common.Outputs,
            notes: dict) -> Schedule:
    """The fixed-chunk mode (module docstring): balanced's chunks in LPT order, one CTA each, merged in the
    launch by each split output's last arrival."""
    if config.splits is not None:
        raise InputError("splits", "splitkv takes a split count or chunk_tokens, not both")
    chunk = balanced.resolve_chunk(workload, gpu, config, tile)
    order, n_chunks, segs = balanced.lpt_chunks(workload, tile, outs, chunk, config.max_splits)
    split = n_chunks > 1
    reductions = Reductions.empty()
    if split.any():  # peers in CTA order are each output's chunks in KV order; the last to arrive merges
        combine_rows = flashdecoding.split_reductions(outs, segs, order[split], n_chunks[split])
        reductions = dataclasses.replace(combine_rows, host_cta=frozen_array(np.full(int(split.sum()), LAST_ARRIVAL)))
    attention = tile_loop_of(common.attention_launch(workload, len(segs), config, config.family or "splitkv", segs,
                                                     outs.rows, reductions, tile))
    notes.update(chunk_tokens=chunk, max_chunks=int(n_chunks.max(initial=0)), split_outputs=int(split.sum()))
    chosen = {"chunk_tokens": config.chunk_tokens, **({"max_splits": config.max_splits} if config.max_splits else {})}
    return Schedule("splitkv", workload, gpu.name, tile, (attention,), reductions, 0, notes, chosen)


def tile_loop_of(launch):
    """A split-KV attention launch with its tile math priced by MATH_FAMILY's rates (its own family otherwise
    named, e.g. an MLA split-KV family, keeps its own)."""
    return dataclasses.replace(launch, math_family=MATH_FAMILY) if launch.family == "splitkv" else launch
