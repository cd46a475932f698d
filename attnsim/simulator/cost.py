"""The cost model: what each CTA must stream, how fast a set of CTAs streams, and fixed costs.

Units: bytes, microseconds, and rates in bytes/µs (1 GB/s = 1e3 bytes/µs).

Bandwidth sharing. One CTA alone streams at b = warps x cta_stream_gbps_per_warp (latency-bound:
bytes in flight / latency). n CTAs together stream at

    agg(n) = B * u / (1 + u^p)^(1/p),   u = n * b / B,

a smooth min(n * b, B) whose knee sharpness p is a profile parameter (p -> inf is the hard
min; p ~ 2.5 fits the H100 read-bandwidth anchors: 132 4-warp CTAs reach ~0.62 of B). Every
streaming CTA of a launch gets agg(n) / n.

Per-SM sharing. An SM streams at most sm_stream_gbps (its own bytes in flight: load queues, L1
misses). Where the engine draws the SMs (launches that fit one wave of resident slots, CTA i on SM i % S:
simulator/sm_wave.py) each SM asks for what its k streaming CTAs would stream unloaded, min(k b, sm rate),
and the chip's agg (the knee at u = the asks over B) is shared in proportion to the asks, a common
latency stretch (BandwidthModel.load_rates); the SM's CTAs split its share. So just past one CTA per
SM a doubled SM gets up to twice a single one's share, while just past two a third CTA adds nothing once
two fill the SM's bytes in flight, and the launch ends with its tripled SMs (the oracle study's split-KV
and FlashDecoding grids of 270-330 CTAs at d 64, 3 slots per SM, measured 4-11% slower than at 264).
Past one wave: packed onto the fewest SMs (sm_wave.packed_rate); a small tail ahead on fast SMs (engine._tail_rate).
0 (the default): no per-SM limit, the asks are k b and every CTA gets agg(n) / n. The tile-math cap below
is split the same way where the SMs are drawn, by each SM's own CTAs, not by the chip-wide average: an fp8
FlashDecoding grid of 224 CTAs (92 SMs with two, 40 with one) ends when the doubly-loaded SMs do, and
streams 224/256 of what a grid of 256 does, as measured (results/h200/bench_fp8.csv: 1 GB at grid 224
351 µs, at grid 256 309 µs; the chip-wide share priced both the same).

Dirty L2: KV reads evict L2 lines, of which the share l2_dirty_fraction is dirty when the launch starts;
their write-back takes its share of B (bandwidth_model). Reading K bytes evicts min(K, L2) bytes of lines,
so f x min(K, L2) are written back (write_back_bytes): the H200's floor under do_bench's zeroing flush
pays ~half of 4-16 MB and a flat ~38 MB from 256 MB on (shared/research/small-call-decode.md).

Tile math. Every KV token a CTA streams costs 2 x BLOCK_M x (head_dim + v_dim) tensor-core FLOPs
(q.K^T over head_dim, P.V over v_dim, query rows padded to BLOCK_M; 4 x BLOCK_M x head_dim when K and
V are head_dim wide), BLOCK_M softmax scores and, for an fp8 cache, 2 x head_dim conversions to the
query dtype. An SM retires mma_flop_per_sm_clock FLOPs, a score per softmax_clocks_per_score clocks
and dequant_elem_per_sm_clock conversions per clock, one after another (FA2's warps run the softmax
between their two mma's), shared by its streaming CTAs, so a CTA streams at most

    cap(n) = clock x bytes / (FLOPs / mma + scores x softmax + conversions / dequant) x min(1, sm_count / n)

bytes/µs (mma_flop x wgmma_flop_scale for tiles of WGMMA_ROWS rows or more, which 4 warps run as the
warpgroup mma, not the 16-32-row tiles' mma.sync). A CTA of w warps also has a limit of its own, however
idle its SM: the same cycles with w x mma_flop_per_warp_clock and w x dequant_elem_per_warp_clock in
place of the SM's rates (a warp issues from one sub-partition and waits on its own mma / convert chain),
so one 4-warp CTA alone on an SM converts slower than two sharing it; per-warp rates of 0 (the defaults)
mean no such limit. A CTA gets min(agg(n) / n, cap(n), cta_cap): a hard cap, not under the memory knee,
because a kernel held by its math issues its next tile's loads a whole tile of math ahead (FA2's unsplit
decode kernel: ~3.3 µs per 32 KB K + V tile pair with its SM shared by 2 CTAs, against a ~1 µs memory
round trip), so memory queueing near the knee does not slow it. `math_capped` says where the cap applies:
- where the tile math exceeds the decode kernel's: a verify block (q_len > 1: q_len x group rows, up
  to 64 per q-block) or an fp8 cache (half the bytes per token, plus conversions);
- MLA (simulator/mla.py): its kernel packs all query heads on one latent head (up to 64 rows x 1,088
  FLOPs per 1,152-byte token, ~4x the math per byte of a GQA decode tile), no calibrated decode rate
  has that inside it, and at 64 rows it sits above the H200's ridge point (`bound` "compute");
- a launch whose kernel fixes its tile rows (`Launch.tile_rows`: FA2's CUDA kernels compute kBlockM =
  64 or 128 rows for one decode query row), so decode is bound by its math on every GPU: 2.2-2.5 TB/s
  for the unsplit kernel on both the H100 and the H200. Expressed as a per-SM rate (x SMs x clock), the
  limit carries between GPUs of one die; as a per-CTA stream rate under the knee it did not (the H100
  saturates right at its knee, so its data could not tell the rate from the knee's softness).
Our kernels' decode (q_len 1, the dtype's KV, 16-row tiles) is left to its calibrated stream rates,
which were fitted with its math inside them: a fitted solo CTA rate is a curve parameter (stream-K's
reaches hundreds of GB/s where no lone CTA streams), and capping it would move every decode tail the
calibration already accounts for. So their decode predictions do not change, and the model says when
verify or fp8 turns compute-bound.

Wide decode tiles. The calibrated stream rates hold the math of 16-row tiles (GQA groups up to 16). A decode tile of
more rows (groups above 16: MQA 32/1, 64/2 pack 32) does twice the math per byte, and measured on the H200 a lone
CTA then streams ~20% slower than the model says while a saturated grid does not (results/h200/cal_search.csv): the
extra math is serial to the CTA's own stream, not hidden behind it, and a min() cap does not bind at the fitted mma
rates. Each such CTA bills wide_tile_ns_per_row_token x (rows - 16) per KV token it computes as fixed time
(wide_tile_us): it holds its slot, so on a saturated chip the others take the bandwidth and it hides. Math-capped
launches bill their tile math through the cap instead, but for a 32-row verify or fp8 tile, which runs the decode
32-row tile's code (mma.sync, softmax reduced across warps): it pays both (fa2's 32-row verify tiles measured
1.23-1.26x its 16-row time, its 64-row warpgroup-mma tiles 1.06x: docs/kernels.md, "Query tiles of 17-32 rows";
held-out fa2 qlen 9.8 -> 6.3%); 0 (the default): off.

Several q-blocks (MLA, verify blocks of more than 64 rows): q-blocks > 0 that read the same KV tiles as q-block 0 at about the same time get them from
L2 (simulator/reuse.py); those bytes still stream through their CTAs but not through HBM, so the
chip-wide rate B is scaled by moved / (moved - reread); a verify block's CTA and SM stream rates rise by
reuse.l2_hit_speedup (the siblings' L2 hits have a shorter latency).

Paged KV: a CTA's reads include the block-table entries of the pages it touches (planned bytes); a tile of several
pages (page < KV tile: an index per page, tile_loads.page_tile) pays paged_tile_fixed_us, where a tile inside one page
loads one index a pipeline stage ahead of its K/V (hidden: fa2 measured 12-16% slower than contiguous at 16/32-token
pages, 5% faster at 64+: results/h200/kernels_serving_paged.csv); a segment pays paged_segment_fixed_us for its
first index, loaded before its first K/V (bf16 paged calls <= 16 MB: 0.3-1.1 µs over contiguous,
results/h200/bench_paged.csv); paged_hbm_scale scales the saturated bandwidth (scattered pages); all neutral until
calibrated.

Padded head dims (96, 160-224: tiles at the next power of two, the masked columns' sectors never read): a tile
costs its padded width's loop and carries d / padded of its bytes, so CTA and SM stream rates scale by
loaded_column_share (H100 held-out, results/h100/head_dim_pad.csv: fa2 MAPE 13.3 -> 2.5%, docs/kernels.md).

fp8 KV: each (CTA, output) segment pays fp8_segment_fixed_us more (q scaled into fp16, the first tiles'
convert-and-stage chain before the pipeline overlaps them, kernels/tiles.py): FlashDecoding at 2 fp8 tiles a
split ran 10-15% slower than the rate cap alone predicts (results/h200/bench_fp8.csv); long splits hide it.

Fixed costs (not streaming, the CTA holds its slot): per CTA, per segment, per tile, and for a host CTA a fix-up per
merged partial; per launch, the launch overhead; the merges' rounds: simulator/merge_cost.py.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Callable

import numpy as np

from attnsim.simulator.hardware import CostParams, GpuSpec
from attnsim.simulator.merge_cost import merge_steps
from attnsim.simulator.mla import tile_flops_per_token
from attnsim.simulator.reuse import l2_hit_bytes, l2_hit_speedup
from attnsim.simulator.schedule import Launch, Schedule
from attnsim.simulator.terms import paged_loop_scale, verify_siblings
from attnsim.simulator.workload import DecodeWorkload, query_tile_rows

GBPS_TO_BYTES_PER_US = 1e3


@dataclass(frozen=True)
class BandwidthModel:
    """Per-CTA and aggregate streaming rates of one launch, in bytes/µs."""

    cta_rate: float  # b: one CTA alone
    hbm_rate: float  # B: the whole chip
    knee: float  # p
    sm_math_rate: float = np.inf  # bytes/µs one SM's tile math keeps up with (inf: no math, e.g. a combine)
    sm_count: int = 1
    cta_math_rate: float = np.inf  # bytes/µs one CTA's warps keep up with alone (inf: no per-CTA limit)
    sm_stream_rate: float = np.inf  # bytes/µs one SM streams, shared by its CTAs (inf: no per-SM limit)

    def _knee(self, u, m):
        """agg at u = n b / B, divided through by m = max(u, 1) so no power overflows for a sharp knee."""
        return self.hbm_rate * (u / m) / ((1.0 / m) ** self.knee + (u / m) ** self.knee) ** (1.0 / self.knee)

    def aggregate(self, n_streaming):
        """agg(n) in bytes/µs; accepts scalars or arrays."""
        u = np.asarray(n_streaming, dtype=np.float64) * self.cta_rate / self.hbm_rate
        return self._knee(u, np.maximum(u, 1.0))

    def per_cta(self, n_streaming):
        """min(agg(n) / n, cap(n), cta_cap): the bandwidth share, capped by its SM's math share and its own warps'."""
        n = np.maximum(np.asarray(n_streaming, dtype=np.float64), 1.0)
        share = self.aggregate(n) / n
        if not np.isfinite(self.sm_math_rate):
            return share
        return np.minimum(share, np.minimum(self.sm_math_rate * np.minimum(1.0, self.sm_count / n), self.cta_math_rate))

    def load_rates(self, levels: int) -> Callable[[list], list[float]]:
        """rates(sms_holding) -> [levels] bytes/µs of a CTA on an SM streaming k = 0..levels - 1 CTAs of a one-wave
        launch (sm_wave.py), `sms_holding` [levels] SMs streaming k each; per-k constants worked out once.

        Each SM asks for what its CTAs stream unloaded, min(k b, sm_stream_rate): its bytes in flight over
        that latency. Loaded, the latency stretches alike for every SM, so the chip's agg (the knee at
        u = the sum of the asks / B) is shared in proportion to the asks: an SM with a third CTA gets no
        more than one with two once two fill its bytes in flight. Its CTAs split the SM's share and its
        tile math (sm_math_rate / k), and each stays under what its own warps retire (cta_math_rate).
        Without a per-SM limit the asks are k b and a CTA gets agg(n) / n, the chip-wide share. Entry 0
        (no CTA) is 0. Python floats: a handful of k per event."""
        asks = [min(k * self.cta_rate, self.sm_stream_rate) for k in range(levels)]
        per_k = [(asks[k], k, min(self.cta_math_rate, self.sm_math_rate / k)) for k in range(1, levels)]
        hbm_rate, knee = self.hbm_rate, self._knee  # bound once: asked once per event

        def rates(sms_holding: list) -> list[float]:
            total = sum(map(operator.mul, sms_holding, asks))
            u = total / hbm_rate
            stretch = knee(u, max(u, 1.0)) / total if total > 0 else 1.0
            rate = [0.0]
            for ask, k, cap in per_k:  # a plain loop and min(share, cap) spelt out: ~1/3 cheaper per event
                share = ask * stretch / k
                rate.append(cap if cap < share else share)
            return rate
        return rates

    def per_cta_at(self, n_streaming: int) -> float:
        """per_cta of one count on Python floats: the same IEEE operations in the same order, ~10x
        faster than through numpy for the engine's event loop, which asks one count at a time."""
        n = max(float(n_streaming), 1.0)
        u = n * self.cta_rate / self.hbm_rate
        share = self._knee(u, max(u, 1.0)) / n
        if self.sm_math_rate == np.inf:
            return share
        return min(share, self.sm_math_rate * min(1.0, self.sm_count / n), self.cta_math_rate)


