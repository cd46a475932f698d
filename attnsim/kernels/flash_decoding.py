"""FlashDecoding: split-KV attention writing normalised partials, then a combine launch.

The split ranges are the plan's (`attnsim.simulator.partition.flashdecoding`): program p runs the
segments rows offsets[p]:offsets[p+1] of the table (0 or 1 of them: an output's trailing empty
splits have none). With one split per output the segment is ROLE_COMPLETE and writes o directly
(no combine launch); otherwise ROLE_PEER writes (o, lse) into its partial slot, which is its index
in the Reductions peer list, so the combine launch (one program per output, a Reductions row)
merges the contiguous slots peer_offsets[r]:peer_offsets[r + 1].

Cost accounting (d = head_dim, b = dtype bytes, G = q-heads per q-block, S = splits, n = tiles of a split):
- attention CTA: reads G·d·b (q) + 2·n·kv_tile·d·b (K, V), writes G·(d + 1)·4 (fp32 partial o + lse)
  or G·d·b (o) when S = 1.
- combine CTA:   reads S·R·(d + 1)·4 (BLOCK_P splits per load round), writes R·d·b: R = min(G, COMBINE_ROWS)
  rows, ceil(G / COMBINE_ROWS) CTAs per output.
- total: the KV cache once + 2·batch·q_heads·(d + 1)·4·S of partials (written, then read) + q + o;
  the partials are < 1% of the KV bytes whenever the context is >= 16·S tokens per split.
"""

import triton
import triton.language as tl

from attnsim.kernels.partials import merge_slots, store_partial
from attnsim.kernels.tiles import (
    Q_BLOCK_ROWS, ROLE_PEER, SEG_COLS, SEG_KV_HEAD, SEG_Q_BLOCK, SEG_ROLE, SEG_SEQ, SEG_SLOT, attend_segment,
    packed_rows, query_rows, store_output,
)


@triton.jit
def flash_decoding_kernel(
    q_ptr, k_ptr, v_ptr, o_ptr, seg_offsets_ptr, seg_ptr, flags_ptr, o_part_ptr, lse_part_ptr,
    bt_ptr, k_scale_ptr, v_scale_ptr,
    stride_qb, stride_qh, stride_qi, stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn,
    stride_ob, stride_oh, stride_oi, stride_bt, qk_scale, group,
    BLOCK_P: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr,
    PAGE_SIZE: tl.constexpr, Q_LEN: tl.constexpr, D_VALID: tl.constexpr = 0,
):
    # seg_offsets_ptr: int32 [grid + 1] CSR over seg_ptr int32 [n_segments, SEG_COLS]; flags_ptr and
    # BLOCK_P are unused here (the launcher passes every attention kernel the same arguments)
    pid = tl.program_id(0)
    first = tl.load(seg_offsets_ptr + pid)
    if first < tl.load(seg_offsets_ptr + pid + 1):
        seg = seg_ptr + first * SEG_COLS
        o, lse, seq, q_head, q_pos, row_ok = attend_segment(
            seg, q_ptr, k_ptr, v_ptr, bt_ptr, k_scale_ptr, v_scale_ptr, stride_qb, stride_qh, stride_qi,
            stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn, stride_bt, qk_scale, group,
            BLOCK_M, BLOCK_N, HEAD_DIM, PAGE_SIZE, Q_LEN, D_VALID)
        if tl.load(seg + SEG_ROLE) == ROLE_PEER:
            store_partial(o_part_ptr, lse_part_ptr, tl.load(seg + SEG_SLOT), o, lse, row_ok, BLOCK_M, HEAD_DIM)
        else:
            store_output(o_ptr, o, seq, q_head, q_pos, row_ok, stride_ob, stride_oh, stride_oi, HEAD_DIM, Q_LEN,
                         D_VALID)


@triton.jit
def combine_kernel(
    o_ptr, red_ptr, peer_offsets_ptr, o_part_ptr, lse_part_ptr, stride_ob, stride_oh, stride_oi, group,
    BLOCK_P: tl.constexpr, BLOCK_M: tl.constexpr, ROWS: tl.constexpr, HEAD_DIM: tl.constexpr, Q_LEN: tl.constexpr,
    D_VALID: tl.constexpr = 0,
):
    # red_ptr: int32 [n_outputs, SEG_COLS] (seq, kv_head, q_block in the segment columns);
    # partial slots of output r: peer_offsets[r] .. peer_offsets[r + 1] - 1 (slot = Reductions peer index),
    # each BLOCK_M rows (the attention's query tile). Program (r, piece) merges rows [piece·ROWS, + ROWS)
    # of output r (partition.flashdecoding.COMBINE_ROWS: a 64-row verify q-block is four CTAs, not one
    # merging 64 rows' partials a step at a time).
    r = tl.program_id(0)
    row0 = tl.program_id(1) * ROWS
    red = red_ptr + r * SEG_COLS
    # the three fields load together: the block's guard must not add a dependent load round before the merge
    seq = tl.load(red + SEG_SEQ).to(tl.int64)
    kv_head = tl.load(red + SEG_KV_HEAD).to(tl.int64)
    first_row = tl.load(red + SEG_Q_BLOCK) * Q_BLOCK_ROWS  # packed row of the q-block's row 0
    if BLOCK_M <= ROWS:  # one row block per q-block (decode): no guard, as a one-CTA-per-output combine
        has_rows = True
    else:  # a block past the q-block's rows (a second q-block's last ones) has none
        has_rows = row0 < tl.minimum(group * Q_LEN - first_row, BLOCK_M)
    if has_rows:
        rows = row0 + tl.arange(0, ROWS)
        q_head, q_pos, row_ok = packed_rows(kv_head, first_row + rows, group, Q_LEN)
        row_ok = row_ok & (rows < BLOCK_M)
        o = tl.zeros([ROWS, HEAD_DIM], tl.float32)
        lse = tl.full([ROWS], float("-inf"), tl.float32)
        o, lse = merge_slots(o, lse, tl.load(peer_offsets_ptr + r), tl.load(peer_offsets_ptr + r + 1),
                             peer_offsets_ptr, o_part_ptr + row0 * HEAD_DIM, lse_part_ptr + row0, row_ok, False,
                             BLOCK_P, ROWS, HEAD_DIM, BLOCK_M)
        store_output(o_ptr, o, seq, q_head, q_pos, row_ok, stride_ob, stride_oh, stride_oi, HEAD_DIM, Q_LEN, D_VALID)
