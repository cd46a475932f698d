"""Stream-K (LeanAttention) decode: a persistent grid, each program running exactly the segments the
plan (`attnsim.simulator.partition.streamk`) assigns it, possibly of several outputs.

Roles (schedule.py): ROLE_COMPLETE writes o; ROLE_PEER writes its normalised partial (o, lse) into
slot p (its program id; a program has at most one peer segment, its first) and raises flag p;
ROLE_HOST (a program's last segment) waits for the flags of its peers, merges their partials into
its own with the LSE algebra and writes o.

Flags: int32 [grid], 0 between launches. A peer publishes with a CTA barrier then a release
exchange to 1; its host acquires with a compare-and-swap 1 -> 0, which both waits and re-arms the
flag for the next launch (each flag has exactly one consumer). So no memset launch per call, no
per-call scalar, and CUDA-graph replays stay correct. Deadlock freedom is the plan's: grid <=
resident capacity (all programs co-resident) and peers have lower program ids than their host
(launch.py checks both), which also lets the CPU interpreter run programs in id order.

Cost accounting (d = head_dim, b = dtype bytes, G = q-heads per q-block, T = total KV tiles, g = grid):
- per CTA: reads ceil(T / g) or ceil(T / g) - 1 tiles of K and V (2·kv_tile·d·b each) plus
  G·d·b of q per segment; peers write G·(d + 1)·4 of partials, hosts read that per peer, every
  COMPLETE or HOST segment writes G·d·b of o.
- total: the KV cache once + q + o + 2·(straddling outputs' peers)·G·(d + 1)·4; at most g - 1
  outputs straddle, so partial traffic is bounded by the grid, not by the context.
"""

import triton
import triton.language as tl

from attnsim.kernels.tiles import (
    SEG_COLS, SEG_REDUCTION, SEG_ROLE, attend_segment, merge_partial, store_output, store_partial,
)

ROLE_PEER = tl.constexpr(1)  # attnsim.simulator.schedule.ROLE_PEER / ROLE_HOST
ROLE_HOST = tl.constexpr(2)


@triton.jit
def publish_partial(flags_ptr, o_part_ptr, lse_part_ptr, pid, o, lse, row_ok,
                    BLOCK_M: tl.constexpr, HEAD_DIM: tl.constexpr):
    """Peer: write the partial to slot pid, then release flag pid (after all threads stored)."""
    store_partial(o_part_ptr, lse_part_ptr, pid, o, lse, row_ok, BLOCK_M, HEAD_DIM)
    tl.debug_barrier()
    tl.atomic_xchg(flags_ptr + pid, 1, sem="release", scope="gpu")


@triton.jit
def gather_peers(o, lse, row, peer_offsets_ptr, peer_cta_ptr, flags_ptr, o_part_ptr, lse_part_ptr, row_ok,
                 BLOCK_M: tl.constexpr, HEAD_DIM: tl.constexpr):
    """Host: for each peer of reductions row `row`, wait for its flag (and re-arm it), merge its partial."""
    for i in range(tl.load(peer_offsets_ptr + row), tl.load(peer_offsets_ptr + row + 1)):
        peer = tl.load(peer_cta_ptr + i)
        while tl.atomic_cas(flags_ptr + peer, 1, 0, sem="acquire", scope="gpu") != 1:
            pass
        tl.debug_barrier()
        o, lse = merge_partial(o, lse, o_part_ptr, lse_part_ptr, peer, row_ok, BLOCK_M, HEAD_DIM)
    return o, lse


@triton.jit
def lean_decode_kernel(
    q_ptr, k_ptr, v_ptr, o_ptr, lengths_ptr, seg_offsets_ptr, seg_ptr, peer_offsets_ptr, peer_cta_ptr,
    flags_ptr, o_part_ptr, lse_part_ptr,
    stride_qb, stride_qh, stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn,
    stride_ob, stride_oh, qk_scale,
    GROUP: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr,
):
    # seg_offsets_ptr: int32 [grid + 1] CSR over seg_ptr int32 [n_segments, SEG_COLS];
    # peer_offsets_ptr: int32 [n_reductions + 1] CSR over peer_cta_ptr int32 [n_peers]
    pid = tl.program_id(0)
    for s in range(tl.load(seg_offsets_ptr + pid), tl.load(seg_offsets_ptr + pid + 1)):
        seg = seg_ptr + s * SEG_COLS
        o, lse, seq, q_head, row_ok = attend_segment(
            seg, q_ptr, k_ptr, v_ptr, lengths_ptr, stride_qb, stride_qh, stride_kb, stride_kh, stride_kn,
            stride_vb, stride_vh, stride_vn, qk_scale, GROUP, BLOCK_M, BLOCK_N, HEAD_DIM)
        role = tl.load(seg + SEG_ROLE)
        if role == ROLE_PEER:
            publish_partial(flags_ptr, o_part_ptr, lse_part_ptr, pid, o, lse, row_ok, BLOCK_M, HEAD_DIM)
        else:
            if role == ROLE_HOST:
                o, lse = gather_peers(o, lse, tl.load(seg + SEG_REDUCTION), peer_offsets_ptr, peer_cta_ptr,
                                      flags_ptr, o_part_ptr, lse_part_ptr, row_ok, BLOCK_M, HEAD_DIM)
            store_output(o_ptr, o, seq, q_head, row_ok, stride_ob, stride_oh, HEAD_DIM)
