"""Device helpers every decode kernel shares: read a plan segment, run the online softmax over its
KV tiles, and store results (partials and their merges: kernels/partials.py). One copy of the tile
loop serves FA2, FlashDecoding and stream-K; the kernels differ only in which segments a program
takes and where results go.

Layouts (the launcher checks them):
- q [batch, q_heads, Q_LEN, D], o like q (a 3-D [batch, q_heads, D] is Q_LEN = 1); D = HEAD_DIM, or D_VALID
  where the model's head dim is not a power of two (FA2's 96, 160-224): the tiles are HEAD_DIM (a power of two)
  wide and every load and store of q, K, V and o is masked to the D_VALID columns (0: none padded), so the
  padded columns are zeros in q, K and V and never written; partials keep the tile's width.
- K/V, contiguous (PAGE_SIZE = 0): [batch, kv_heads, max_context, HEAD_DIM]; strides (b, h, n).
  Paged (PAGE_SIZE > 0): a pool [num_pages, PAGE_SIZE, kv_heads, HEAD_DIM] whose strides come in the
  same three slots as (page, h, row); block_table int32 [batch, pages per sequence]: token t of
  sequence s is row t % PAGE_SIZE of page block_table[s, t // PAGE_SIZE]. Tiles and pages are
  powers of two, so a tile lies inside one page (one index load per tile: paged_rows) or holds whole
  pages, whose rows the tile loop loads as [pages, page, head_dim] (one index load per page: page_tile).
  Unit stride on the last dimension (16-byte vector loads) either way.
- fp8 KV cache (K/V float8_e4m3fn, detected from the pointer type): k_scale, v_scale fp32 [kv_heads],
  each loaded once per segment; the K scale is folded into the score scale, the V scale into the
  normalised output. Both dots run in fp16 whatever q's dtype (fp16_query): e4m3 -> fp16 is one
  hardware conversion per two values and exact, where e4m3 -> bf16 goes through fp16 and costs one
  more instruction per value; fp16 holds p in [0, 1] with 3 more bits than bf16. V is converted in
  the layout it was loaded in and only then moved into the mma operand layout (opaque_move), as
  fp16 through shared memory (ldmatrix.trans), not gathered byte by byte. docs/kernels.md, "fp8 KV".
- segment table: int32 [n_segments, SEG_COLS], columns SEG_* below, rows sorted by program.
- partials (kernels/partials.py): o_part fp32 [slots, BLOCK_M, HEAD_DIM] (normalised), lse_part fp32
  [slots, BLOCK_M], flags int32 [slots]. The launcher numbers slots so that whoever merges them reads
  a contiguous range: no index indirection between a merger and the partials it loads.

Units: scores are kept in log2 units (q.k * sm_scale * log2(e)) so every exponential is an exp2;
an LSE here is log2(sum_j 2^s_j). Rows of the query tile pack a kv-head's q-heads and query
positions (GQA packing, position-major): packed row r = q_block * Q_BLOCK_ROWS + local row is query
position r // group of q-head kv_head * group + r % group. Verify (Q_LEN > 1) is causal within the
block: position i of a sequence with context L attends tokens [0, L - Q_LEN + 1 + i).
"""

import triton
import triton.language as tl

from attnsim.kernels.fastlaunch import interpreting
from attnsim.kernels.tile_loads import head_columns, load_rows, page_tile, paged_rows

# Compiled for a GPU (not run by Triton's CPU interpreter, which has no inline PTX): at import.
ON_DEVICE = tl.constexpr(not interpreting())

SEG_COLS = tl.constexpr(10)
(SEG_SEQ, SEG_KV_HEAD, SEG_Q_BLOCK, SEG_FIRST_TILE, SEG_N_TILES, SEG_ROLE, SEG_CONTEXT, SEG_SLOT, SEG_MERGE_LO,
 SEG_MERGE_HI) = (tl.constexpr(i) for i in range(10))
# SEG_CONTEXT: the sequence's tokens (in the row, to save a dependent load before the first KV load).
# SEG_SLOT: the partial slot a ROLE_PEER segment writes; [SEG_MERGE_LO, SEG_MERGE_HI): the slots it merges.
Q_BLOCK_ROWS = tl.constexpr(64)  # attnsim.simulator.workload.Q_BLOCK_ROWS (a test ties them)
ROLE_PEER = tl.constexpr(1)  # attnsim.simulator.schedule.ROLE_PEER (a test ties them)


