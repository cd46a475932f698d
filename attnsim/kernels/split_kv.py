"""Split-KV decode in one launch: each output's KV is cut into S splits, and the split that finishes
last merges them (`attnsim.simulator.partition.splitkv` plans it).

Grid (outputs, S): program (o, s) runs split s of output o, where outputs are (sequence, kv_head,
q_block), seq-major. Its work comes from the program id, not from a plan row it must read first:
row o of the segment table is split 0 of output o (the plan numbers CTAs split-major, o + s·outputs,
and split 0 is never empty), so one round of independent loads brings the output's sequence, kv-head,
q-block and the sequence's length L. Split s covers KV tiles [s·per, min((s + 1)·per, n)) with
n = ceil(L / BLOCK_N) and per = ceil(n / S) (DOMAIN.md §2's ranges); in a ragged batch a short
sequence's trailing splits are empty: they read nothing and only arrive at the counter.

- S = 1: the program writes o directly (no partials, no atomics).
- S > 1: a non-empty split stores its normalised fp32 partial (o, lse) in slot o + s·outputs, passes a
  CTA barrier, and adds 1 to the output's arrival counter (acq_rel, gpu scope: its partial is
  published, and the last arriver sees every other one). The program that reads S - 1 resets the
  counter to 0 and merges the output's partials in split order (merge_rows: per step the max of its
  LSEs first, then the weighted sum; steps in split order), re-reading its own partial too, so the
  result is the same bits whichever split arrives last. No program waits on another: no
  co-residency is needed, and Triton's CPU interpreter (programs one after another) runs it as is.
Counters: int32 [>= outputs] (the launcher's `flags`), zeroed once when the launcher is built and
left at 0 by every launch, so CUDA-graph replays need no memset.

Cost accounting (d = head_dim, b = q/o dtype bytes, b_kv = KV element bytes, G = packed query rows of
a q-block (only those are stored and merged), S splits, n tiles of an output):
- split CTA: reads 16 bytes of plan row + G·d·b (q) + 2·min(per, n - s·per)·BLOCK_N·d·b_kv (K, V);
  S > 1: writes G·(d + 1)·4 (fp32 partial o + lse) and one 4-byte atomic; S = 1: writes G·d·b (o).
- last arriver of an output: re-reads its 16-byte plan row, reads S·G·(d + 1)·4 of partials (L2
  hits unless streaming evicted them) in ceil(G / 4)·(ceil(S·d / 1024) + 1) gathers, each issued
  one step ahead of its use (merge_rows), writes G·d·b (o) and resets its counter.
- total: the KV cache once + q + o + 2·S·G·(d + 1)·4 per output of partials (< 1% of the KV bytes
  when a split holds >= 16 tokens), and no second launch.
"""

import triton
import triton.language as tl

from attnsim.kernels.tiles import (
    Q_BLOCK_ROWS, SEG_COLS, SEG_CONTEXT, SEG_KV_HEAD, SEG_Q_BLOCK, SEG_SEQ, attend_range, load_query, packed_rows,
    query_rows, store_output, store_partial,
)

MERGE_ROWS = tl.constexpr(4)  # query rows a merge step takes (x 1024 / HEAD_DIM splits: 32 fp32 per thread)


@triton.jit
def split_range(context, split, n_splits, BLOCK_N: tl.constexpr):
    """(first tile, tiles, non-empty splits) of split `split` of a sequence of `context` tokens."""
    n_tiles = tl.cdiv(context, BLOCK_N)
    per = tl.cdiv(n_tiles, n_splits)
    first = split * per
    return first, tl.minimum(tl.maximum(n_tiles - first, 0), per), tl.cdiv(n_tiles, per)


