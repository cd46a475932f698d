"""torch-flash: PyTorch SDPA's flash backend, i.e. FA2's own CUDA split-KV kernels, as a plan.

The FlashDecoding plan with FA2's CUDA kernel configuration: kBlockN = 256 (d <= 64) / 128 (d <= 128)
/ 64; 4 warps; kBlockM = 64 query rows (GQA decode packs the q-head group into them); the split
count from num_splits_heuristic with 2 x SMs; a combine launch when splits > 1. Its CTA resources
are FA2's: 255 registers per thread and Q + K + V tiles in shared memory, i.e. 2 CTAs per SM on
sm_90 / sm_80 — the assumption behind the heuristic's 2 x SMs. With one split FA2 launches its
plain forward kernel instead, a different kernel with its own cost family (torch-flash-nosplit).
"""

from __future__ import annotations

from dataclasses import replace

from attnsim.simulator.datasheet import KernelTraits
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.occupancy import CtaResources
from attnsim.simulator.partition import common, flashdecoding
from attnsim.simulator.schedule import Schedule
from attnsim.simulator.workload import Q_BLOCK_ROWS, DecodeWorkload


def fa2_cuda_resources(workload: DecodeWorkload) -> CtaResources:
    """Shared memory = Q tile [64, d] + K and V tiles [block_n, d] (fp16/bf16); 128 threads x 255 regs."""
    d = workload.head_dim
    smem = (Q_BLOCK_ROWS * d + 2 * common.fa2_block_n(d) * d) * workload.dtype_bytes
    return CtaResources(threads=128, regs_per_thread=255, smem_bytes=smem)


FA2_COMBINE_RESOURCES = CtaResources(threads=128, regs_per_thread=32, smem_bytes=0)  # its combine: kNThreads 128

# What the datasheet model needs of FA2's kernels (simulator/datasheet.py). Both keep one K or V tile
# in flight (kBlockN x d x 2 B): each iteration waits for every cp.async (cp_async_wait<0>) and then
# issues the next tile, V during q.K^T, the next K during the softmax and P.V (flash_fwd_kernel.h). They
# are held by their tile math: 4 warps of mma.sync over kBlockM query rows for the one decode row (rows
# past the group are masked, not skipped), 255 registers, so 2 CTAs share an SM. Split kernel: kBlockM
# 64, kBlockN 128 (d 128) / 256 (d 64); the plain forward (one split): kBlockM 128, kBlockN 64 (d 128) /
# 128 (d 64) (flash_fwd_launch_template.h). The plan's attention launch carries kBlockM (Launch.tile_rows),
# so the cost model caps it by its SM's math (cost.math_capped), at the unsplit kernel's rate for both.
FA2_SPLIT_TILE_BYTES = 128 * 128 * 2  # the split kernel's K (or V) tile at d 128 (= 256 x 64 at d 64)
NOSPLIT_FAMILY = "torch-flash-nosplit"
SPLIT_TRAITS = KernelTraits(warps=4, bytes_in_flight=FA2_SPLIT_TILE_BYTES, tile_rows=Q_BLOCK_ROWS)
NOSPLIT_TRAITS = KernelTraits(warps=4, bytes_in_flight=FA2_SPLIT_TILE_BYTES // 2, tile_rows=2 * Q_BLOCK_ROWS)
COMBINE_TRAITS = KernelTraits(warps=FA2_COMBINE_RESOURCES.warps, combine=True)


def partition(workload: DecodeWorkload, gpu: GpuSpec, config: common.PlanConfig) -> Schedule:
    fa2_config = replace(config, kv_tile_tokens=common.fa2_block_n(workload.head_dim), num_warps=4,
                         resources=config.resources or fa2_cuda_resources(workload),
                         combine_resources=FA2_COMBINE_RESOURCES,
                         family=config.family or "torch-flash")
    splits = config.splits or flashdecoding.heuristic_splits(workload, gpu, fa2_config.kv_tile_tokens)
    if splits == 1 and config.family is None:  # FA2 runs its plain forward kernel, not split-KV
        fa2_config = replace(fa2_config, family=NOSPLIT_FAMILY)
    schedule = flashdecoding.partition(workload, gpu, fa2_config)
    traits = NOSPLIT_TRAITS if splits == 1 else SPLIT_TRAITS  # the kernel that runs: its kBlockM
    attention = replace(schedule.attention, tile_rows=traits.tile_rows, math_family=NOSPLIT_FAMILY)
    return replace(schedule, strategy="torch-flash", launches=(attention,) + schedule.launches[1:])
