"""Stream-K's last-arrival epilogue (plan option epilogue=last; `attnsim/kernels/lean_last.py` runs it).

The tiles are cut exactly as the tree epilogue cuts them (`streamk.share_tiles`, and hybrid's DP waves
before them); only the merge of an output whose tiles straddle CTAs changes:
- tree (default): the host CTA (the output's first chunk) waits on its peers' flags and merges;
  the grid must be co-resident.
- last: every contributor (the tree's host and peers alike, all ROLE_PEER here) stores its fp32
  partial in its slot and adds 1 to the output's arrival counter (acq_rel); the contributor that
  reads count - 1 merges the output's partials in slot order, writes o and resets the counter.
  No CTA waits, so no co-residency is needed; the merge order is the plan's, so the bits do not
  depend on which contributor arrives last.

What the plan carries (one source for the model and the kernel): one Reductions row per straddled
output, outputs ascending (seq, kv_head, q_block), host_cta LAST_ARRIVAL, its contributors listed in
KV order (first tile ascending). kernels/plan_tables.py numbers slots by that list: contributor k of
row r writes slot peer_offsets[r] + k, the row's merge range is [peer_offsets[r], peer_offsets[r + 1])
(contributor count = its length) and its counter is flags[peer_offsets[r]] (the range's first slot,
one per straddled output).

Model: the engine bills the merge to the contributor that publishes last (engine._arrival_us), as
time: fixup_fixed_us + fixup_per_peer_us per load round (merge_cost.last_arrival_steps). Those two terms (the merge
reads its partials one after another, MERGE_ROWS x 1024 / head_dim per step) are BORROWED from the
`splitkv` family (Launch.merge_family): the same merge code (kernels/arrival.py) fitted on the H200
for the split-KV kernel at 4 warps, not measured for the 8-warp stream-K kernel. They need an H200
fit (scripts/streamk_last_ab.py times both epilogues). Streaming and per-segment terms stay stream-K's.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from attnsim.errors import InputError
from attnsim.simulator.partition.options import EPILOGUE_LAST, EPILOGUE_TREE
from attnsim.simulator.schedule import (
    LAST_ARRIVAL, ROLE_COMPLETE, ROLE_PEER, Launch, Reductions, SegmentTable, frozen_array, offsets_from_counts,
)
from attnsim.simulator.workload import DecodeWorkload

MERGE_FAMILY = "splitkv"  # whose last-arrival merge terms this epilogue borrows (module docstring)


def epilogue(workload: DecodeWorkload, value: str | None) -> str:
    """The plan's epilogue (None: the tree); the last-arrival kernel has no MLA variant."""
    chosen = value or EPILOGUE_TREE
    if chosen == EPILOGUE_LAST and workload.is_mla:
        raise InputError("epilogue", "epilogue=last runs K/V-head workloads only (no MLA kernel merges by last "
                                     "arrival yet); use the default tree epilogue")
    return chosen


def plan_options(chosen: str) -> dict:
    """What the Schedule names: nothing for the default, so tree plans keep their specs."""
    return {"epilogue": EPILOGUE_LAST} if chosen == EPILOGUE_LAST else {}


def done_bytes(segs: SegmentTable) -> np.ndarray:
    """K+V bytes each segment's CTA has streamed once the segment ends (its earlier segments
    included; rows sorted by CTA). float64 [n_segments]."""
    total = np.cumsum(segs.kv_bytes)
    first = np.searchsorted(segs.cta, segs.cta)  # each row's CTA's first row
    return total - (total[first] - segs.kv_bytes[first])


def last_arrival(segs: SegmentTable) -> tuple[SegmentTable, Reductions]:
    """The tree plan's segments with every contributor a ROLE_PEER, and one LAST_ARRIVAL row per
    straddled output (module docstring: rows ascending, contributors in KV order)."""
    contrib = np.flatnonzero(segs.role != ROLE_COMPLETE)
    keys = (segs.first_tile[contrib], segs.q_block[contrib], segs.kv_head[contrib], segs.seq[contrib])
    rows = contrib[np.lexsort(keys)]  # by output, then KV position
    new_output = np.zeros(len(rows), bool)  # the row starts another output
    new_output[:1] = True
    for column in (segs.seq[rows], segs.kv_head[rows], segs.q_block[rows]):
        new_output[1:] |= column[1:] != column[:-1]
    starts = np.flatnonzero(new_output)
    counts = np.diff(np.append(starts, len(rows)))
    role = np.where(segs.role == ROLE_COMPLETE, ROLE_COMPLETE, ROLE_PEER)
    reductions = Reductions(
        seq=frozen_array(segs.seq[rows[starts]]), kv_head=frozen_array(segs.kv_head[rows[starts]]),
        q_block=frozen_array(segs.q_block[rows[starts]]), host_cta=frozen_array(np.full(len(starts), LAST_ARRIVAL)),
        peer_offsets=frozen_array(offsets_from_counts(counts)), peer_cta=frozen_array(segs.cta[rows]),
        peer_done_bytes=frozen_array(done_bytes(segs)[rows], np.float64),
    )
    return dataclasses.replace(segs, role=frozen_array(role)), reductions


def borrow_merge_terms(launch: Launch) -> Launch:
    """The attention launch with its last-arrival merge priced by MERGE_FAMILY's terms."""
    return dataclasses.replace(launch, merge_family=MERGE_FAMILY)