@triton.jit
def load_step(o_part_ptr, lse_part_ptr, output, n_outputs, used, rows, n_rows, s0, BLOCK_M: tl.constexpr,
              HEAD_DIM: tl.constexpr, SPLITS_PER_STEP: tl.constexpr):
    """(o [MERGE_ROWS, SPLITS_PER_STEP, HEAD_DIM], lse [MERGE_ROWS, SPLITS_PER_STEP]) of splits s0 + j
    of rows `rows`, through L2 (.cg: other CTAs wrote them). Unmasked loads of clamped slots and rows
    (split used - 1 and row n_rows - 1 are always written), so no load has a zero-filled destination
    register that the compiler must allocate early: it issues a step's loads together. A slot or row
    outside the merge gets lse -inf, so its (finite) o weighs 0."""
    splits = s0 + tl.arange(0, SPLITS_PER_STEP)
    ok = (rows < n_rows)[:, None] & (splits < used)[None, :]  # [MERGE_ROWS, SPLITS_PER_STEP]
    slot = output + tl.minimum(splits, used - 1).to(tl.int64) * n_outputs
    part_row = slot[None, :] * BLOCK_M + tl.minimum(rows, n_rows - 1)[:, None]
    o_s = tl.load(o_part_ptr + part_row[:, :, None] * HEAD_DIM + tl.arange(0, HEAD_DIM)[None, None, :],
                  cache_modifier=".cg")
    lse = tl.where(ok, tl.load(lse_part_ptr + part_row, cache_modifier=".cg"), float("-inf"))
    return o_s, lse


@triton.jit
def merge_rows(o_part_ptr, lse_part_ptr, output, n_outputs, used, rows, n_rows, BLOCK_M: tl.constexpr,
               HEAD_DIM: tl.constexpr, SPLITS_PER_STEP: tl.constexpr):
    """o [MERGE_ROWS, HEAD_DIM] fp32 of query-tile rows `rows` [MERGE_ROWS] (valid below n_rows),
    merged over the partials of splits [0, used) of `output` (slots output + s·n_outputs).

    One step takes MERGE_ROWS x SPLITS_PER_STEP partial rows (a [rows, splits, HEAD_DIM] gather, 32
    fp32 per thread at 4 warps): only valid rows, so a q-block's few rows (GQA: 4 of 16) do not pad a
    step. Software-pipelined: step i + 1's loads are issued before step i is combined (a loop-carried
    register the compiler cannot sink), so ceil(R / 4)·(ceil(S / SPLITS_PER_STEP) + 1) L2 round trips
    overlap with the combining instead of following it; the last prefetch re-reads slot used - 1 and
    weighs nothing. Within a step the max over its splits comes first; steps run in split order with a
    fixed rescale, so the result depends on the plan only, never on which split arrived last. (64 fp32
    per thread per step halved the steps but compiled to 168 registers and a spill at d 128.)"""
    m = tl.full([MERGE_ROWS], float("-inf"), tl.float32)
    den = tl.zeros([MERGE_ROWS], tl.float32)
    acc = tl.zeros([MERGE_ROWS, HEAD_DIM], tl.float32)
    o_s, lse = load_step(o_part_ptr, lse_part_ptr, output, n_outputs, used, rows, n_rows, 0, BLOCK_M, HEAD_DIM,
                         SPLITS_PER_STEP)
    for s0 in range(0, used, SPLITS_PER_STEP):
        o_next, lse_next = load_step(o_part_ptr, lse_part_ptr, output, n_outputs, used, rows, n_rows,
                                     s0 + SPLITS_PER_STEP, BLOCK_M, HEAD_DIM, SPLITS_PER_STEP)
        m_new = tl.maximum(m, tl.max(lse, 1))
        m_ref = tl.where(m_new == float("-inf"), 0.0, m_new)  # a row with nothing yet: weights 0, not NaN
        rescale = tl.exp2(m - m_ref)  # [MERGE_ROWS]; 0 while m = -inf
        w = tl.exp2(lse - m_ref[:, None])  # [MERGE_ROWS, SPLITS_PER_STEP]; 0 for masked partials
        den = den * rescale + tl.sum(w, 1)
        acc = acc * rescale[:, None] + tl.sum(o_s * w[:, :, None], 1)
        m = m_new
        o_s, lse = o_next, lse_next
    return acc / tl.where(den == 0.0, 1.0, den)[:, None]


