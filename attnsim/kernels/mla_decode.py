"""MLA decode (DeepSeek-V3, Kimi-K2 with absorbed projections): the query heads of a sequence share
one latent KV head, so they are packed as the rows of one query tile and the latent cache is read
once per q-block, not once per head. The plans are the ordinary ones (`simulator/partition/`):

- `mla_decode_kernel` runs FA2-style plans (one ROLE_COMPLETE segment per program), split-KV plans
  (FlashDecoding, balanced: ROLE_PEER segments store partials, `mla_combine_kernel` merges them);
- `mla_lean_kernel` runs stream-K and hybrid plans: a program walks its segments, a merging
  segment takes its peers' flags and merges their partials in-kernel (partials.acquire_flags; the
  same deadlock-freedom argument as lean_decode.py: peers have lower program ids, the grid is
  co-resident), a ROLE_PEER segment publishes its partial and raises its flag.
Both take the launcher's one signature (launch.Launcher.run) plus the constexpr LORA; k_ptr and
v_ptr are the same latent cache (V is its first LORA elements), k_scale / v_scale are not read.

Cost accounting (L = LORA, R = ROPE, D = L + R = head_dim, b = bf16/fp16 bytes, G = packed query
rows of a q-block (heads x q_len, <= 64), M = G padded to BLOCK_M, N = BLOCK_N tokens per tile):
- per KV tile: reads N·D·b of latent (K and V are the same bytes: 1,152 per token at 512 + 64),
  computes 2·M·N·D (q·Kᵀ over D) + 2·M·N·L (P·V over L) tensor-core FLOPs: at M = 64, 278 FLOPs
  per latent byte read, above the H200's ~206 FLOP/byte ridge (989 TFLOP/s over 4.8 TB/s); at
  M = 16 (16 heads, TP 8) 70, well below it: TP 8 is memory-bound, TP 1 compute-bound.
- per segment: reads G·D·b of q; writes G·L·b of o (COMPLETE, HOST) or G·(L + 1)·4 of fp32 partial
  (PEER); a merging segment reads G·(L + 1)·4 per partial it merges.
- combine (split plans): L / 128 CTAs an output, each reading its 128 columns of the S partials
  (S·G·(128 + 1)·4: the LSEs by every piece) and writing G·128·b.
- total: the latent cache once per q-block (128 heads at TP 1: twice) + q + o + partials.
Registers: acc [M, L] fp32 lives through the tile loop (L / 4 floats per thread per 16 rows at 4
warps); merges add one [M, L] accumulator, never a second partial tile (mla_tiles.merge_into).
"""

import triton
import triton.language as tl

from attnsim.simulator import mla

from attnsim.kernels.mla_tiles import (
    add_partials, attend_latent, load_query_pieces, merge_into, merge_weights, store_columns,
)
from attnsim.kernels.partials import store_partial
from attnsim.kernels.tiles import (
    ROLE_PEER, SEG_COLS, SEG_CONTEXT, SEG_FIRST_TILE, SEG_MERGE_HI, SEG_MERGE_LO, SEG_N_TILES, SEG_ROLE, SEG_SLOT,
    normalise, query_rows, row_offsets,
)

COMBINE_COLUMNS = tl.constexpr(mla.COMBINE_COLUMNS)  # output columns a combine program merges: [BLOCK_M, 128] fp32