def bandwidth_model(gpu: GpuSpec, launch: Launch, schedule: Schedule | None = None) -> BandwidthModel:
    """`schedule` (the plan the launch belongs to) brings the workload's paging and tile math."""
    params = gpu.cost_for(launch.family)
    cta_gbps = cta_stream_gbps(params, launch, schedule)
    moved = float(launch.cta_read_bytes.sum() + launch.cta_write_bytes.sum())
    streamed_share = own_share(moved, dirty_write_back_bytes(launch, gpu))
    hbm_gbps = gpu.hbm_read_gbps * params.hbm_scale * streamed_share
    math_rate = cta_rate = np.inf
    sm_stream_gbps = params.sm_stream_gbps
    if schedule is not None and launch.name == "attention":
        w = schedule.workload
        sm_stream_gbps *= w.loaded_column_share
        hbm_gbps *= params.paged_hbm_scale if w.paged else 1.0
        reread = l2_hit_bytes(gpu, launch, w)  # CTAs move more bytes than HBM does
        hbm_gbps *= moved / (moved - reread) if reread < moved else 1.0
        if verify_siblings(w):
            speedup = l2_hit_speedup(params, reread / moved if moved else 0.0)
            cta_gbps, sm_stream_gbps = cta_gbps * speedup, sm_stream_gbps * speedup
        if math_capped(launch, w):
            math_params = gpu.cost_for(launch.math_family or launch.family)
            math_rate = sm_math_rate(math_params, gpu, w, schedule.kv_tile_tokens, launch, moved)
            cta_rate = cta_math_rate(math_params, gpu, w, schedule.kv_tile_tokens, launch, moved)
    sm_rate = sm_stream_gbps * GBPS_TO_BYTES_PER_US if sm_stream_gbps > 0 else np.inf
    return BandwidthModel(cta_gbps * GBPS_TO_BYTES_PER_US, hbm_gbps * GBPS_TO_BYTES_PER_US, params.bw_knee,
                          math_rate, gpu.sm_count, cta_rate, sm_rate)


