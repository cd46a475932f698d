"""The last-arrival epilogue, shared by the split-KV kernel (split_kv.py) and stream-K's epilogue=last
kernel (lean_last.py): contributors to an output publish partials and arrive at a counter; the one
that arrives last merges every partial of the output in slot order and writes o.

Protocol (per output with C contributors, counter int32 at counter_ptr, 0 between launches):
1. each contributor stores its normalised fp32 partial (o [BLOCK_M, HEAD_DIM], lse [BLOCK_M]) in its
   slot, passes a CTA barrier (every thread's stores precede the arrival), and adds 1 to the counter
   (atomic, acq_rel, gpu scope: its release publishes the partial; its acquire, for the one that
   reads C - 1, makes every other contributor's partial visible);
2. the contributor that reads C - 1 resets the counter to 0 (relaxed: nobody else touches it again
   in this launch, and the next launch is stream-ordered after this one), then merges.
Nobody waits on anybody: no co-residency, no spinning, and Triton's CPU interpreter (programs one
after another) runs it as is. The merge visits slots base + s·stride, s = 0 .. C - 1, in that order,
its own partial re-read from memory like the others, so o has the same bits whoever arrives last.
Partials are read with .cg (through L2, which every writer's stores reach; never a stale L1 line).

Cost: the merger reads C·rows·(HEAD_DIM + 1)·4 bytes of partials in ceil(rows / MERGE_ROWS)·
ceil(C / (1024 / HEAD_DIM)) steps, each step's loads issued two steps ahead of its use (merge_store:
unmasked loads of clamped slots, one software pipeline across row groups), and writes rows·HEAD_DIM·b
of o.
"""

import triton
import triton.language as tl

from attnsim.kernels.tiles import Q_BLOCK_ROWS, SEG_KV_HEAD, SEG_Q_BLOCK, SEG_SEQ, packed_rows, store_output

MERGE_ROWS = tl.constexpr(4)  # query rows a merge step takes (x 1024 / HEAD_DIM splits: 32 fp32 per thread)


@triton.jit
def arrive(counter_ptr, contributors):
    """Arrive at an output's counter after storing this CTA's partial; True for the last of
    `contributors` arrivals (which re-arms the counter to 0 and must merge)."""
    tl.debug_barrier()  # every thread's partial stores precede the arrival
    arrived = tl.atomic_add(counter_ptr, 1, sem="acq_rel", scope="gpu")
    last = arrived == contributors - 1
    if last:  # every partial of the output is published
        tl.atomic_xchg(counter_ptr, 0, sem="relaxed", scope="gpu")  # re-armed for the next launch
    return last


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
def advance(row, step, steps):
    """The (row group's first row, step) pair after (row, step), with `steps` steps per row group."""
    last = step + 1 == steps
    return tl.where(last, row + MERGE_ROWS, row), tl.where(last, 0, step + 1)


@triton.jit
def combine_step(m, den, acc, o_s, lse):
    """Merge one step's partials (o_s [MERGE_ROWS, splits, HEAD_DIM], lse [MERGE_ROWS, splits]) into the row
    group's running (max m, denominator den, acc): the step's max first, then one fixed rescale."""
    m_new = tl.maximum(m, tl.max(lse, 1))
    m_ref = tl.where(m_new == float("-inf"), 0.0, m_new)  # a row with nothing yet: weights 0, not NaN
    rescale = tl.exp2(m - m_ref)  # [MERGE_ROWS]; 0 while m = -inf
    w = tl.exp2(lse - m_ref[:, None])  # [MERGE_ROWS, splits]; 0 for masked partials
    return m_new, den * rescale + tl.sum(w, 1), acc * rescale[:, None] + tl.sum(o_s * w[:, :, None], 1)


@triton.jit
def store_group(o_ptr, acc, den, seq, kv_head, first_row, row0, n_rows, group, stride_ob, stride_oh, stride_oi,
                HEAD_DIM: tl.constexpr, Q_LEN: tl.constexpr, D_VALID: tl.constexpr = 0):
    """Store the merged rows [row0, row0 + MERGE_ROWS) of the q-block (those below n_rows) to o."""
    rows = row0 + tl.arange(0, MERGE_ROWS)
    q_head, q_pos, row_ok = packed_rows(kv_head, first_row + rows, group, Q_LEN)
    store_output(o_ptr, acc / tl.where(den == 0.0, 1.0, den)[:, None], seq, q_head, q_pos, row_ok & (rows < n_rows),
                 stride_ob, stride_oh, stride_oi, HEAD_DIM, Q_LEN, D_VALID)


@triton.jit
def fold_pair(m, den, acc, o_s, lse, last, o_ptr, seq, kv_head, first_row, row0, n_rows, group, stride_ob,
              stride_oh, stride_oi, HEAD_DIM: tl.constexpr, Q_LEN: tl.constexpr, D_VALID: tl.constexpr = 0):
    """One (row group, step) pair into the row group's running (m, den, acc); at the group's `last` step its
    rows are stored and the running values restart for the next group."""
    m, den, acc = combine_step(m, den, acc, o_s, lse)
    if last:
        store_group(o_ptr, acc, den, seq, kv_head, first_row, row0, n_rows, group, stride_ob, stride_oh,
                    stride_oi, HEAD_DIM, Q_LEN, D_VALID)
        m = tl.full([MERGE_ROWS], float("-inf"), tl.float32)
        den = tl.zeros([MERGE_ROWS], tl.float32)
        acc = tl.zeros([MERGE_ROWS, HEAD_DIM], tl.float32)
    return m, den, acc


