"""Split-KV decode in one launch: each output's KV is cut into S splits, and the split that finishes
last merges them (`attnsim.simulator.partition.splitkv` plans it).

Grid (outputs, S): program (o, s) runs split s of output o, where outputs are (sequence, kv_head,
q_block), seq-major. Its work comes from the program id, not from a plan row it must read first:
row o of the segment table is split 0 of output o (the plan numbers CTAs split-major, o + s·outputs,
and split 0 is never empty), so one round of independent loads brings the output's sequence, kv-head,
q-block and the sequence's length L. Split s covers KV tiles [s·per, min((s + 1)·per, n)) with
n = ceil(L / BLOCK_N) and per = ceil(n / S) (DOMAIN.md §2's ranges); a short sequence's trailing
splits are empty: they read nothing and only arrive at the counter. (Plans of fixed chunks, chunk_tokens,
run on lean_last.one_segment_kernel: one chunk per program in LPT order, partition/splitkv.py.)

- S = 1: the program writes o directly (no partials, no atomics).
- S > 1: a non-empty split stores its normalised fp32 partial (o, lse) in slot o + s·outputs, passes a
  CTA barrier, and adds 1 to the output's arrival counter (acq_rel, gpu scope: its partial is
  published, and the last arriver sees every other one). The program that reads S - 1 resets the
  counter to 0 and merges the output's partials in split order (arrival.py, shared with stream-K's
  epilogue=last: per step the max of its LSEs first, then the weighted sum; steps in split order),
  re-reading its own partial too, so the result is the same bits whichever split arrives last. No
  program waits on another: no co-residency is needed, and Triton's CPU interpreter (programs one
  after another) runs it as is.
Counters: int32 [>= outputs] (the launcher's `flags`), zeroed once when the launcher is built and
left at 0 by every launch, so CUDA-graph replays need no memset.

Cost accounting (d = head_dim, b = q/o dtype bytes, b_kv = KV element bytes, G = packed query rows of
a q-block (only those are stored and merged), S splits, n tiles of an output):
- split CTA: reads 16 bytes of plan row + G·d·b (q) + 2·min(per, n - s·per)·BLOCK_N·d·b_kv (K, V);
  S > 1: writes G·(d + 1)·4 (fp32 partial o + lse) and one 4-byte atomic; S = 1: writes G·d·b (o).
- last arriver of an output: re-reads its 16-byte plan row, reads S·G·(d + 1)·4 of partials (L2
  hits unless streaming evicted them) in ceil(G / 4)·(ceil(S·d / 1024) + 1) gathers, each issued
  one step ahead of its use (arrival.merge_rows), writes G·d·b (o) and resets its counter.
- total: the KV cache once + q + o + 2·S·G·(d + 1)·4 per output of partials (< 1% of the KV bytes
  when a split holds >= 16 tokens), and no second launch.
"""

import triton
import triton.language as tl

from attnsim.kernels.arrival import arrive, merge_store
from attnsim.kernels.partials import store_partial
from attnsim.kernels.tiles import SEG_COLS, SEG_CONTEXT, attend_range, load_query, query_rows, store_output

@triton.jit
def split_range(context, split, n_splits, BLOCK_N: tl.constexpr):
    """(first tile, tiles, non-empty splits) of split `split` of a sequence of `context` tokens."""
    n_tiles = tl.cdiv(context, BLOCK_N)
    per = tl.cdiv(n_tiles, n_splits)
    first = split * per
    return first, tl.minimum(tl.maximum(n_tiles - first, 0), per), tl.cdiv(n_tiles, per)


@triton.jit
def merge_output(o_ptr, o_part_ptr, lse_part_ptr, row_ptr, output, n_outputs, n_splits, group,
                 stride_ob, stride_oh, stride_oi, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                 HEAD_DIM: tl.constexpr, Q_LEN: tl.constexpr, D_VALID: tl.constexpr = 0):
    """The last arrival's epilogue: merge the output's non-empty splits (slots output + s·n_outputs)
    and store o (arrival.merge_store)."""
    _, _, used = split_range(tl.load(row_ptr + SEG_CONTEXT), 0, n_splits, BLOCK_N)
    merge_store(o_ptr, o_part_ptr, lse_part_ptr, row_ptr, output, n_outputs, used, group,
                stride_ob, stride_oh, stride_oi, BLOCK_M, HEAD_DIM, Q_LEN, D_VALID)


@triton.jit
def split_kv_kernel(
    q_ptr, k_ptr, v_ptr, o_ptr, seg_offsets_ptr, seg_ptr, flags_ptr, o_part_ptr, lse_part_ptr,
    bt_ptr, k_scale_ptr, v_scale_ptr,
    stride_qb, stride_qh, stride_qi, stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn,
    stride_ob, stride_oh, stride_oi, stride_bt, qk_scale, group,
    BLOCK_P: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr,
    PAGE_SIZE: tl.constexpr, Q_LEN: tl.constexpr, D_VALID: tl.constexpr = 0,
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
        q = load_query(q_ptr, seq, q_head, q_pos, row_ok, stride_qb, stride_qh, stride_qi, HEAD_DIM, Q_LEN, D_VALID)
        o, lse = attend_range(q, k_ptr, v_ptr, bt_ptr, k_scale_ptr, v_scale_ptr, seq, kv_head, q_pos, first, count,
                              context, stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn, stride_bt,
                              qk_scale, BLOCK_M, BLOCK_N, HEAD_DIM, PAGE_SIZE, Q_LEN, D_VALID)
        if n_splits == 1:
            store_output(o_ptr, o, seq, q_head, q_pos, row_ok, stride_ob, stride_oh, stride_oi, HEAD_DIM, Q_LEN,
                         D_VALID)
        else:
            store_partial(o_part_ptr, lse_part_ptr, output + split * n_outputs, o, lse, row_ok, BLOCK_M, HEAD_DIM)
    if n_splits > 1:
        if arrive(flags_ptr + output, n_splits):  # the last split of this output: every partial is published
            merge_output(o_ptr, o_part_ptr, lse_part_ptr, row, output, n_outputs, n_splits, group,
                         stride_ob, stride_oh, stride_oi, BLOCK_M, BLOCK_N, HEAD_DIM, Q_LEN, D_VALID)