def row_indexed(schedule: Schedule) -> bool:
    """Whether the schedule's KV tiles each hold several pages, their rows addressed through one
    block-table index per token row (module docstring, "Paged KV")."""
    w = schedule.workload
    return w.paged and w.page_size < schedule.kv_tile_tokens


def cta_stream_gbps(params: CostParams, launch: Launch, schedule: Schedule | None) -> float:
    """stream_gbps at Launch.stream_warps (bytes in flight: the 4-warp fp8 stream-K kernel keeps the 8-warp's)."""
    workload = schedule.workload if schedule is not None and launch.name == "attention" else None
    return stream_gbps(params, launch.stream_warps or launch.resources.warps, workload)


def stream_gbps(params: CostParams, warps: float, workload: DecodeWorkload | None = None) -> float:
    """GB/s one CTA of `warps` streams alone; for an attention launch of `workload`, its per-token work in series
    and the padded columns its loads skip (module docstring, "Padded head dims")."""
    gbps = params.cta_stream_gbps_per_warp * warps
    if workload is None:
        return gbps
    gbps *= workload.loaded_column_share
    if not params.cta_ns_per_token:
        return gbps
    return 1.0 / (1.0 / gbps + params.cta_ns_per_token / workload.kv_token_bytes)


def math_capped(launch: Launch, workload: DecodeWorkload) -> bool:
    """Whether an attention launch's CTAs stream under the tile-math cap (module docstring): a kernel
    that fixes its tile rows, or more tile math than our kernels' decode calibration saw."""
    return bool(launch.tile_rows) or workload.beyond_decode_math


