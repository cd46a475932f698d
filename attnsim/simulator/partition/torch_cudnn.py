"""torch-cudnn: PyTorch SDPA's cuDNN backend for decode (cuDNN 9.19, torch 2.11), as a plan.

What it launches was recorded with torch.profiler on the H200 over 356 decode workloads
(results/h200/cudnn_kernels.csv; docs/baselines.md has the evidence table):

- attention: `..._sm80_flash_fprop_wmma_f16_knob_35_16x128x{d}_1x4x1_...`, an Ampere-style WMMA kernel
  of 128 threads. One CTA takes 16 packed query rows (the GQA group of one kv-head, q_len x group
  rows cut into q-blocks of 16) against 128-token KV tiles. Grid (x = splits, y = kv_heads x q-blocks,
  z = batch): a CTA per (output, split), split-minor in launch order.
- when splits > 1, `cudnn::fusion::lean_reduction_kernel`: 256 threads, 32 registers, 520 B of shared
  memory per split, grid (1, q_heads, batch): one CTA per (sequence, q-head) merging its partials.

The split rule, with bh = batch x kv_heads x q-blocks (the CTAs of one split) and n_blocks = ceil(
max context / 128): one split when bh >= SMs / 2 or n_blocks <= 4, else the largest power of two
<= min(2 x SMs / bh, 64, n_blocks). It reproduces every captured launch (bh 2, 8, 32 split; 128 and
more do not). The no-split edge is pinned by timings, not by the profiler: on the calibration set
bh = 96 streams like 96 CTAs (d 64 reaches 0.73 of HBM bandwidth at 4.7 GB, where 192 CTAs reach
0.93-0.98), so it is not split, while bh = 64 times like 4 splits (256 CTAs). Where between 64 and
96 the edge lies, whether the CTA budget is 2 x SMs or 256, and the n_blocks edge between 512 and
2048 tokens are hypotheses until `scripts/cudnn_geometry.py --thresholds` pins them.

Split s covers KV blocks [s * nbps, (s + 1) * nbps), nbps = ceil(n_blocks / splits), as in FA2 (the
library does not say; a trailing split may be empty). Ragged batches: the split count from the
longest sequence, each output's ranges from its own length (SDPA has no per-sequence lengths, so
this is an extrapolation: the bench never times it).

CTA resources are the profiler's for d 64 (120 registers, 45,376 B) and d 128 (183 registers,
86,336 B): 2 CTAs per SM at d 128, which makes 2 x SMs exactly one wave. d 32 and 96 are a linear
estimate through those two (notes["resources"] says which); d > 128 is refused, as PyTorch refuses it
with this cuDNN.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from attnsim.errors import InputError
from attnsim.simulator.datasheet import KernelTraits
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.occupancy import CtaResources
from attnsim.simulator.partition import common, flashdecoding
from attnsim.simulator.schedule import ROLE_COMPLETE, ROLE_PEER, Reductions, Schedule
from attnsim.simulator.workload import DecodeWorkload

MAX_HEAD_DIM = 128  # PyTorch's limit for cuDNN < 9.23 (sdp_utils.cpp); d 256 needs a newer cuDNN on sm90
Q_BLOCK_ROWS = 16  # packed query rows per CTA (the kernel name's 16x128xD)
KV_TILE_TOKENS = 128
MAX_SPLITS = 64
NO_SPLIT_FILL = 0.5  # bh >= SMs / 2: one split (an edge between bh 64 and 96: see above)
MIN_SPLIT_BLOCKS = 5  # n_blocks <= 4: one split
THREADS = 128
MEASURED_RESOURCES = {64: CtaResources(THREADS, 120, 45376), 128: CtaResources(THREADS, 183, 86336)}
REDUCTION_THREADS, REDUCTION_REGS = 256, 32
REDUCTION_SMEM_PER_SPLIT = 520  # bytes: 130 fp32 per partial (O[128] + max + sum), any head dim
# Cost families: one per compiled attention kernel. Both run 4 warps, but a CTA keeps one 128-token
# K/V tile in flight, so its latency-bound streaming rate grows with the head dim (d 128 CTAs stream
# ~2x faster: 128 of them read at 0.99 of HBM bandwidth, of d 64 at 0.88; results/h200/bench.csv).
FAMILIES = {64: "torch-cudnn-d64", 128: "torch-cudnn-d128"}  # by the kernel's head dim
COMBINE_FAMILY = "torch-cudnn-combine"
# The datasheet model's view (simulator/datasheet.py): one 128-token K + V tile in flight per CTA
# (128 x d x 2 B each), 16 query rows of WMMA math (never the limit), the reduction reads partials from L2.
TRAITS = {FAMILIES[d]: KernelTraits(warps=THREADS // 32, bytes_in_flight=2 * KV_TILE_TOKENS * d * 2) for d in FAMILIES}
TRAITS[COMBINE_FAMILY] = KernelTraits(warps=REDUCTION_THREADS // 32, combine=True)


def cudnn_splits(bh: int, n_blocks: int, sm_count: int) -> int:
    """cuDNN's KV split count for `bh` CTAs per split and `n_blocks` 128-token blocks."""
    if bh >= NO_SPLIT_FILL * sm_count or n_blocks < MIN_SPLIT_BLOCKS:
        return 1
    splits = 1
    while 2 * splits <= MAX_SPLITS and 2 * splits <= n_blocks and 2 * splits * bh <= 2 * sm_count:
        splits *= 2
    return splits


