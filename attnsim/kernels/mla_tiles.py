"""Device helpers of the MLA decode kernels (mla_decode.py): the latent tile loop and the merges.

Multi-head latent attention with absorbed projections (DeepSeek-V2/V3, Kimi-K2): every cached token
is one latent vector of LORA + ROPE elements (kv_lora_rank 512 + qk_rope_head_dim 64), shared by
all query heads. Its first LORA elements are the keys' no-position part *and* the values; the last
ROPE are the keys' rotary part. A query row is [q_nope (LORA, already multiplied by W_UK) | q_rope
(ROPE)]; its output is LORA wide (W_UV is applied after attention, outside the kernel).

Layouts (the launcher checks them):
- q [batch, q_heads, Q_LEN, LORA + ROPE]; o [batch, q_heads, Q_LEN, LORA].
- latent cache, contiguous (PAGE_SIZE = 0): [batch, 1, max_context, LORA + ROPE]; paged: a pool
  [num_pages, PAGE_SIZE, 1, LORA + ROPE] and int32 block tables (tile_loads.paged_rows).
- partials: o_part fp32 [slots, BLOCK_M, LORA] (normalised), lse_part fp32 [slots, BLOCK_M].

The pieces: a latent tile [BLOCK_N, LORA + ROPE] is loaded once as c [BLOCK_N, LORA] and r
[BLOCK_N, ROPE] (two loads: 576 is not a power of two) and used twice, in s = q_nope·cᵀ + q_rope·rᵀ
and in acc += p·c. Merges never hold two [BLOCK_M, LORA] fp32 tiles: the weights of every partial
come first from the LSEs alone (a [BLOCK_M] pass), then the tiles are summed into one accumulator.
Scores are in log2 units, as in tiles.py.
"""

import triton
import triton.language as tl

from attnsim.kernels.partials import acquire_flags
from attnsim.kernels.tile_loads import paged_rows
from attnsim.kernels.tiles import softmax_step


@triton.jit
def latent_rows(bt_row_ptr, tile, context, stride_kp, stride_kn, BLOCK_N: tl.constexpr, PAGE_SIZE: tl.constexpr):
    """(element offsets [BLOCK_N] of the tile's tokens from the kv-head's base, valid [BLOCK_N], tokens
    [BLOCK_N]) of KV tile `tile` of a sequence with `context` tokens."""
    offs_tok = tile * BLOCK_N + tl.arange(0, BLOCK_N)
    valid = offs_tok < context
    if PAGE_SIZE == 0:
        rows = offs_tok * stride_kn
    else:  # offsets from the pool's column: tile_loads.paged_rows on a zero base (K and V are one latent row)
        rows, _ = paged_rows(0, 0, bt_row_ptr, tile, tl.arange(0, BLOCK_N), valid, stride_kp, stride_kn,
                             stride_kp, stride_kn, BLOCK_N, PAGE_SIZE)
    return rows, valid, offs_tok


@triton.jit
def attend_latent(q_nope, q_rope, kv_ptr, bt_row_ptr, stride_kp, stride_kn, first_tile, n_tiles, context, limit,
                  qk_scale, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, LORA: tl.constexpr,
                  ROPE: tl.constexpr, PAGE_SIZE: tl.constexpr, Q_LEN: tl.constexpr):
    """Online softmax of the query rows (q_nope [BLOCK_M, LORA], q_rope [BLOCK_M, ROPE]) over latent
    tiles [first_tile, first_tile + n_tiles). kv_ptr: the (sequence, kv_head 0) base (contiguous) or
    the pool's kv-head column (paged). Row r masks tokens >= limit[r] when Q_LEN > 1 (causal verify).
    Returns acc [BLOCK_M, LORA] fp32 (unnormalised), m [BLOCK_M] (log2 units), l [BLOCK_M]."""
    offs_c = tl.arange(0, LORA)
    offs_r = LORA + tl.arange(0, ROPE)
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, LORA], tl.float32)
    for tile in range(first_tile, first_tile + n_tiles):
        rows, valid, offs_tok = latent_rows(bt_row_ptr, tile, context, stride_kp, stride_kn, BLOCK_N, PAGE_SIZE)
        c = tl.load(kv_ptr + rows[:, None] + offs_c[None, :], mask=valid[:, None], other=0.0)  # [BLOCK_N, LORA]
        r = tl.load(kv_ptr + rows[:, None] + offs_r[None, :], mask=valid[:, None], other=0.0)  # [BLOCK_N, ROPE]
        c = c.to(q_nope.dtype)
        s = tl.dot(q_nope, tl.trans(c))
        s = tl.dot(q_rope, tl.trans(r.to(q_rope.dtype)), s) * qk_scale  # [BLOCK_M, BLOCK_N] fp32, log2 units
        p, alpha, m_i, l_i = softmax_step(s, m_i, l_i, valid, offs_tok, limit, Q_LEN)
        acc = tl.dot(p.to(q_nope.dtype), c, acc * alpha[:, None])  # V = the latent's first LORA elements
    return acc, m_i, l_i


