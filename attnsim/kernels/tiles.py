"""Device helpers every decode kernel shares: read a plan segment, run the online softmax over its
KV tiles, and store or merge results. One copy of the tile loop serves FA2, FlashDecoding and
stream-K; the kernels differ only in which segments a program takes and where results go.

Layouts (the launcher checks them):
- q [batch, q_heads, HEAD_DIM], o like q; K/V [batch, kv_heads, max_context, HEAD_DIM] with a unit
  stride on the last dimension (16-byte vector loads).
- segment table: int32 [n_segments, SEG_COLS], columns SEG_* below, rows sorted by program.
- partials: o_part fp32 [slots, BLOCK_M, HEAD_DIM] (normalised), lse_part fp32 [slots, BLOCK_M],
  flags int32 [slots]. The launcher numbers slots so that whoever merges them reads a contiguous
  range: no index indirection between a merger and the partials it loads.

Units: scores are kept in log2 units (q.k * sm_scale * log2(e)) so every exponential is an exp2;
an LSE here is log2(sum_j 2^s_j). Rows of the query tile are the q-heads of one kv-head's group
(GQA packing): row r of q-block b is q-head kv_head * group + b * Q_BLOCK_ROWS + r.
"""

import triton
import triton.language as tl

SEG_COLS = tl.constexpr(10)
(SEG_SEQ, SEG_KV_HEAD, SEG_Q_BLOCK, SEG_FIRST_TILE, SEG_N_TILES, SEG_ROLE, SEG_CONTEXT, SEG_SLOT, SEG_MERGE_LO,
 SEG_MERGE_HI) = (tl.constexpr(i) for i in range(10))
# SEG_CONTEXT: the sequence's tokens (in the row, to save a dependent load before the first KV load).
# SEG_SLOT: the partial slot a ROLE_PEER segment writes; [SEG_MERGE_LO, SEG_MERGE_HI): the slots it merges.
Q_BLOCK_ROWS = tl.constexpr(64)  # attnsim.simulator.partition.common.Q_BLOCK_ROWS (a test ties them)
ROLE_PEER = tl.constexpr(1)  # attnsim.simulator.schedule.ROLE_PEER (a test ties them)


@triton.jit
def query_rows(seg_ptr, group, BLOCK_M: tl.constexpr):
    """(seq int64, kv_head int64, q_head [BLOCK_M], row_ok [BLOCK_M]) of the segment at seg_ptr."""
    seq = tl.load(seg_ptr + SEG_SEQ).to(tl.int64)
    kv_head = tl.load(seg_ptr + SEG_KV_HEAD).to(tl.int64)
    group_row = tl.load(seg_ptr + SEG_Q_BLOCK) * Q_BLOCK_ROWS + tl.arange(0, BLOCK_M)
    return seq, kv_head, kv_head * group + group_row, group_row < group


@triton.jit
def attend_tiles(q, k_ptr, v_ptr, stride_kn, stride_vn, first_tile, n_tiles, context, qk_scale,
                 BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr):
    """Online softmax of q [BLOCK_M, HEAD_DIM] over KV tiles [first_tile, first_tile + n_tiles).

    k_ptr / v_ptr point at token 0 of one (sequence, kv_head); tokens >= context are masked.
    The dots run in q's dtype: K/V's own on the GPU (the casts vanish); fp32 under the CPU
    interpreter for bf16, whose NumPy has no bf16 matmul (the launcher upcasts q there).
    Returns acc [BLOCK_M, HEAD_DIM] fp32 (unnormalised), m [BLOCK_M] (running max, log2 units) and
    l [BLOCK_M] (running sum of 2^(s - m)).
    """
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, HEAD_DIM)
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM], tl.float32)
    for tile in range(first_tile, first_tile + n_tiles):
        offs_tok = tile * BLOCK_N + offs_n  # [BLOCK_N]
        valid = offs_tok < context
        k = tl.load(k_ptr + offs_tok[:, None] * stride_kn + offs_d[None, :], mask=valid[:, None], other=0.0)
        v = tl.load(v_ptr + offs_tok[:, None] * stride_vn + offs_d[None, :], mask=valid[:, None], other=0.0)
        s = tl.dot(q, tl.trans(k.to(q.dtype))) * qk_scale  # [BLOCK_M, BLOCK_N] fp32, log2 units
        s = tl.where(valid[None, :], s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))  # finite: every tile holds >= 1 valid token
        alpha = tl.exp2(m_i - m_new)
        p = tl.exp2(s - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None] + tl.dot(p.to(q.dtype), v.to(q.dtype))
        m_i = m_new
    return acc, m_i, l_i