@triton.jit
def attend_latent_segment(seg, q_ptr, kv_ptr, bt_ptr, stride_qb, stride_qh, stride_qi, stride_kb, stride_kh,
                          stride_kn, stride_bt, qk_scale, group, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                          LORA: tl.constexpr, ROPE: tl.constexpr, PAGE_SIZE: tl.constexpr, Q_LEN: tl.constexpr):
    """One plan segment over the latent cache. Returns (o [BLOCK_M, LORA] fp32 normalised, lse
    [BLOCK_M], seq, q_head [BLOCK_M], q_pos [BLOCK_M], row_ok [BLOCK_M]); a row that saw no token
    (verify only) has o = 0, lse = -inf."""
    seq, kv_head, q_head, q_pos, row_ok = query_rows(seg, group, BLOCK_M, Q_LEN)
    q_rows = row_offsets(seq, q_head, q_pos, stride_qb, stride_qh, stride_qi, Q_LEN)
    q_nope, q_rope = load_query_pieces(q_ptr, q_rows, row_ok, LORA, ROPE)
    context = tl.load(seg + SEG_CONTEXT)
    if PAGE_SIZE == 0:
        base = kv_ptr + seq * stride_kb + kv_head * stride_kh
    else:
        base = kv_ptr + kv_head * stride_kh
    acc, m_i, l_i = attend_latent(q_nope, q_rope, base, bt_ptr + seq * stride_bt, stride_kb, stride_kn,
                                  tl.load(seg + SEG_FIRST_TILE), tl.load(seg + SEG_N_TILES), context,
                                  context - Q_LEN + 1 + q_pos, qk_scale, BLOCK_M, BLOCK_N, LORA, ROPE, PAGE_SIZE,
                                  Q_LEN)
    o, lse = normalise(acc, m_i, l_i, Q_LEN)
    return o, lse, seq, q_head, q_pos, row_ok


@triton.jit
def run_segments(q_ptr, k_ptr, o_ptr, seg_offsets_ptr, seg_ptr, flags_ptr, o_part_ptr, lse_part_ptr, bt_ptr,
                 stride_qb, stride_qh, stride_qi, stride_kb, stride_kh, stride_kn, stride_ob, stride_oh, stride_oi,
                 stride_bt, qk_scale, group, SIGNAL: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_M: tl.constexpr,
                 BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr, PAGE_SIZE: tl.constexpr, Q_LEN: tl.constexpr,
                 LORA: tl.constexpr):
    """Program pid's segments, rows seg_offsets[pid]:[pid + 1] of seg_ptr int32 [n_segments, SEG_COLS].
    SIGNAL: partials are merged in this launch (flags raised by publishers, taken by mergers)."""
    pid = tl.program_id(0)
    for s in range(tl.load(seg_offsets_ptr + pid), tl.load(seg_offsets_ptr + pid + 1)):
        seg = seg_ptr + s * SEG_COLS
        o, lse, seq, q_head, q_pos, row_ok = attend_latent_segment(
            seg, q_ptr, k_ptr, bt_ptr, stride_qb, stride_qh, stride_qi, stride_kb, stride_kh, stride_kn, stride_bt,
            qk_scale, group, BLOCK_M, BLOCK_N, LORA, HEAD_DIM - LORA, PAGE_SIZE, Q_LEN)
        if SIGNAL:
            lo, hi = tl.load(seg + SEG_MERGE_LO), tl.load(seg + SEG_MERGE_HI)
            if hi > lo:
                o, lse = merge_into(o, lse, lo, hi, flags_ptr, o_part_ptr, lse_part_ptr, row_ok, True, BLOCK_P,
                                    BLOCK_M, LORA)
        if tl.load(seg + SEG_ROLE) == ROLE_PEER:
            slot = tl.load(seg + SEG_SLOT)
            store_partial(o_part_ptr, lse_part_ptr, slot, o, lse, row_ok, BLOCK_M, LORA)
            if SIGNAL:
                tl.debug_barrier()  # every thread's partial stores precede the flag
                tl.atomic_xchg(flags_ptr + slot, 1, sem="release", scope="gpu")
        else:
            o_rows = row_offsets(seq, q_head, q_pos, stride_ob, stride_oh, stride_oi, Q_LEN)
            store_columns(o_ptr, o, o_rows, row_ok, tl.arange(0, LORA))


@triton.jit
def mla_decode_kernel(
    q_ptr, k_ptr, v_ptr, o_ptr, seg_offsets_ptr, seg_ptr, flags_ptr, o_part_ptr, lse_part_ptr,
    bt_ptr, k_scale_ptr, v_scale_ptr,
    stride_qb, stride_qh, stride_qi, stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn,
    stride_ob, stride_oh, stride_oi, stride_bt, qk_scale, group,
    BLOCK_P: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr,
    PAGE_SIZE: tl.constexpr, Q_LEN: tl.constexpr, LORA: tl.constexpr,
):
    # FA2-style and split-KV plans: no in-kernel merge. v_ptr, k_scale_ptr, v_scale_ptr, stride_v*: unread.
    run_segments(q_ptr, k_ptr, o_ptr, seg_offsets_ptr, seg_ptr, flags_ptr, o_part_ptr, lse_part_ptr, bt_ptr,
                 stride_qb, stride_qh, stride_qi, stride_kb, stride_kh, stride_kn, stride_ob, stride_oh, stride_oi,
                 stride_bt, qk_scale, group, False, BLOCK_P, BLOCK_M, BLOCK_N, HEAD_DIM, PAGE_SIZE, Q_LEN, LORA)