@triton.jit
def merge_weights(lse, lo, hi, flags_ptr, lse_part_ptr, row_ok, WAIT: tl.constexpr, BLOCK_P: tl.constexpr,
                  BLOCK_M: tl.constexpr):
    """(m [BLOCK_M], total [BLOCK_M]) over an own partial of `lse` [BLOCK_M] (-inf: none) and the
    partials in slots [lo, hi): m the largest LSE (0 where every one is -inf), total = Σ 2^(lse - m),
    rescaled online, BLOCK_P LSE rows per step. WAIT: take the step's flags first (in-kernel merges)."""
    offs_p = tl.arange(0, BLOCK_P)
    offs_m = tl.arange(0, BLOCK_M)
    m = lse
    total = tl.where(lse == float("-inf"), 0.0, 1.0)  # 2^(lse - m) with m = lse
    for p0 in range(lo, hi, BLOCK_P):
        slots = p0 + offs_p
        if WAIT:
            acquire_flags(flags_ptr + slots, slots < hi)
        lse_p = tl.load(lse_part_ptr + slots.to(tl.int64)[:, None] * BLOCK_M + offs_m[None, :],
                        mask=(slots < hi)[:, None] & row_ok[None, :], other=float("-inf"),
                        cache_modifier=".cg")  # [BLOCK_P, BLOCK_M]
        m_new = tl.maximum(m, tl.max(lse_p, 0))
        m_ref = tl.where(m_new == float("-inf"), 0.0, m_new)  # nothing yet (padded rows): weights 0, not NaN
        total = total * tl.exp2(m - m_ref) + tl.sum(tl.exp2(lse_p - m_ref[None, :]), 0)
        m = m_new
    m = tl.where(m == float("-inf"), 0.0, m)
    return m, total


@triton.jit
def add_partials(acc, m, lo, hi, o_part_ptr, lse_part_ptr, row_ok, cols, BLOCK_M: tl.constexpr, LORA: tl.constexpr):
    """acc [BLOCK_M, len(cols)] + Σ over slots [lo, hi) of 2^(lse - m) x columns `cols` of the slot's
    o (fp32 [BLOCK_M, LORA] rows of o_part), one slot at a time: one tile in registers."""
    offs_m = tl.arange(0, BLOCK_M)
    for slot in range(lo, hi):
        row = (offs_m + slot * BLOCK_M).to(tl.int64)  # [BLOCK_M]; slot * BLOCK_M fits int32
        lse_p = tl.load(lse_part_ptr + row, mask=row_ok, other=float("-inf"), cache_modifier=".cg")
        o_p = tl.load(o_part_ptr + row[:, None] * LORA + cols[None, :], mask=row_ok[:, None], other=0.0,
                      cache_modifier=".cg")
        acc += o_p * tl.exp2(lse_p - m)[:, None]
    return acc


@triton.jit
def merge_into(o, lse, lo, hi, flags_ptr, o_part_ptr, lse_part_ptr, row_ok, WAIT: tl.constexpr,
               BLOCK_P: tl.constexpr, BLOCK_M: tl.constexpr, LORA: tl.constexpr):
    """LSE merge of an own normalised partial (o [BLOCK_M, LORA], lse [BLOCK_M]) with the partials
    in slots [lo, hi): weights first (merge_weights), then one accumulator over the tiles."""
    m, total = merge_weights(lse, lo, hi, flags_ptr, lse_part_ptr, row_ok, WAIT, BLOCK_P, BLOCK_M)
    acc = o * tl.exp2(lse - m)[:, None]
    acc = add_partials(acc, m, lo, hi, o_part_ptr, lse_part_ptr, row_ok, tl.arange(0, LORA), BLOCK_M, LORA)
    total = tl.where(total == 0.0, 1.0, total)
    return acc / total[:, None], m + tl.log2(total)


@triton.jit
def load_query_pieces(q_ptr, q_rows, row_ok, LORA: tl.constexpr, ROPE: tl.constexpr):
    """(q_nope [BLOCK_M, LORA], q_rope [BLOCK_M, ROPE]) of the packed query rows at element offsets
    q_rows [BLOCK_M]; padded rows are 0."""
    q_nope = tl.load(q_ptr + q_rows[:, None] + tl.arange(0, LORA)[None, :], mask=row_ok[:, None], other=0.0)
    q_rope = tl.load(q_ptr + q_rows[:, None] + (LORA + tl.arange(0, ROPE))[None, :], mask=row_ok[:, None],
                     other=0.0)
    return q_nope, q_rope


@triton.jit
def store_columns(o_ptr, o, o_rows, row_ok, cols):
    """o [BLOCK_M, len(cols)] fp32 -> columns `cols` of the output rows at element offsets o_rows [BLOCK_M]."""
    tl.store(o_ptr + o_rows[:, None] + cols[None, :], o.to(o_ptr.dtype.element_ty), mask=row_ok[:, None])