@triton.jit
def attend_segment(seg_ptr, q_ptr, k_ptr, v_ptr,
                   stride_qb, stride_qh, stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn,
                   qk_scale, group, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                   HEAD_DIM: tl.constexpr):
    """Attend one plan segment. Returns (o [BLOCK_M, HEAD_DIM] fp32 normalised, lse [BLOCK_M],
    seq, q_head [BLOCK_M], row_ok [BLOCK_M])."""
    seq, kv_head, q_head, row_ok = query_rows(seg_ptr, group, BLOCK_M)
    offs_d = tl.arange(0, HEAD_DIM)
    q = tl.load(q_ptr + seq * stride_qb + q_head[:, None] * stride_qh + offs_d[None, :],
                mask=row_ok[:, None], other=0.0)  # [BLOCK_M, HEAD_DIM]; padded rows are 0
    context = tl.load(seg_ptr + SEG_CONTEXT)
    acc, m_i, l_i = attend_tiles(
        q, k_ptr + seq * stride_kb + kv_head * stride_kh, v_ptr + seq * stride_vb + kv_head * stride_vh,
        stride_kn, stride_vn, tl.load(seg_ptr + SEG_FIRST_TILE), tl.load(seg_ptr + SEG_N_TILES), context,
        qk_scale, BLOCK_M, BLOCK_N, HEAD_DIM)
    return acc / l_i[:, None], m_i + tl.log2(l_i), seq, q_head, row_ok


@triton.jit
def store_output(o_ptr, o, seq, q_head, row_ok, stride_ob, stride_oh, HEAD_DIM: tl.constexpr):
    """o [BLOCK_M, HEAD_DIM] fp32 -> the output rows of the valid q-heads, in the output dtype."""
    offs_d = tl.arange(0, HEAD_DIM)
    ptrs = o_ptr + seq * stride_ob + q_head[:, None] * stride_oh + offs_d[None, :]
    tl.store(ptrs, o.to(o_ptr.dtype.element_ty), mask=row_ok[:, None])


@triton.jit
def store_partial(o_part_ptr, lse_part_ptr, slot, o, lse, row_ok, BLOCK_M: tl.constexpr,
                  HEAD_DIM: tl.constexpr):
    """Write a normalised partial into `slot`: o_part[slot] [BLOCK_M, HEAD_DIM], lse_part[slot] [BLOCK_M]."""
    offs_m = tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, HEAD_DIM)
    base = slot.to(tl.int64) * BLOCK_M
    tl.store(o_part_ptr + (base + offs_m[:, None]) * HEAD_DIM + offs_d[None, :], o, mask=row_ok[:, None])
    tl.store(lse_part_ptr + base + offs_m, lse, mask=row_ok)


@triton.jit
def acquire_flags(flag_ptrs, pending):
    """Spin until each flag in flag_ptrs [BLOCK_P] where `pending` is raised, taking it (1 -> 0, acquire).

    Exchanging 0 into a flag that is still 0 changes nothing, so one vector exchange per round
    polls every pending publisher at once. The barrier after it orders the CTA's partial loads."""
    while tl.max(pending.to(tl.int32), 0) > 0:
        old = tl.atomic_xchg(flag_ptrs, 0, mask=pending, sem="acquire", scope="gpu")
        pending = pending & (old != 1)
    tl.debug_barrier()