@triton.jit
def mla_lean_kernel(
    q_ptr, k_ptr, v_ptr, o_ptr, seg_offsets_ptr, seg_ptr, flags_ptr, o_part_ptr, lse_part_ptr,
    bt_ptr, k_scale_ptr, v_scale_ptr,
    stride_qb, stride_qh, stride_qi, stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn,
    stride_ob, stride_oh, stride_oi, stride_bt, qk_scale, group,
    BLOCK_P: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr,
    PAGE_SIZE: tl.constexpr, Q_LEN: tl.constexpr, LORA: tl.constexpr,
):
    # Stream-K and hybrid plans: straddling outputs merged in-kernel along the launcher's merge tree.
    run_segments(q_ptr, k_ptr, o_ptr, seg_offsets_ptr, seg_ptr, flags_ptr, o_part_ptr, lse_part_ptr, bt_ptr,
                 stride_qb, stride_qh, stride_qi, stride_kb, stride_kh, stride_kn, stride_ob, stride_oh, stride_oi,
                 stride_bt, qk_scale, group, True, BLOCK_P, BLOCK_M, BLOCK_N, HEAD_DIM, PAGE_SIZE, Q_LEN, LORA)


@triton.jit
def mla_combine_kernel(
    o_ptr, red_ptr, peer_offsets_ptr, o_part_ptr, lse_part_ptr, stride_ob, stride_oh, stride_oi, group,
    BLOCK_P: tl.constexpr, BLOCK_M: tl.constexpr, HEAD_DIM: tl.constexpr, Q_LEN: tl.constexpr,
):
    # The combine launch of split plans (flash_decoding.combine_kernel's signature; HEAD_DIM = LORA,
    # the partials' width) on a grid (outputs, LORA / COMBINE_COLUMNS): program (r, c) merges columns
    # [c·COMBINE_COLUMNS, (c + 1)·COMBINE_COLUMNS) of output r's slots peer_offsets[r]:[r + 1]
    # (red_ptr int32 [n_outputs, SEG_COLS]); every piece weighs the slots from their LSEs alone.
    r = tl.program_id(0)
    seq, _kv_head, q_head, q_pos, row_ok = query_rows(red_ptr + r * SEG_COLS, group, BLOCK_M, Q_LEN)
    lo, hi = tl.load(peer_offsets_ptr + r), tl.load(peer_offsets_ptr + r + 1)
    none = tl.full([BLOCK_M], float("-inf"), tl.float32)
    m, total = merge_weights(none, lo, hi, peer_offsets_ptr, lse_part_ptr, row_ok, False, BLOCK_P, BLOCK_M)
    total = tl.where(total == 0.0, 1.0, total)
    o_rows = row_offsets(seq, q_head, q_pos, stride_ob, stride_oh, stride_oi, Q_LEN)
    if HEAD_DIM >= COMBINE_COLUMNS:
        cols = tl.program_id(1) * COMBINE_COLUMNS + tl.arange(0, COMBINE_COLUMNS)
        acc = tl.zeros([BLOCK_M, COMBINE_COLUMNS], tl.float32)
    else:  # reduced latent widths (tests): one piece
        cols = tl.arange(0, HEAD_DIM)
        acc = tl.zeros([BLOCK_M, HEAD_DIM], tl.float32)
    acc = add_partials(acc, m, lo, hi, o_part_ptr, lse_part_ptr, row_ok, cols, BLOCK_M, HEAD_DIM)
    store_columns(o_ptr, acc / total[:, None], o_rows, row_ok, cols)