@triton.jit
def merge_output(o_ptr, o_part_ptr, lse_part_ptr, row_ptr, output, n_outputs, n_splits, group,
                 stride_ob, stride_oh, stride_oi, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                 HEAD_DIM: tl.constexpr, Q_LEN: tl.constexpr):
    """The last arrival's epilogue: merge the output's valid rows, MERGE_ROWS at a time, and store o.
    It reads its output's plan row again (an L1/L2 hit) rather than keep it live across the tile loop."""
    seq = tl.load(row_ptr + SEG_SEQ).to(tl.int64)
    kv_head = tl.load(row_ptr + SEG_KV_HEAD).to(tl.int64)
    first_row = tl.load(row_ptr + SEG_Q_BLOCK) * Q_BLOCK_ROWS  # packed row of tile row 0
    _, _, used = split_range(tl.load(row_ptr + SEG_CONTEXT), 0, n_splits, BLOCK_N)
    n_rows = tl.minimum(group * Q_LEN - first_row, BLOCK_M)
    for r0 in range(0, n_rows, MERGE_ROWS):
        rows = r0 + tl.arange(0, MERGE_ROWS)
        o = merge_rows(o_part_ptr, lse_part_ptr, output, n_outputs, used, rows, n_rows, BLOCK_M, HEAD_DIM,
                       1024 // HEAD_DIM)
        q_head, q_pos, row_ok = packed_rows(kv_head, first_row + rows, group, Q_LEN)
        store_output(o_ptr, o, seq, q_head, q_pos, row_ok & (rows < n_rows), stride_ob, stride_oh, stride_oi,
                     HEAD_DIM, Q_LEN)


@triton.jit
def split_kv_kernel(
    q_ptr, k_ptr, v_ptr, o_ptr, seg_offsets_ptr, seg_ptr, flags_ptr, o_part_ptr, lse_part_ptr,
    bt_ptr, k_scale_ptr, v_scale_ptr,
    stride_qb, stride_qh, stride_qi, stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn,
    stride_ob, stride_oh, stride_oi, stride_bt, qk_scale, group,
    BLOCK_P: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr,
    PAGE_SIZE: tl.constexpr, Q_LEN: tl.constexpr,
):
    # The launcher's one signature; read here: seg_ptr int32 [>= outputs, SEG_COLS] (row o: split 0 of
    # output o), flags_ptr int32 [>= outputs] (arrival counters), o_part_ptr fp32 [outputs·S, BLOCK_M,
    # HEAD_DIM], lse_part_ptr fp32 [outputs·S, BLOCK_M]; seg_offsets_ptr is not read.
    output = tl.program_id(0)
    split = tl.program_id(1)
    n_outputs = tl.num_programs(0)
    n_splits = tl.num_programs(1)
    row = seg_ptr + output * SEG_COLS
    seq, kv_head, q_head, q_pos, row_ok = query_rows(row, group, BLOCK_M, Q_LEN)
    context = tl.load(row + SEG_CONTEXT)
    first, count, _ = split_range(context, split, n_splits, BLOCK_N)
    if count > 0:
        q = load_query(q_ptr, seq, q_head, q_pos, row_ok, stride_qb, stride_qh, stride_qi, HEAD_DIM, Q_LEN)
        o, lse = attend_range(q, k_ptr, v_ptr, bt_ptr, k_scale_ptr, v_scale_ptr, seq, kv_head, q_pos, first, count,
                              context, stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn, stride_bt,
                              qk_scale, BLOCK_M, BLOCK_N, HEAD_DIM, PAGE_SIZE, Q_LEN)
        if n_splits == 1:
            store_output(o_ptr, o, seq, q_head, q_pos, row_ok, stride_ob, stride_oh, stride_oi, HEAD_DIM, Q_LEN)
        else:
            store_partial(o_part_ptr, lse_part_ptr, output + split * n_outputs, o, lse, row_ok, BLOCK_M, HEAD_DIM)
    if n_splits > 1:
        tl.debug_barrier()  # every thread's partial stores precede the arrival
        arrived = tl.atomic_add(flags_ptr + output, 1, sem="acq_rel", scope="gpu")
        if arrived == n_splits - 1:  # the last split of this output: every partial is published
            tl.atomic_xchg(flags_ptr + output, 0, sem="relaxed", scope="gpu")  # re-armed for the next launch
            merge_output(o_ptr, o_part_ptr, lse_part_ptr, row, output, n_outputs, n_splits, group,
                         stride_ob, stride_oh, stride_oi, BLOCK_M, BLOCK_N, HEAD_DIM, Q_LEN)
