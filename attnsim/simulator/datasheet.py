"""A datasheet profile from first principles: cost parameters from what the chip is and what the kernel does.

`--calibration none` (and any family a calibration could not carry) gets these instead of the
CostParams defaults. Nothing here is fitted to a GPU: the inputs are the preset's datasheet (SMs,
clock, HBM bandwidth, L2 size), each kernel family's code facts (`KernelTraits`: warps, the K/V bytes
a CTA keeps in flight, the query rows of its tile math) and the constants below, each with its source.

Streaming (Little's law). One CTA alone keeps `bytes_in_flight` outstanding and waits one memory
latency for them, so it streams at

    b = bytes_in_flight / HBM_LATENCY_US,

bounded by its SM's L1 fill rate (SM_FILL_BYTES_PER_CLOCK x clock). The chip bounds the sum:
cost.BandwidthModel's smooth min of n x b and B = datasheet x HBM_EFFICIENCY, with knee KNEE.

Tile math. A kernel whose code fixes its query tile rows (`tile_rows`: FA2's CUDA kernels compute a
64- or 128-row tile for one decode query row) is held by its SM's math, which the cost model caps
per SM (cost.BandwidthModel.sm_math_rate: clock x bytes / cycles, shared by the SM's CTAs): its costs
hold the SM's mma rate (MMA_SYNC_FLOP_PER_SM_CLOCK x FA2_TENSOR_EFFICIENCY) and the softmax's SFU
clocks per score (1 / SFU_EXP2_PER_SM_CLOCK). Other families keep the defaults (the cap does not apply
to their decode launches).

Fixed costs, in memory round trips (HBM_LATENCY_US, L2 hits of L2_HIT_CYCLES at the SM clock) and
launch-path time:
- launch: HOST_LAUNCH_US (graph replay + the timer's event pair: host and driver, the same on any
  GPU) + KERNEL_BOUNDARY_CYCLES (the grid starts, the previous one drains) at the SM clock; a combine
  launch queued behind its attention launch pays only the boundary;
- per CTA: 2 HBM round trips (its work descriptor, then q and its first tile, each waiting on the last);
- per segment (a CTA taking up another output): 1 (that output's q; its previous partial's store);
- a host CTA's merge: a release/acquire round trip to memory plus 2 L2 hits (flag, partials), and 2 L2
  hits per merge step; a combine CTA: 2 L2 hits (LSEs, then partials) and 1 per partial merged (its loop
  waits on each partial's load).
- dirty L2: the timer writes 256 MB before every sample, leaving the L2 dirty; while the launch path
  runs (launch_us), the L2 writes dirty lines back at HBM rate, so a share 1 - launch_us x B / L2 is
  still dirty when the kernel starts (a hypothesis: calibrated fits find 0.5-0.8; this gives 0.67-0.72
  on Hopper).

Checks against measured H100 facts (DOMAIN.md section 4; not inputs): a membw CTA keeping one
16 KB step in flight streams 16384 B / 0.9 µs = 18 GB/s (measured 13-17 GB/s); a launch costs
3.0 + 3000 / 1980 = 4.5 µs (an empty kernel measures ~5 µs); tests/simulator/test_datasheet.py.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from attnsim.simulator.hardware import CostParams, GpuSpec

# Loaded HBM latency a streaming CTA waits per round trip on Hopper: public pointer-chase figures give
# 500-700 ns unloaded (Chips and Cheese, "Nvidia's H100: Funny L2, and Tons of Bandwidth", 2023); a
# CTA's round trip also holds its loop's issue and reductions. 0.9 µs = 1,782 cycles at 1.98 GHz.
HBM_LATENCY_US = 0.9
L2_HIT_CYCLES = 260  # L2 hit latency, SM cycles: 200-340 in public Hopper/Ada microbenchmarks
# Achievable / pin bandwidth of HBM: all-bank refresh and read/write turnarounds cost ~8%
# (JEDEC HBM3: tRFC of a few hundred ns every tREFI = 3.9 µs).
HBM_EFFICIENCY = 0.92
KNEE = 5.0  # smooth min of Little's-law demand and B: 13% below either at the knee (2^(-1/5) = 0.87)
HOST_LAUNCH_US = 3.0  # CUDA-graph replay + do_bench's event pair: host and driver work
KERNEL_BOUNDARY_CYCLES = 3000  # the grid's start and the previous grid's drain, SM cycles
SM_FILL_BYTES_PER_CLOCK = 64  # L2 -> SM fill per clock (a 128-byte line every other cycle)
# Dense fp16 tensor throughput of sm80 code (mma.sync) per SM and clock: the A100's 312 TFLOP/s over
# 108 SMs at 1.41 GHz; on sm90 only wgmma reaches 4096. FA2's whole forward pass sustains 50-73% of it
# (Dao, FlashAttention-2, 2023, on the A100), its softmax included; here the softmax is billed apart
# (SFU_EXP2_PER_SM_CLOCK), so the mma alone runs at least at the paper's best figure: we take 0.73.
# Not a blind choice: it replaced 0.6 (the paper's middle, when the softmax was folded in) after the
# carried fits of both GPUs (validation/physical_fit.py) found 0.71-0.75 with the softmax apart.
MMA_SYNC_FLOP_PER_SM_CLOCK = 2048.0
FA2_TENSOR_EFFICIENCY = 0.73
# exp2 results per SM per clock on the SFU (MUFU), compute capability 8.0 and 9.0: CUDA C++ Programming
# Guide, "Arithmetic Instructions" throughput table. FA2's online softmax takes one exp2 per score (the
# scale, max and sum are FP32 FMAs at 128 per SM per clock: the SFU is its limit) between its two mma's,
# so it adds to them. Check (not fitted): with the mma above, a d 64 byte costs 1.15x the clocks of a d 128
# byte in FA2's unsplit kernel; the committed sweeps read d 128 1.16x (H100) and 1.11x (H200) faster (medians
# over the 49 shapes timed at both head dims, torch-flash unsplit rows above 256 MB of KV).
SFU_EXP2_PER_SM_CLOCK = 16.0
COMBINE_LOAD_BYTES_PER_THREAD = 16  # a combine thread's one 16-byte load of partials in flight


@dataclass(frozen=True)
class KernelTraits:
    """What a kernel family's code does, as the datasheet model needs it."""

    warps: int
    bytes_in_flight: int = 0  # K/V bytes one CTA keeps outstanding (attention launches)
    # Query rows its tile math computes per KV token when its code fixes them (FA2's kBlockM; the plan's
    # Launch.tile_rows): the cost model caps its stream by its SM's math. 0: our kernels (16-row tiles,
    # the cap does not apply to decode).
    tile_rows: int = 0
    combine: bool = False  # a combine launch reading partials from L2
    # dependent L2 round trips per combine segment: 1 where a segment is a partial; our combine kernel's
    # segment is a step of BLOCK_P partials whose loads go out together, ~2 round trips (partials.merge_slots)
    round_trips_per_segment: int = 1
    merge_fanin: float = 0.0  # the kernel's merge tree (CostParams.merge_fanin)