@triton.jit
def query_rows(seg_ptr, group, BLOCK_M: tl.constexpr, Q_LEN: tl.constexpr):
    """(seq int64, kv_head int64, q_head [BLOCK_M], q_pos [BLOCK_M], row_ok [BLOCK_M]) of the
    segment at seg_ptr: the q-head and query position of each packed row."""
    seq = tl.load(seg_ptr + SEG_SEQ).to(tl.int64)
    kv_head = tl.load(seg_ptr + SEG_KV_HEAD).to(tl.int64)
    row = tl.load(seg_ptr + SEG_Q_BLOCK) * Q_BLOCK_ROWS + tl.arange(0, BLOCK_M)
    q_head, q_pos, row_ok = packed_rows(kv_head, row, group, Q_LEN)
    return seq, kv_head, q_head, q_pos, row_ok


@triton.jit
def packed_rows(kv_head, row, group, Q_LEN: tl.constexpr):
    """(q_head, q_pos, row_ok) of packed rows `row` (any shape) of kv_head's query tile."""
    if Q_LEN == 1:
        head_in_group = row
        q_pos = row * 0
    else:
        head_in_group = row % group
        q_pos = row // group
    return kv_head * group + head_in_group, q_pos, row < group * Q_LEN


@triton.jit
def row_offsets(seq, q_head, q_pos, stride_b, stride_h, stride_i, Q_LEN: tl.constexpr):
    """Element offsets [BLOCK_M] of packed query rows in q or o ([batch, q_heads, Q_LEN, HEAD_DIM])."""
    offs = seq * stride_b + q_head * stride_h
    if Q_LEN > 1:
        offs += q_pos * stride_i
    return offs


