"""Multi-head latent attention (MLA) decode, as a kind of DecodeWorkload (DOMAIN.md section 8).

DeepSeek-V2/V3 and Kimi-K2 cache one latent vector per token and layer: `kv_lora_rank` (512)
elements of compressed K/V plus `qk_rope_head_dim` (64) of rotary key. With the up-projections
absorbed into the query and the output (how every engine decodes MLA: FlashMLA, vLLM, SGLang), one
decode step is attention with
- one KV head (kv_heads = 1) whose key is the whole latent vector, head_dim = kv_lora_rank + rope
  dims (576), and whose value is the latent's first kv_lora_rank elements (the same bytes: a token
  costs head_dim x dtype bytes, 1,152 in bf16, not 2 x 576);
- all query heads in one group (q_heads per GPU: 128 / TP; the latent cache is replicated on every
  GPU of a tensor-parallel group, never split); each head's query is head_dim wide, its output
  kv_lora_rank wide.
So a workload is MLA when `kv_lora_rank` > 0; the partitionings and the engine treat it like any
other (outputs are (sequence, q-block) of up to 64 heads), with its bytes and tile math counted here.

The dims: kv_lora_rank and the rope dims are powers of two (the kernels tile them with tl.arange),
which every released MLA model has (512 + 64; MiniCPM3 256 + 32). fp8 latent caches (FlashMLA
has one) are not modelled yet: bf16/fp16 first.
"""

from __future__ import annotations

import numpy as np

from attnsim.errors import InputError

LORA_RANKS = tuple(2 ** k for k in range(4, 11))  # 16 .. 1024: kv_lora_rank
ROPE_DIMS = (16, 32, 64, 128)  # qk_rope_head_dim (>= 16: a tl.dot's smallest K)
# An MLA kernel bills its partitioning's cost family + this ('streamk-mla'); a profile without such a
# family uses the partitioning's (GpuSpec.cost_for) until a device sweep fits it.
FAMILY_SUFFIX = "-mla"
# The same kernels compiled for 64-row q-blocks (more than 32 query rows: warpgroup MMA tiles and a
# [64, 512] fp32 accumulator, which spills at 8 warps on sm_90) are other binaries than the 16/32-row ones
# (mma.sync, no spills): they bill a family of their own, the partitioning's + WIDE_FAMILY_SUFFIX
# ('streamk-mla64'), standing in with the narrow one's until a profile fits it. One family for both fitted
# stream-K's held-out MLA rows at 13% (16 rows over-predicted by ~10 us, 64-row merges under-predicted by
# ~90 us); one each (and the 16-row one's per-CTA caps tied to fa2's, validation/fit.MLA_TIES), 4.4%
# (docs/mla.md, "Fitted").
WIDE_ROWS = 64
WIDE_FAMILY_SUFFIX = FAMILY_SUFFIX + "64"
# The MLA combine launch merges an output's partials in pieces of this many columns, one CTA each
# (kernels/mla_decode.mla_combine_kernel): a 512-wide output is 4 CTAs, each holding one
# [rows, 128] fp32 accumulator, so the merge of wide partials is not one CTA's latency-bound stream.
COMBINE_COLUMNS = 128
# The MLA stream-K kernel merges a straddling output along a 5-ary tree (4 partials a step, launch.py's
# merge tree): its host waits on one chain of steps, reading up to 4 partials in each.
MERGE_FANIN = 5


def check_dims(kv_lora_rank: int, head_dim: int, kv_heads: int, kv_fp8: bool) -> None:
    """An MLA workload's shape: one KV head, head_dim = kv_lora_rank + rope dims, both powers of two,
    a bf16/fp16 latent cache. One InputError naming the field."""
    if isinstance(kv_lora_rank, bool) or kv_lora_rank not in LORA_RANKS:
        raise InputError("kv_lora_rank", f"{kv_lora_rank!r} unsupported; an MLA latent rank is a power of two in "
                                         f"{LORA_RANKS[0]}..{LORA_RANKS[-1]} (0: not MLA)")
    if head_dim - kv_lora_rank not in ROPE_DIMS:
        raise InputError("head_dim", f"{head_dim} for an MLA layer is kv_lora_rank {kv_lora_rank} + rope dims, "
                                     f"which must be one of {ROPE_DIMS}")
    if kv_heads != 1:
        raise InputError("kv_heads", f"{kv_heads}: an MLA layer has one latent KV head shared by every query head "
                                     "(replicated, not split, under tensor parallelism)")
    if kv_fp8:
        raise InputError("kv_dtype", "an fp8 latent cache is not modelled yet (MLA: bfloat16 or float16 first)")


def family_suffix(tile_rows: int) -> str:
    """The suffix an MLA kernel's cost family takes for query tiles of `tile_rows` rows (BLOCK_M)."""
    return WIDE_FAMILY_SUFFIX if tile_rows >= WIDE_ROWS else FAMILY_SUFFIX


def narrow_family(family: str) -> str:
    """The 16/32-row family a 64-row MLA family stands in with ('streamk-mla64' -> 'streamk-mla')."""
    return family.replace(WIDE_FAMILY_SUFFIX, FAMILY_SUFFIX, 1)


def with_wide_families(families: dict) -> dict:
    """An MLA kernel's families and their 64-row twins ('streamk-mla' -> + 'streamk-mla64'), same values."""
    return {**families, **{f.replace(FAMILY_SUFFIX, WIDE_FAMILY_SUFFIX, 1): v for f, v in families.items()}}


def combine_pieces(v_dim: int) -> int:
    """CTAs an MLA combine spends on one output: v_dim / COMBINE_COLUMNS (at least 1)."""
    return max(1, v_dim // COMBINE_COLUMNS)


def critical_partials(n_peers):
    """Partials read one after another on the way to an MLA host's output: (MERGE_FANIN - 1) per level
    of the merge tree over n_peers + 1 partials, never more than the peers (numpy arrays or ints)."""
    levels = np.ceil(np.log(np.asarray(n_peers, np.float64) + 1.0) / np.log(MERGE_FANIN) - 1e-9)
    return np.minimum(n_peers, (MERGE_FANIN - 1) * levels)


def kv_token_bytes(head_dim: int, v_dim: int, latent: bool, kv_dtype_bytes: int) -> int:
    """K+V bytes one cached token costs one KV head: K and V apart (head_dim + v_dim), or the one
    latent vector both are read from (head_dim)."""
    return (head_dim if latent else head_dim + v_dim) * kv_dtype_bytes


def tile_flops_per_token(rows: int, head_dim: int, v_dim: int) -> float:
    """Tensor-core FLOPs a query tile of `rows` (padded) rows spends on one KV token: q·Kᵀ over
    head_dim and P·V over v_dim, 2 FLOPs per multiply-add (4·rows·d when K and V are d wide)."""
    return 2.0 * rows * (head_dim + v_dim)
