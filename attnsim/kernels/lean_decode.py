"""Stream-K (LeanAttention) decode: a persistent grid, each program running exactly the segments the
plan (`attnsim.simulator.partition.streamk`) assigns it, possibly of several outputs.

Roles (schedule.py): ROLE_COMPLETE writes o; ROLE_PEER writes its normalised partial (o, lse) into
its slot and raises that slot's flag (a program has at most one peer segment, its first);
ROLE_HOST (a program's last segment) merges its peers' partials into its own and writes o.

Merge tree: an output can straddle hundreds of programs (MQA at batch 1: all of them), and one
host merging P partials one after another costs P memory round trips. The launcher therefore
spreads each Reductions row over a tree (launch.merge_tree): peers whose chunk holds only this
output (all but the lowest-id peer, which may go on to other outputs) merge the partials of up to
BLOCK_P lower-id peers before publishing, the host merges what is left. Slots are numbered so
that every merger's are contiguous: a segment merges slots [merge_lo, merge_hi) (often empty).
Depth ~log_{BLOCK_P+1}(P); each merge step takes BLOCK_P flags and partials at once
(partials.merge_slots).

Flags: int32 [slots], 0 between launches. A publisher stores its partial, passes a CTA barrier and
exchanges its flag to 1 (release); the one consumer of that slot exchanges it back to 0 (acquire),
which both waits and re-arms it. So there is no memset launch and no per-call epoch, and CUDA-graph
replays stay correct. Deadlock freedom: grid <= resident capacity (all programs co-resident) and
every slot a segment waits for has a lower program id (launch.py checks both), which also lets the
CPU interpreter, running programs in id order, find every flag already raised.

Cost accounting (d = head_dim, b = dtype bytes, G = q-heads per q-block, T = total KV tiles, g = grid):
- per CTA: reads ceil(T / g) or ceil(T / g) - 1 tiles of K and V (2·kv_tile·d·b each) plus
  G·d·b of q per segment; a publisher writes G·(d + 1)·4 of partial; a merging segment reads that
  per slot it merges; every COMPLETE or HOST segment writes G·d·b of o.
- total: the KV cache once + q + o + 2·(peers)·G·(d + 1)·4 of partials; at most g - 1 outputs
  straddle and peers <= g, so partial traffic is bounded by the grid, not by the context.
"""

import triton
import triton.language as tl

from attnsim.kernels.partials import merge_slots, store_partial
from attnsim.kernels.tiles import (
    ROLE_PEER, SEG_COLS, SEG_MERGE_HI, SEG_MERGE_LO, SEG_ROLE, SEG_SLOT, attend_segment, store_output,
)


@triton.jit
def lean_decode_kernel(
    q_ptr, k_ptr, v_ptr, o_ptr, seg_offsets_ptr, seg_ptr, flags_ptr, o_part_ptr, lse_part_ptr,
    bt_ptr, k_scale_ptr, v_scale_ptr,
    stride_qb, stride_qh, stride_qi, stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn,
    stride_ob, stride_oh, stride_oi, stride_bt, qk_scale, group,
    BLOCK_P: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr,
    PAGE_SIZE: tl.constexpr, Q_LEN: tl.constexpr, D_VALID: tl.constexpr = 0,
):
    # seg_offsets_ptr: int32 [grid + 1] CSR over seg_ptr int32 [n_segments, SEG_COLS];
    # flags_ptr int32 [slots], o_part_ptr fp32 [slots, BLOCK_M, HEAD_DIM], lse_part_ptr fp32 [slots, BLOCK_M]
    pid = tl.program_id(0)
    for s in range(tl.load(seg_offsets_ptr + pid), tl.load(seg_offsets_ptr + pid + 1)):
        seg = seg_ptr + s * SEG_COLS
        o, lse, seq, q_head, q_pos, row_ok = attend_segment(
            seg, q_ptr, k_ptr, v_ptr, bt_ptr, k_scale_ptr, v_scale_ptr, stride_qb, stride_qh, stride_qi,
            stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn, stride_bt, qk_scale, group,
            BLOCK_M, BLOCK_N, HEAD_DIM, PAGE_SIZE, Q_LEN, D_VALID)
        o, lse = merge_slots(o, lse, tl.load(seg + SEG_MERGE_LO), tl.load(seg + SEG_MERGE_HI), flags_ptr,
                             o_part_ptr, lse_part_ptr, row_ok, True, BLOCK_P, BLOCK_M, HEAD_DIM, BLOCK_M)
        if tl.load(seg + SEG_ROLE) == ROLE_PEER:
            slot = tl.load(seg + SEG_SLOT)
            store_partial(o_part_ptr, lse_part_ptr, slot, o, lse, row_ok, BLOCK_M, HEAD_DIM)
            tl.debug_barrier()  # every thread's partial stores precede the flag
            tl.atomic_xchg(flags_ptr + slot, 1, sem="release", scope="gpu")
        else:
            store_output(o_ptr, o, seq, q_head, q_pos, row_ok, stride_ob, stride_oh, stride_oi, HEAD_DIM, Q_LEN,
                         D_VALID)