@triton.jit
def attend_tiles(q, k_ptr, v_ptr, bt_row_ptr, stride_kp, stride_kn, stride_vp, stride_vn, first_tile, n_tiles,
                 context, limit, qk_scale, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr,
                 PAGE_SIZE: tl.constexpr, Q_LEN: tl.constexpr, D_VALID: tl.constexpr = 0):
    """Online softmax of q [BLOCK_M, HEAD_DIM] over KV tiles [first_tile, first_tile + n_tiles).

    k_ptr / v_ptr point at token 0 of one (sequence, kv_head) (contiguous), or at the kv_head's
    column of the page pool (paged: pages found through bt_row_ptr, the sequence's block-table
    row). Tokens >= context are masked; with Q_LEN > 1 row r also masks tokens >= limit[r]
    (causal verify), so a row may see no token in a segment: its m stays -inf and l 0.
    An fp8 cache runs two loops over the same tiles in order: the tiles whose every token every row
    sees (below context - Q_LEN + 1, the least limit) load and score without masks, the rest (at
    most the last one or two) with them; the masks cost 12-20% of an fp8 tile's instructions (d 128,
    sm_90: FlashDecoding 683 -> 601, stream-K 744 -> 595; docs/kernels.md) and change no value.
    16-bit caches keep one masked loop (their kernels as timed and calibrated; unmasked, a bf16
    FlashDecoding tile is 335 -> 287 instructions, but at 128 registers with 8 B of spills).
    The dots run in q's dtype (fp32 under the CPU interpreter for bf16, whose NumPy has no bf16
    matmul: the launcher upcasts q there); with an fp8 cache in fp16, q from fp16_query and qk_scale
    then per row [BLOCK_M].
    Returns acc [BLOCK_M, HEAD_DIM] fp32 (unnormalised), m [BLOCK_M] (running max, log2 units) and
    l [BLOCK_M] (running sum of 2^(s - m)).
    """
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM], tl.float32)
    end = first_tile + n_tiles
    full_end = first_tile  # every tile masked
    if k_ptr.dtype.element_ty == tl.float8e4nv:
        full_end = tl.maximum(tl.minimum(end, (context - Q_LEN + 1) // BLOCK_N), first_tile)
    for tile in range(first_tile, full_end):
        acc, m_i, l_i = attend_tile(q, k_ptr, v_ptr, bt_row_ptr, stride_kp, stride_kn, stride_vp, stride_vn, tile,
                                    context, limit, qk_scale, acc, m_i, l_i, BLOCK_N, HEAD_DIM, PAGE_SIZE, Q_LEN,
                                    False, D_VALID)
    for tile in range(full_end, end):
        acc, m_i, l_i = attend_tile(q, k_ptr, v_ptr, bt_row_ptr, stride_kp, stride_kn, stride_vp, stride_vn, tile,
                                    context, limit, qk_scale, acc, m_i, l_i, BLOCK_N, HEAD_DIM, PAGE_SIZE, Q_LEN,
                                    True, D_VALID)
    return acc, m_i, l_i


@triton.jit
def attend_tile(q, k_ptr, v_ptr, bt_row_ptr, stride_kp, stride_kn, stride_vp, stride_vn, tile, context, limit,
                qk_scale, acc, m_i, l_i, BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr, PAGE_SIZE: tl.constexpr,
                Q_LEN: tl.constexpr, MASKED: tl.constexpr, D_VALID: tl.constexpr = 0):
    """KV tile `tile` into the online softmax (attend_tiles): loaded and scored with the context and causal
    masks if MASKED, else as a tile every row sees whole. Returns the new (acc, m_i, l_i)."""
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, HEAD_DIM)
    offs_tok = tile * BLOCK_N + offs_n  # [BLOCK_N]
    valid = offs_tok < context
    if PAGE_SIZE == 0 or BLOCK_N <= PAGE_SIZE:  # contiguous, or a tile inside one page
        if PAGE_SIZE == 0:  # [BLOCK_N] pointers to each token's K and V row
            k_rows = k_ptr + offs_tok * stride_kn
            v_rows = v_ptr + offs_tok * stride_vn
        else:
            k_rows, v_rows = paged_rows(k_ptr, v_ptr, bt_row_ptr, tile, offs_n, valid, stride_kp, stride_kn,
                                        stride_vp, stride_vn, BLOCK_N, PAGE_SIZE)
        k, v = load_rows(k_rows, v_rows, valid, offs_d, MASKED, D_VALID)
    else:  # a tile of whole pages: one index per page, K/V as [pages, PAGE_SIZE, HEAD_DIM] (page_tile)
        k, v = page_tile(k_ptr, v_ptr, bt_row_ptr, tile, context, stride_kp, stride_kn, stride_vp, stride_vn,
                         BLOCK_N, HEAD_DIM, PAGE_SIZE, MASKED, D_VALID)
    return tile_step(q, k, v, acc, m_i, l_i, valid, offs_tok, limit, qk_scale, Q_LEN, MASKED)


@triton.jit
def tile_step(q, k, v, acc, m_i, l_i, valid, offs_tok, limit, qk_scale, Q_LEN: tl.constexpr, MASKED: tl.constexpr):
    """One block of KV rows (k, v [N, HEAD_DIM]: a tile, or one page of a tile) into the online softmax
    (acc [BLOCK_M, HEAD_DIM], m_i, l_i [BLOCK_M]); valid / offs_tok [N], read only if MASKED. Returns the
    new (acc, m_i, l_i)."""
    if k.dtype == tl.float8e4nv:  # q fp16; per-row score scale
        s = tl.dot(q, tl.trans(k.to(tl.float16))) * qk_scale[:, None]  # [BLOCK_M, N] fp32, log2 units
        v = opaque_move(v.to(tl.float16))
    else:
        s = tl.dot(q, tl.trans(k.to(q.dtype))) * qk_scale
    p, alpha, m_i, l_i = softmax_step(s, m_i, l_i, valid, offs_tok, limit, Q_LEN, MASKED)
    return acc * alpha[:, None] + tl.dot(p.to(q.dtype), v.to(q.dtype)), m_i, l_i


@triton.jit
def opaque_move(x):
    """x (16-bit values), unchanged through a register move the compiler cannot see into.

    Triton moves a conversion into the dot operand layout above the elementwise ops that feed it
    (to save a shared-memory round trip); above fp8 -> fp16 that means V loaded from shared memory
    as bytes in the mma layout: one LDS.U8 per value, since ldmatrix cannot transpose 8-bit data on
    sm_90. Behind this move the layout change stays after the conversion: 16-byte fp8 loads, packed
    conversions, then fp16 through shared memory by ldmatrix.trans. ptxas drops the move itself.
    Identity under the CPU interpreter."""
    if ON_DEVICE:
        return tl.inline_asm_elementwise("mov.b32 $0, $1;", "=r,r", [x], dtype=x.dtype, is_pure=False, pack=2)
    return x


@triton.jit
def fp16_query(q, BLOCK_M: tl.constexpr):
    """(q16 [BLOCK_M, HEAD_DIM] fp16, unscale [BLOCK_M] fp32): an fp8 cache's dot operand. fp16 q is
    taken as it is (unscale 1). Any other q (bf16; fp32 under the interpreter) has each row scaled by
    a power of two that brings its largest |value| into [2^13, 2^14), so that no value overflows
    fp16 and bf16's 8-bit mantissas stay exact (only values below 2^-30 of their row's largest
    lose bits, in fp16's subnormals); unscale is that power's inverse, for the row's scores.
    Powers of two are built from exponent bits: exact, no exp2/log2 approximation."""
    if q.dtype == tl.float16:
        return q, tl.full([BLOCK_M], 1.0, tl.float32)
    amax = tl.max(tl.abs(q.to(tl.float32)), 1)  # [BLOCK_M]
    amax_exp = (amax.to(tl.int32, bitcast=True) >> 23) & 0xFF  # biased exponent; 0 for 0 and subnormals
    scale_exp = tl.minimum(tl.maximum(127 + 140 - amax_exp, 1), 253)  # 2^(13 - (amax_exp - 127)) biased
    scale = (scale_exp << 23).to(tl.float32, bitcast=True)
    unscale = ((254 - scale_exp) << 23).to(tl.float32, bitcast=True)
    return (q.to(tl.float32) * scale[:, None]).to(tl.float16), unscale


@triton.jit
def softmax_step(s, m_i, l_i, valid, offs_tok, limit, Q_LEN: tl.constexpr, MASKED: tl.constexpr = True):
    """One tile of the online softmax: scores s [BLOCK_M, BLOCK_N] (log2 units) masked to the valid
    tokens (and, verify, to each row's causal limit) -> (p [BLOCK_M, BLOCK_N], alpha [BLOCK_M]: the
    rescale of what was accumulated, the new running max m, the new running sum l). Not MASKED: a tile
    every row sees whole (attend_tiles), m stays finite after it."""
    if not MASKED:
        m_new = tl.maximum(m_i, tl.max(s, 1))
        m_ref = m_new
    elif Q_LEN == 1:
        s = tl.where(valid[None, :], s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))  # finite: every tile holds >= 1 valid token
        m_ref = m_new
    else:
        s = tl.where(offs_tok[None, :] < limit[:, None], s, float("-inf"))  # limit <= context
        m_new = tl.maximum(m_i, tl.max(s, 1))
        m_ref = tl.where(m_new == float("-inf"), 0.0, m_new)  # a row with no key yet: p = 0, not NaN
    alpha = tl.exp2(m_i - m_ref)
    p = tl.exp2(s - m_ref[:, None])
    return p, alpha, m_new, l_i * alpha + tl.sum(p, 1)


