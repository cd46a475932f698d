"""Stream-K (LeanAttention) decode with the last-arrival epilogue (plan option epilogue=last): the
persistent grid and segments of lean_decode.py, but an output that straddles CTAs is merged by
whichever of its contributors arrives last, not by a host CTA spinning on its peers' flags.

Per segment (rows of the plan's segment table, `attnsim.simulator.partition.streamk_last`):
- ROLE_COMPLETE: the segment covers its output alone and stores o.
- ROLE_PEER (every contributor of a straddled output): stores its normalised fp32 partial in slot
  SEG_SLOT, then arrives at the output's counter flags[SEG_MERGE_LO] expecting SEG_MERGE_HI -
  SEG_MERGE_LO contributors (arrival.arrive: barrier, atomic add acq_rel at gpu scope). The one that
  arrives last resets the counter and merges slots [SEG_MERGE_LO, SEG_MERGE_HI) in slot order (KV
  order), its own re-read like the others: the bits do not depend on the arrival order.
No program waits: the grid needs no co-residency (it may exceed one wave), and the CPU interpreter,
running programs in id order, runs it unchanged. A program may contribute to two outputs (its first
and its last segment) and may merge either one; the merge then delays its later segments only.
Counters: int32 (the launcher's `flags`), 0 between launches; every launch leaves them at 0.
one_segment_kernel runs the same segment body (run_segment) for plans of exactly one segment per
program, without the segment loop: split-KV's fixed chunks (partition/splitkv.py, "Fixed chunks").

Cost accounting (d = head_dim, b = dtype bytes, G = query rows of a q-block, C = contributors of a
straddled output):
- per CTA: as lean_decode (its tiles of K and V, G·d·b of q per segment); a contributor writes
  G·(d + 1)·4 of partial and one 4-byte atomic (no flag polling);
- per straddled output, on its last arrival: C·G·(d + 1)·4 of partial reads (L2) in
  ceil(G / 4)·ceil(C·d / 1024) dependent rounds, G·d·b of o written, one counter reset.
- total: the KV cache once + q + o + 2·(contributors)·G·(d + 1)·4 of partials: the tree's partial
  traffic plus each host's own partial (the tree kept that in registers).
"""

import triton
import triton.language as tl

from attnsim.kernels.arrival import arrive, merge_store
from attnsim.kernels.partials import store_partial
from attnsim.kernels.tiles import (
    ROLE_PEER, SEG_COLS, SEG_MERGE_HI, SEG_MERGE_LO, SEG_ROLE, SEG_SLOT, attend_segment, store_output,
)


@triton.jit
def run_segment(seg, q_ptr, k_ptr, v_ptr, o_ptr, flags_ptr, o_part_ptr, lse_part_ptr, bt_ptr, k_scale_ptr, v_scale_ptr,
                stride_qb, stride_qh, stride_qi, stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn,
                stride_ob, stride_oh, stride_oi, stride_bt, qk_scale, group,
                BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr, PAGE_SIZE: tl.constexpr,
                Q_LEN: tl.constexpr, D_VALID: tl.constexpr = 0):
    """One segment row `seg`: attend its tiles; a ROLE_COMPLETE segment stores o, a ROLE_PEER one its
    partial, then arrives, and merges the output's slots if it arrived last (module docstring)."""
    o, lse, seq, q_head, q_pos, row_ok = attend_segment(
        seg, q_ptr, k_ptr, v_ptr, bt_ptr, k_scale_ptr, v_scale_ptr, stride_qb, stride_qh, stride_qi,
        stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn, stride_bt, qk_scale, group,
        BLOCK_M, BLOCK_N, HEAD_DIM, PAGE_SIZE, Q_LEN, D_VALID)
    if tl.load(seg + SEG_ROLE) == ROLE_PEER:
        store_partial(o_part_ptr, lse_part_ptr, tl.load(seg + SEG_SLOT), o, lse, row_ok, BLOCK_M, HEAD_DIM)
        lo = tl.load(seg + SEG_MERGE_LO)
        contributors = tl.load(seg + SEG_MERGE_HI) - lo
        if arrive(flags_ptr + lo, contributors):
            merge_store(o_ptr, o_part_ptr, lse_part_ptr, seg, lo, 1, contributors, group,
                        stride_ob, stride_oh, stride_oi, BLOCK_M, HEAD_DIM, Q_LEN, D_VALID)
    else:
        store_output(o_ptr, o, seq, q_head, q_pos, row_ok, stride_ob, stride_oh, stride_oi, HEAD_DIM, Q_LEN, D_VALID)