WGMMA_ROWS = 64  # query-tile rows from which 4-warp tiles take the warpgroup mma (docs/kernels.md, "Query tiles of 17-32 rows")


def wide_decode_rows(workload: DecodeWorkload) -> int:
    """Query-tile rows above 16 that bill wide_tile_us (module docstring, "Wide decode tiles"): 16 for a 32-row tile
    (decode, verify or fp8); a decode tile's rows above 16 at 64; 0 for 16-row, MLA and 64-row verify / fp8 tiles."""
    rows = query_tile_rows(workload)
    if workload.is_mla or (workload.beyond_decode_math and not 16 < rows < WGMMA_ROWS):
        return 0
    return max(0, rows - 16)


def wide_tile_us(params: CostParams, launch: Launch, schedule: Schedule) -> np.ndarray | float:
    """Un-hidden tile math of each CTA of an attention launch [grid], µs: wide_tile_ns_per_row_token x rows above 16
    x the KV tokens it computes (whole tiles); 0 elsewhere (math-capped launches bill it through the cap)."""
    rows = wide_decode_rows(schedule.workload)
    if launch.name != "attention" or launch.tile_rows or not rows:
        return 0.0
    tokens = launch.cta_tiles.astype(np.float64) * schedule.kv_tile_tokens
    return params.wide_tile_ns_per_row_token * 1e-3 * rows * tokens


