"""fp32 partials of split outputs in a launch: store one (store_partial), and merge peers' into a host's
(acquire_flags on their published flags, load_partial_o, pick, merge_slots), for stream-K's flag tree and
FlashDecoding's combine; the tile loop that makes them is kernels/tiles.py."""

import triton
import triton.language as tl


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
def load_partial_o(o_part_ptr, slot, hi, row_ok, BLOCK_M: tl.constexpr, HEAD_DIM: tl.constexpr,
                   SLOT_ROWS: tl.constexpr):
    """o of partial `slot` [BLOCK_M, HEAD_DIM] (0 if slot >= hi), through L2: another CTA wrote it.
    A slot holds SLOT_ROWS rows (the writer's query tile); BLOCK_M <= SLOT_ROWS of them are read, from
    o_part_ptr on (a combine CTA's row block: o_part_ptr advanced to its first row)."""
    row = (tl.arange(0, BLOCK_M) + slot * SLOT_ROWS).to(tl.int64)  # slot * SLOT_ROWS fits int32
    return tl.load(o_part_ptr + row[:, None] * HEAD_DIM + tl.arange(0, HEAD_DIM)[None, :],
                   mask=(row_ok & (slot < hi))[:, None], other=0.0, cache_modifier=".cg")


@triton.jit
def pick(w_p, j: tl.constexpr, BLOCK_P: tl.constexpr):
    """Row j of w_p [BLOCK_P, BLOCK_M] -> [BLOCK_M]."""
    return tl.sum(tl.where(tl.arange(0, BLOCK_P)[:, None] == j, w_p, 0.0), 0)


@triton.jit
def merge_slots(o, lse, lo, hi, flags_ptr, o_part_ptr, lse_part_ptr, row_ok, WAIT: tl.constexpr,
                BLOCK_P: tl.constexpr, BLOCK_M: tl.constexpr, HEAD_DIM: tl.constexpr, SLOT_ROWS: tl.constexpr):
    """LSE merge of the partials in slots [lo, hi) into (o [BLOCK_M, HEAD_DIM], lse [BLOCK_M]); a slot
    holds SLOT_ROWS rows, of which the BLOCK_M from o_part_ptr / lse_part_ptr on are merged.

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
        lse_p = tl.load(lse_part_ptr + slots.to(tl.int64)[:, None] * SLOT_ROWS + offs_m[None, :],
                        mask=(slots < hi)[:, None] & row_ok[None, :], other=float("-inf"),
                        cache_modifier=".cg")  # [BLOCK_P, BLOCK_M]
        o0 = load_partial_o(o_part_ptr, p0, hi, row_ok, BLOCK_M, HEAD_DIM, SLOT_ROWS)
        if BLOCK_P >= 2:
            o1 = load_partial_o(o_part_ptr, p0 + 1, hi, row_ok, BLOCK_M, HEAD_DIM, SLOT_ROWS)
        if BLOCK_P >= 4:
            o2 = load_partial_o(o_part_ptr, p0 + 2, hi, row_ok, BLOCK_M, HEAD_DIM, SLOT_ROWS)
            o3 = load_partial_o(o_part_ptr, p0 + 3, hi, row_ok, BLOCK_M, HEAD_DIM, SLOT_ROWS)
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