def launch_us(gpu: GpuSpec) -> float:
    """One launch as do_bench sees it: host path + kernel boundary at the SM clock."""
    return HOST_LAUNCH_US + KERNEL_BOUNDARY_CYCLES / gpu.clock_mhz


def hbm_gbps(gpu: GpuSpec) -> float:
    """Achievable HBM read bandwidth: the datasheet figure x HBM_EFFICIENCY."""
    return gpu.hbm_read_gbps * HBM_EFFICIENCY


def l2_dirty_fraction(gpu: GpuSpec) -> float:
    """Share of the L2 still dirty when a kernel starts: the launch path's time of write-back at HBM rate."""
    drained_bytes = launch_us(gpu) * hbm_gbps(gpu) * 1e3  # µs x GB/s = 1e3 bytes
    return max(0.0, 1.0 - drained_bytes / gpu.l2_bytes)


def cta_rate_gbps(gpu: GpuSpec, traits: KernelTraits) -> float:
    """One CTA's unshared streaming rate: Little's law, capped by its SM's fill rate (its tile math is
    a cap of its own: tile_math_fields)."""
    little = traits.bytes_in_flight / HBM_LATENCY_US / 1e3  # bytes/µs -> GB/s
    return min(little, SM_FILL_BYTES_PER_CLOCK * gpu.clock_mhz / 1e3)


def tile_math_fields(traits: KernelTraits) -> dict:
    """The CostParams of the tile-math cap of a kernel that fixes its tile rows ({} otherwise): the SM's
    mma.sync rate at FA2's efficiency, one SFU exp2 per softmax score."""
    if not traits.tile_rows:
        return {}
    return {"mma_flop_per_sm_clock": MMA_SYNC_FLOP_PER_SM_CLOCK * FA2_TENSOR_EFFICIENCY,
            "softmax_clocks_per_score": 1.0 / SFU_EXP2_PER_SM_CLOCK}


def datasheet_cost(gpu: GpuSpec, traits: KernelTraits) -> CostParams:
    """CostParams of one kernel family on `gpu` from first principles."""
    hbm_us, l2_us = HBM_LATENCY_US, L2_HIT_CYCLES / gpu.clock_mhz
    boundary_us = KERNEL_BOUNDARY_CYCLES / gpu.clock_mhz
    if traits.combine:
        in_flight = traits.warps * 32 * COMBINE_LOAD_BYTES_PER_THREAD
        return CostParams(cta_stream_gbps_per_warp=in_flight / l2_us / 1e3 / traits.warps,
                          launch_overhead_us=boundary_us, cta_fixed_us=2 * l2_us,
                          segment_fixed_us=traits.round_trips_per_segment * l2_us,
                          bw_knee=KNEE, l2_dirty_fraction=0.0)  # partials are L2 hits: nothing evicted
    return CostParams(
        cta_stream_gbps_per_warp=cta_rate_gbps(gpu, traits) / traits.warps, launch_overhead_us=launch_us(gpu),
        cta_fixed_us=2 * hbm_us, segment_fixed_us=hbm_us, tile_fixed_us=0.0,
        fixup_fixed_us=hbm_us + 2 * l2_us, fixup_per_peer_us=2 * l2_us, merge_fanin=traits.merge_fanin,
        bw_knee=KNEE, hbm_scale=1.0, l2_dirty_fraction=l2_dirty_fraction(gpu), **tile_math_fields(traits))


def datasheet_costs(gpu: GpuSpec, traits: dict[str, KernelTraits]) -> dict[str, CostParams]:
    return {family: datasheet_cost(gpu, t) for family, t in traits.items()}


def datasheet_profile(preset: GpuSpec, traits: dict[str, KernelTraits]) -> GpuSpec:
    """A preset with first-principles costs for every family in `traits` (profile_source datasheet)."""
    return dataclasses.replace(
        preset, hbm_read_gbps=round(hbm_gbps(preset), 1), cost=datasheet_costs(preset, traits),
        source=f"datasheet ({preset.name}; first-principles costs, attnsim/simulator/datasheet.py)",
        profile_source="datasheet")