def math_bound(gpu: GpuSpec, schedule: Schedule, slots: int) -> bool:
    """Whether the attention launch's CTAs, all resident at once (min(grid, slots) streaming), are held
    back by their SMs' tile math rather than by memory: the model's answer to "is this verify block
    still memory-bound?"."""
    launch = schedule.attention
    if not math_capped(launch, schedule.workload):  # no tile-math cap: per_cta is the bandwidth share itself
        return False
    bw = bandwidth_model(gpu, launch, schedule)
    n = max(1, min(launch.grid, slots))
    return bool(bw.per_cta(n) < bw.aggregate(n) / n)


def tile_math(workload: DecodeWorkload, tile: int, total_tiles: float, rows: int = 0) -> tuple[float, float, float]:
    """(tensor-core FLOPs, softmax scores, dequantised elements) of `total_tiles` KV tiles of `tile`
    tokens, for a query tile of `rows` rows (0: the workload's packed rows, workload.query_tile_rows);
    a short last tile is computed in full (masked, not skipped), a padded head dim at its tiles' width."""
    tokens, rows = float(total_tiles) * tile, rows or query_tile_rows(workload)
    kd, vd = workload.tile_head_dim, workload.partial_dim
    flops = tile_flops_per_token(rows, kd, vd) * tokens
    return flops, rows * tokens, (2.0 * kd * tokens if workload.kv_fp8 else 0.0)


def sm_math_rate(params: CostParams, gpu: GpuSpec, workload: DecodeWorkload, tile: int, launch: Launch,
                 moved: float) -> float:
    """Bytes/µs an SM streams when its tile math is the limit: clock (cycles/µs) x bytes per cycle."""
    return _math_rate(params, gpu, workload, tile, launch, moved, params.mma_flop_per_sm_clock,
                      params.dequant_elem_per_sm_clock)