@triton.jit
def lean_last_kernel(
    q_ptr, k_ptr, v_ptr, o_ptr, seg_offsets_ptr, seg_ptr, flags_ptr, o_part_ptr, lse_part_ptr,
    bt_ptr, k_scale_ptr, v_scale_ptr,
    stride_qb, stride_qh, stride_qi, stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn,
    stride_ob, stride_oh, stride_oi, stride_bt, qk_scale, group,
    BLOCK_P: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr,
    PAGE_SIZE: tl.constexpr, Q_LEN: tl.constexpr, D_VALID: tl.constexpr = 0,
):
    # seg_offsets_ptr: int32 [grid + 1] CSR over seg_ptr int32 [n_segments, SEG_COLS]; flags_ptr int32
    # [slots] (counters at each straddled output's first slot), o_part_ptr fp32 [slots, BLOCK_M,
    # HEAD_DIM], lse_part_ptr fp32 [slots, BLOCK_M]; BLOCK_P (the tree's merge width) is not used.
    pid = tl.program_id(0)
    for s in range(tl.load(seg_offsets_ptr + pid), tl.load(seg_offsets_ptr + pid + 1)):
        run_segment(seg_ptr + s * SEG_COLS, q_ptr, k_ptr, v_ptr, o_ptr, flags_ptr, o_part_ptr, lse_part_ptr, bt_ptr,
                    k_scale_ptr, v_scale_ptr, stride_qb, stride_qh, stride_qi, stride_kb, stride_kh, stride_kn,
                    stride_vb, stride_vh, stride_vn, stride_ob, stride_oh, stride_oi, stride_bt, qk_scale, group,
                    BLOCK_M, BLOCK_N, HEAD_DIM, PAGE_SIZE, Q_LEN, D_VALID)


@triton.jit
def one_segment_kernel(
    q_ptr, k_ptr, v_ptr, o_ptr, seg_offsets_ptr, seg_ptr, flags_ptr, o_part_ptr, lse_part_ptr,
    bt_ptr, k_scale_ptr, v_scale_ptr,
    stride_qb, stride_qh, stride_qi, stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn,
    stride_ob, stride_oh, stride_oi, stride_bt, qk_scale, group,
    BLOCK_P: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr,
    PAGE_SIZE: tl.constexpr, Q_LEN: tl.constexpr, D_VALID: tl.constexpr = 0,
):
    # A plan of exactly one segment per program (split-KV's fixed chunks: partition/splitkv.py): program
    # p runs row p of seg_ptr int32 [grid, SEG_COLS], with no segment loop around the tile loop (whose
    # loop-carried state cost the 4-warp lean_last_kernel 168-255 registers and spills, cross-compiled
    # for sm_90); seg_offsets_ptr and BLOCK_P are not read.
    run_segment(seg_ptr + tl.program_id(0) * SEG_COLS, q_ptr, k_ptr, v_ptr, o_ptr, flags_ptr, o_part_ptr, lse_part_ptr,
                bt_ptr, k_scale_ptr, v_scale_ptr, stride_qb, stride_qh, stride_qi, stride_kb, stride_kh, stride_kn,
                stride_vb, stride_vh, stride_vn, stride_ob, stride_oh, stride_oi, stride_bt, qk_scale, group,
                BLOCK_M, BLOCK_N, HEAD_DIM, PAGE_SIZE, Q_LEN, D_VALID)