@triton.jit
def normalise(acc, m_i, l_i, Q_LEN: tl.constexpr):
    """(o = acc / l [BLOCK_M, D] fp32, lse [BLOCK_M]) of a finished online softmax; a verify row that
    saw no token has o = 0 and lse = -inf, a partial that weighs nothing in a merge."""
    if Q_LEN > 1:  # rows that saw no token in this segment
        empty = l_i == 0.0
        l_i = tl.where(empty, 1.0, l_i)
        lse = tl.where(empty, float("-inf"), m_i + tl.log2(l_i))
    else:
        lse = m_i + tl.log2(l_i)
    return acc / l_i[:, None], lse


@triton.jit
def load_query(q_ptr, seq, q_head, q_pos, row_ok, stride_qb, stride_qh, stride_qi, HEAD_DIM: tl.constexpr,
               Q_LEN: tl.constexpr, D_VALID: tl.constexpr = 0):
    """The packed query tile [BLOCK_M, HEAD_DIM] in q's dtype; padded rows (and columns past D_VALID) are 0."""
    offs_d = tl.arange(0, HEAD_DIM)
    return tl.load(q_ptr + row_offsets(seq, q_head, q_pos, stride_qb, stride_qh, stride_qi, Q_LEN)[:, None]
                   + offs_d[None, :], mask=head_columns(row_ok[:, None], offs_d, D_VALID), other=0.0)