def cta_math_rate(params: CostParams, gpu: GpuSpec, workload: DecodeWorkload, tile: int, launch: Launch,
                  moved: float) -> float:
    """Bytes/µs one of the launch's CTAs streams when its own warps' tile math is the limit (the SM's
    softmax rate, warps x the per-warp mma and conversion rates); inf where neither per-warp rate is set."""
    warps = launch.resources.warps
    mma, dequant = params.mma_flop_per_warp_clock * warps, params.dequant_elem_per_warp_clock * warps
    if not (mma or dequant):
        return np.inf
    return _math_rate(params, gpu, workload, tile, launch, moved, mma or np.inf, dequant or np.inf)


def _math_rate(params: CostParams, gpu: GpuSpec, workload: DecodeWorkload, tile: int, launch: Launch,
               moved: float, mma: float, dequant: float) -> float:
    """clock x moved / cycles of the launch's tile math at `mma` FLOPs and `dequant` conversions per clock."""
    flops, scores, conversions = tile_math(workload, tile, float(launch.cta_tiles.sum()), launch.tile_rows)
    if (launch.tile_rows or query_tile_rows(workload)) >= WGMMA_ROWS:
        mma *= params.wgmma_flop_scale
    cycles = (flops / mma + scores * params.softmax_clocks_per_score + conversions / dequant) * paged_loop_scale(workload)
    return gpu.clock_mhz * moved / cycles if cycles > 0 else np.inf


def write_back_bytes(kv_bytes: float, dirty_fraction: float, l2_bytes: float) -> float:
    """Dirty bytes that reading `kv_bytes` evicts: the dirty share of the min(KV, L2) bytes of lines it evicts."""
    return dirty_fraction * min(kv_bytes, l2_bytes)


def own_share(moved: float, dirty: float) -> float:
    """The share of the chip's bandwidth a launch moving `moved` bytes keeps while `dirty` bytes are written back."""
    return moved / (moved + dirty) if moved else 1.0


def dirty_write_back_bytes(launch: Launch, gpu: GpuSpec) -> float:
    """Dirty L2 lines an attention launch's KV reads evict (write_back_bytes).

    Partials (written moments before by peers) and q are L2 hits and evict nothing. The write-back shares the
    HBM (bandwidth_model), not a CTA's latency-bound stream: it costs time only when the launch is bandwidth-bound.
    """
    if launch.name != "attention":
        return 0.0
    kv = launch.segments.kv_bytes if launch.segments is not None else launch.cta_read_bytes
    return write_back_bytes(float(kv.sum()), gpu.cost_for(launch.family).l2_dirty_fraction, gpu.l2_bytes)


def cta_work_bytes(launch: Launch) -> np.ndarray:
    """Bytes each CTA streams: reads + writes. float64 [grid]."""
    return launch.cta_read_bytes + launch.cta_write_bytes


def cta_fixed_us(params: CostParams, launch: Launch, schedule: Schedule) -> np.ndarray:
    """Non-streaming time of each CTA of the schedule's `launch` [grid]: prologue/epilogue, per segment (more in
    attention on an fp8 or paged cache), per tile (more when its rows come through a block table), host fix-ups."""
    w, reductions, attention = schedule.workload, schedule.reductions, launch.name == "attention"
    tile_us = params.tile_fixed_us + (params.paged_tile_fixed_us if row_indexed(schedule) else 0.0)
    segment_us = (params.segment_fixed_us + (params.fp8_segment_fixed_us if attention and w.kv_fp8 else 0.0)
                  + (params.paged_segment_fixed_us if attention and w.paged else 0.0))
    fixed = (params.cta_fixed_us + segment_us * launch.cta_segments
             + tile_us * launch.cta_tiles).astype(np.float64)
    hosts = reductions.host_cta >= 0 if attention else None
    if hosts is not None and hosts.any():  # (outputs merged by their last arrival: the engine bills those)
        n_peers = np.diff(reductions.peer_offsets)[hosts]
        fixup = params.fixup_fixed_us + params.fixup_per_peer_us * merge_steps(n_peers, params.merge_fanin)
        fixed = fixed + np.bincount(reductions.host_cta[hosts], weights=fixup, minlength=launch.grid)
    return fixed