@triton.jit
def merge_store(o_ptr, o_part_ptr, lse_part_ptr, row_ptr, base, stride, used, group,
                stride_ob, stride_oh, stride_oi, BLOCK_M: tl.constexpr, HEAD_DIM: tl.constexpr, Q_LEN: tl.constexpr,
                D_VALID: tl.constexpr = 0):
    """The last arrival's merge: the valid rows of the output of plan row `row_ptr` (seq, kv_head,
    q_block, read again: an L1/L2 hit rather than registers held across the tile loop), merged over
    the partials in slots base + s·stride, s in [0, used) (split-KV: split s of an output; stream-K:
    base slot, stride 1), and stored to o.

    Rows are taken MERGE_ROWS at a time (a row group), each in steps of SPLITS_PER_STEP = 1024 /
    HEAD_DIM splits (a [rows, splits, HEAD_DIM] gather, load_step: 32 fp32 per thread at 4 warps):
    only valid rows, so a q-block's few rows (GQA: 4 of 16) do not pad a step. One software pipeline
    over every (row group, step) pair in order, across row groups: pair t + AHEAD's loads are issued
    before pair t is combined (loop-carried registers the compiler cannot sink), so the merge's
    ceil(R / 4)·ceil(S / SPLITS_PER_STEP) steps overlap their L2 round trips with the combining; the
    last prefetches re-read written slots and weigh nothing. AHEAD = 2 at d 128 (a 16-split merge is
    2 steps there; one ahead left a round trip exposed per step), 1 elsewhere: two ahead took d 64 and
    d 256 16-row split-KV from 137-168 to 188 registers, 3 to 2 CTAs per SM (sm_90, cross-compiled),
    while at d 128 it is 140 (the tile loop's 136). Within a step the max over its splits comes first;
    steps run in split order with a fixed rescale, so the result depends on the plan only, never on
    which split arrived last."""
    SPLITS_PER_STEP: tl.constexpr = 1024 // HEAD_DIM
    seq = tl.load(row_ptr + SEG_SEQ).to(tl.int64)
    kv_head = tl.load(row_ptr + SEG_KV_HEAD).to(tl.int64)
    first_row = tl.load(row_ptr + SEG_Q_BLOCK) * Q_BLOCK_ROWS  # packed row of tile row 0
    n_rows = tl.minimum(group * Q_LEN - first_row, BLOCK_M)
    steps = tl.cdiv(used, SPLITS_PER_STEP)  # per row group
    offs_r = tl.arange(0, MERGE_ROWS)
    m = tl.full([MERGE_ROWS], float("-inf"), tl.float32)
    den = tl.zeros([MERGE_ROWS], tl.float32)
    acc = tl.zeros([MERGE_ROWS, HEAD_DIM], tl.float32)
    o_s, lse = load_step(o_part_ptr, lse_part_ptr, base, stride, used, offs_r, n_rows, 0, BLOCK_M, HEAD_DIM,
                         SPLITS_PER_STEP)
    row0, step = 0, 0  # the pair combined now
    row1, step1 = advance(0, 0, steps)  # the next pair
    if HEAD_DIM == 128:  # two pairs in flight
        o_1, lse_1 = load_step(o_part_ptr, lse_part_ptr, base, stride, used, row1 + offs_r, n_rows,
                               step1 * SPLITS_PER_STEP, BLOCK_M, HEAD_DIM, SPLITS_PER_STEP)
        for _ in range(0, tl.cdiv(n_rows, MERGE_ROWS) * steps):
            row2, step2 = advance(row1, step1, steps)
            o_2, lse_2 = load_step(o_part_ptr, lse_part_ptr, base, stride, used, row2 + offs_r, n_rows,
                                   step2 * SPLITS_PER_STEP, BLOCK_M, HEAD_DIM, SPLITS_PER_STEP)
            m, den, acc = fold_pair(m, den, acc, o_s, lse, step + 1 == steps, o_ptr, seq, kv_head, first_row, row0,
                                    n_rows, group, stride_ob, stride_oh, stride_oi, HEAD_DIM, Q_LEN, D_VALID)
            o_s, lse, row0, step, o_1, lse_1, row1, step1 = o_1, lse_1, row1, step1, o_2, lse_2, row2, step2
    else:  # one pair in flight
        for _ in range(0, tl.cdiv(n_rows, MERGE_ROWS) * steps):
            o_1, lse_1 = load_step(o_part_ptr, lse_part_ptr, base, stride, used, row1 + offs_r, n_rows,
                                   step1 * SPLITS_PER_STEP, BLOCK_M, HEAD_DIM, SPLITS_PER_STEP)
            m, den, acc = fold_pair(m, den, acc, o_s, lse, step + 1 == steps, o_ptr, seq, kv_head, first_row, row0,
                                    n_rows, group, stride_ob, stride_oh, stride_oi, HEAD_DIM, Q_LEN, D_VALID)
            o_s, lse, row0, step = o_1, lse_1, row1, step1
            row1, step1 = advance(row1, step1, steps)
