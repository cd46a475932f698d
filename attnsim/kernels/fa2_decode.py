"""FA2 decode: one program per output (sequence, kv-head, q-block), walking the whole context.

Program p runs segment p of the plan (`attnsim.simulator.partition.fa2`): tiles [0, n_tiles) of its
output, no split, no partials, no second launch.

Cost accounting (d = head_dim, b = q/o dtype bytes, b_kv = KV element bytes (1 for fp8), G = packed
query rows of the output's q-block (q_len x q-heads), L = context, P = page size):
- per CTA: reads G·d·b (q) + 2·L·d·b_kv (K and V, each token once) [+ 4 bytes per page of block
  table when paged], writes G·d·b (o); 4·BLOCK_M·d FLOPs of tile math per token (BLOCK_M = G padded).
- total:   2·Σ_i L_i·kv_heads·d·b_kv + 2·batch·q_heads·q_len·d·b, the minimum any decode kernel must move.
- grid = batch · kv_heads · q_blocks, so at small batch x heads most SMs idle (32 CTAs on 132 SMs)
  and a single CTA's streaming rate (latency-bound, DOMAIN.md §4) sets the time.
"""

import triton
import triton.language as tl

from attnsim.kernels.tiles import SEG_COLS, attend_segment, store_output


@triton.jit
def fa2_decode_kernel(
    q_ptr, k_ptr, v_ptr, o_ptr, seg_offsets_ptr, seg_ptr, flags_ptr, o_part_ptr, lse_part_ptr,
    bt_ptr, k_scale_ptr, v_scale_ptr,
    stride_qb, stride_qh, stride_qi, stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn,
    stride_ob, stride_oh, stride_oi, stride_bt, qk_scale, group,
    BLOCK_P: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr,
    PAGE_SIZE: tl.constexpr, Q_LEN: tl.constexpr, D_VALID: tl.constexpr = 0,
):
    # The launcher's one signature for every attention kernel (launch.Launcher.run); FA2 reads only
    # seg_ptr: int32 [grid, SEG_COLS], row p being program p's only segment (ROLE_COMPLETE).
    seg = seg_ptr + tl.program_id(0) * SEG_COLS
    o, _lse, seq, q_head, q_pos, row_ok = attend_segment(
        seg, q_ptr, k_ptr, v_ptr, bt_ptr, k_scale_ptr, v_scale_ptr, stride_qb, stride_qh, stride_qi,
        stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn, stride_bt, qk_scale, group,
        BLOCK_M, BLOCK_N, HEAD_DIM, PAGE_SIZE, Q_LEN, D_VALID)
    store_output(o_ptr, o, seq, q_head, q_pos, row_ok, stride_ob, stride_oh, stride_oi, HEAD_DIM, Q_LEN, D_VALID)