@triton.jit
def load_partial_o(o_part_ptr, slot, hi, row_ok, BLOCK_M: tl.constexpr, HEAD_DIM: tl.constexpr):
    """o of partial `slot` [BLOCK_M, HEAD_DIM] (0 if slot >= hi), through L2: another CTA wrote it."""
    row = (tl.arange(0, BLOCK_M) + slot * BLOCK_M).to(tl.int64)  # slot * BLOCK_M fits int32
    return tl.load(o_part_ptr + row[:, None] * HEAD_DIM + tl.arange(0, HEAD_DIM)[None, :],
                   mask=(row_ok & (slot < hi))[:, None], other=0.0, cache_modifier=".cg")


@triton.jit
def pick(w_p, j: tl.constexpr, BLOCK_P: tl.constexpr):
    """Row j of w_p [BLOCK_P, BLOCK_M] -> [BLOCK_M]."""
    return tl.sum(tl.where(tl.arange(0, BLOCK_P)[:, None] == j, w_p, 0.0), 0)


@triton.jit
def merge_slots(o, lse, lo, hi, flags_ptr, o_part_ptr, lse_part_ptr, row_ok, WAIT: tl.constexpr,
                BLOCK_P: tl.constexpr, BLOCK_M: tl.constexpr, HEAD_DIM: tl.constexpr):
    """LSE merge of the partials in slots [lo, hi) into (o [BLOCK_M, HEAD_DIM], lse [BLOCK_M]).

    BLOCK_P (1, 2 or 4) slots per step: their flags are taken together (WAIT), then every load of
    the step (one [BLOCK_P, BLOCK_M] LSE block, BLOCK_P o tiles) is issued before any value is
    used, so a step costs ~2 memory round trips, not one per slot. Written out rather than as a
    3-D [BLOCK_P, BLOCK_M, HEAD_DIM] tile (its reduction spills) or a loop (layout-conversion
    barriers between its loads serialise them). lse may start at -inf (empty accumulator);
    padded rows end finite and are never stored.
    """
    offs_p = tl.arange(0, BLOCK_P)
    offs_m = tl.arange(0, BLOCK_M)
    for p0 in range(lo, hi, BLOCK_P):
        slots = p0 + offs_p  # [BLOCK_P]
        if WAIT:
            acquire_flags(flags_ptr + slots, slots < hi)
        lse_p = tl.load(lse_part_ptr + slots.to(tl.int64)[:, None] * BLOCK_M + offs_m[None, :],
                        mask=(slots < hi)[:, None] & row_ok[None, :], other=float("-inf"),
                        cache_modifier=".cg")  # [BLOCK_P, BLOCK_M]
        o0 = load_partial_o(o_part_ptr, p0, hi, row_ok, BLOCK_M, HEAD_DIM)
        if BLOCK_P >= 2:
            o1 = load_partial_o(o_part_ptr, p0 + 1, hi, row_ok, BLOCK_M, HEAD_DIM)
        if BLOCK_P >= 4:
            o2 = load_partial_o(o_part_ptr, p0 + 2, hi, row_ok, BLOCK_M, HEAD_DIM)
            o3 = load_partial_o(o_part_ptr, p0 + 3, hi, row_ok, BLOCK_M, HEAD_DIM)
        m = tl.maximum(lse, tl.max(lse_p, 0))
        m = tl.where(m == float("-inf"), 0.0, m)  # rows with nothing yet (padded rows of the combine)
        w_p = tl.exp2(lse_p - m[None, :])  # [BLOCK_P, BLOCK_M]; 0 for masked slots
        acc = o0 * pick(w_p, 0, BLOCK_P)[:, None]  # the step's partials, in their own layout
        if BLOCK_P >= 2:
            acc += o1 * pick(w_p, 1, BLOCK_P)[:, None]
        if BLOCK_P >= 4:
            acc += o2 * pick(w_p, 2, BLOCK_P)[:, None] + o3 * pick(w_p, 3, BLOCK_P)[:, None]
        w = tl.exp2(lse - m)  # [BLOCK_M]; 0 for an empty accumulator
        total = w + tl.sum(w_p, 0)
        total = tl.where(total == 0.0, 1.0, total)
        o = (o * w[:, None] + acc) / total[:, None]
        lse = m + tl.log2(total)
    return o, lse