def q_blocks(workload: DecodeWorkload) -> int:
    return -(-(workload.q_len * workload.group) // Q_BLOCK_ROWS)


def rule_splits(workload: DecodeWorkload, gpu: GpuSpec) -> int:
    bh = workload.batch * workload.kv_heads * q_blocks(workload)
    return cudnn_splits(bh, -(-workload.max_context // KV_TILE_TOKENS), gpu.sm_count)


def attention_resources(head_dim: int) -> tuple[CtaResources, str]:
    """(resources, "measured" | "estimated"): the profiler's figures for d 64 / 128; other head dims
    by the line through them (registers 57 + 63 d / 64, capped at 255; shared memory 4,416 + 640 d B)."""
    if head_dim in MEASURED_RESOURCES:
        return MEASURED_RESOURCES[head_dim], "measured"
    regs = min(255, round(57 + 63 * head_dim / 64))
    return CtaResources(THREADS, regs, 4416 + 640 * head_dim), "estimated"


def reduction_resources(splits: int) -> CtaResources:
    return CtaResources(REDUCTION_THREADS, REDUCTION_REGS, REDUCTION_SMEM_PER_SPLIT * splits)


def attention_family(head_dim: int) -> str:
    """The cost family of the kernel that runs `head_dim`: d <= 64 the d 64 kernel, else the d 128 one."""
    return FAMILIES[64] if head_dim <= 64 else FAMILIES[128]


def partition(workload: DecodeWorkload, gpu: GpuSpec, config: common.PlanConfig) -> Schedule:
    if workload.head_dim > MAX_HEAD_DIM:
        raise InputError("head_dim", f"PyTorch's cuDNN backend takes head_dim <= {MAX_HEAD_DIM} with the cuDNN we "
                                     f"measured (9.19); got {workload.head_dim}")
    rule = rule_splits(workload, gpu)
    splits = config.splits or rule
    family = config.family or attention_family(workload.head_dim)
    combine_family = config.family + "-combine" if config.family else COMBINE_FAMILY
    outs = common.outputs(workload, KV_TILE_TOKENS, Q_BLOCK_ROWS)
    cta, out_idx, first, count, n_used = flashdecoding.split_rows(outs.tiles, splits)
    segs = common.segment_table(workload, KV_TILE_TOKENS, outs, cta, out_idx, first, count,
                                np.full(len(cta), ROLE_PEER if splits > 1 else ROLE_COMPLETE))
    res, res_source = attention_resources(workload.head_dim)
    resolved = replace(config, resources=config.resources or res)
    attention = common.attention_launch(workload, outs.count * splits, resolved, family, segs, outs.rows,
                                        Reductions.empty())
    launches, reductions = (attention,), Reductions.empty()
    if splits > 1:
        reductions = flashdecoding.combine_reductions(outs, segs, n_used)
        launches += (reduction_launch(workload, outs, splits, combine_family),)
    notes = {"rule_splits": rule, "splits_override": config.splits, "q_block_rows": Q_BLOCK_ROWS,
             "resources": res_source}
    return Schedule("torch-cudnn", workload, gpu.name, KV_TILE_TOKENS, launches, reductions, splits, notes,
                    {"splits": splits})


def reduction_launch(workload: DecodeWorkload, outs: common.Outputs, splits: int, family: str):
    """One CTA per (sequence, q-head), in launch order, reading all `splits` partials of its q_len rows."""
    per_q_head = np.full(workload.batch * workload.q_heads, splits, np.int64)
    return flashdecoding.combine_launch(workload, outs, per_q_head, family, reduction_resources(splits),
                                        rows=workload.q_len, per_step=1)