@triton.jit
def attend_range(q, k_ptr, v_ptr, bt_ptr, k_scale_ptr, v_scale_ptr, seq, kv_head, q_pos, first_tile, n_tiles,
                 context, stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn, stride_bt, qk_scale,
                 BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr, PAGE_SIZE: tl.constexpr,
                 Q_LEN: tl.constexpr, D_VALID: tl.constexpr = 0):
    """Attend q [BLOCK_M, HEAD_DIM] over KV tiles [first_tile, first_tile + n_tiles) of (seq, kv_head),
    whose sequence holds `context` tokens. Returns (o [BLOCK_M, HEAD_DIM] fp32 normalised, lse
    [BLOCK_M]); a row that saw no token (verify only) has o = 0 and lse = -inf, a partial that
    weighs nothing in a merge. n_tiles >= 1 for q_len 1 (an empty range would give 0 / 0)."""
    if k_ptr.dtype.element_ty == tl.float8e4nv:  # fp8 cache: fp16 dots, scores and outputs in real units
        q, unscale = fp16_query(q, BLOCK_M)
        qk_scale = qk_scale * tl.load(k_scale_ptr + kv_head) * unscale  # [BLOCK_M]
    if PAGE_SIZE == 0:  # the (sequence, kv_head) base of a contiguous cache
        k_base, v_base = k_ptr + seq * stride_kb + kv_head * stride_kh, v_ptr + seq * stride_vb + kv_head * stride_vh
    else:  # the kv_head column of the pool; pages through the sequence's block-table row
        k_base, v_base = k_ptr + kv_head * stride_kh, v_ptr + kv_head * stride_vh
    acc, m_i, l_i = attend_tiles(
        q, k_base, v_base, bt_ptr + seq * stride_bt, stride_kb, stride_kn, stride_vb, stride_vn,
        first_tile, n_tiles, context, context - Q_LEN + 1 + q_pos,
        qk_scale, BLOCK_M, BLOCK_N, HEAD_DIM, PAGE_SIZE, Q_LEN, D_VALID)
    o, lse = normalise(acc, m_i, l_i, Q_LEN)
    if v_ptr.dtype.element_ty == tl.float8e4nv:
        o = o * tl.load(v_scale_ptr + kv_head)
    return o, lse


@triton.jit
def attend_segment(seg_ptr, q_ptr, k_ptr, v_ptr, bt_ptr, k_scale_ptr, v_scale_ptr,
                   stride_qb, stride_qh, stride_qi, stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn,
                   stride_bt, qk_scale, group, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                   HEAD_DIM: tl.constexpr, PAGE_SIZE: tl.constexpr, Q_LEN: tl.constexpr, D_VALID: tl.constexpr = 0):
    """Attend one plan segment (attend_range over its tiles). Returns (o [BLOCK_M, HEAD_DIM] fp32
    normalised, lse [BLOCK_M], seq, q_head [BLOCK_M], q_pos [BLOCK_M], row_ok [BLOCK_M])."""
    seq, kv_head, q_head, q_pos, row_ok = query_rows(seg_ptr, group, BLOCK_M, Q_LEN)
    q = load_query(q_ptr, seq, q_head, q_pos, row_ok, stride_qb, stride_qh, stride_qi, HEAD_DIM, Q_LEN, D_VALID)
    context = tl.load(seg_ptr + SEG_CONTEXT)
    o, lse = attend_range(q, k_ptr, v_ptr, bt_ptr, k_scale_ptr, v_scale_ptr, seq, kv_head, q_pos,
                          tl.load(seg_ptr + SEG_FIRST_TILE), tl.load(seg_ptr + SEG_N_TILES), context,
                          stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn, stride_bt, qk_scale,
                          BLOCK_M, BLOCK_N, HEAD_DIM, PAGE_SIZE, Q_LEN, D_VALID)
    return o, lse, seq, q_head, q_pos, row_ok


@triton.jit
def store_output(o_ptr, o, seq, q_head, q_pos, row_ok, stride_ob, stride_oh, stride_oi, HEAD_DIM: tl.constexpr,
                 Q_LEN: tl.constexpr, D_VALID: tl.constexpr = 0):
    """o [BLOCK_M, HEAD_DIM] fp32 -> the output rows of the valid (q-head, position) rows, in the output dtype
    (the columns past D_VALID, if any, not written)."""
    offs_d = tl.arange(0, HEAD_DIM)
    ptrs = o_ptr + row_offsets(seq, q_head, q_pos, stride_ob, stride_oh, stride_oi, Q_LEN)[:, None] + offs_d[None, :]
    tl.store(ptrs, o.to(o_ptr.dtype.element_ty), mask=head_columns(row_ok[:, None], offs_d, D_VALID))
