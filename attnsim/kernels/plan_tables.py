"""The plan as device tensors: the Schedule's segment and reduction tables turned into int32 arrays
once per launcher, plus the stream-K merge tree and the partial-slot scratch.

Segment rows follow tiles.SEG_* columns: seq, kv_head, q_block, first_tile, n_tiles, role, context, slot
(where a ROLE_PEER segment writes its partial), merge_lo, merge_hi (the slots a segment merges:
stream-K's tree; under last arrival, the slots of the segment's output, whichever contributor merges them).

Last arrival (Reductions rows with host_cta LAST_ARRIVAL): a peer segment's slot is its index in the
Reductions peer list, its merge range its row's [peer_offsets[r], peer_offsets[r + 1]) (contributors
= its length) and the output's arrival counter is flags[merge_lo]. Stream-K's epilogue=last kernel
(lean_last.py) reads these; the split-KV kernel derives the same things from its program id.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from attnsim.kernels import tiles
from attnsim.simulator.partition.common import merge_block  # noqa: F401 (the launcher and compile_table read it here)
from attnsim.simulator.schedule import LAST_ARRIVAL, ROLE_HOST, ROLE_PEER, Schedule


def merge_tree(peers: np.ndarray, branching: int) -> tuple[dict[int, list[int]], list[int]]:
    """Spread one output's merge over its peers (ascending program ids).

    Level by level, runs of `branching` consecutive nodes elect their highest-id member, which
    merges the others; the host merges the last level (<= branching nodes). Children always have
    lower ids than their parent, and the lowest-id peer (the only one that may have segments after
    its peer segment) never merges, so no streaming program ever waits.
    Returns ({peer: [children...]}, host's children).
    """
    children: dict[int, list[int]] = {}
    level = [int(p) for p in peers]
    while len(level) > branching:
        leaders = []
        for start in range(0, len(level), branching):
            run = level[start:start + branching]
            children.setdefault(run[-1], []).extend(run[:-1])
            leaders.append(run[-1])
        level = leaders
    return children, level


def segment_rows(schedule: Schedule, branching: int) -> np.ndarray:
    """int64 [n_segments, SEG_COLS] for the kernels, partial slots numbered for contiguous merges.

    FlashDecoding: a peer's slot is its index in the Reductions peer list (the combine program of
    row r merges slots peer_offsets[r]:peer_offsets[r + 1]). Stream-K: slots are handed out merger
    by merger along the merge tree, so each merging segment reads a contiguous range.
    """
    segs, red = schedule.attention.segments, schedule.reductions
    rows = np.zeros((len(segs), int(tiles.SEG_COLS.value)), np.int64)
    rows[:, :6] = np.stack([segs.seq, segs.kv_head, segs.q_block, segs.first_tile, segs.n_tiles, segs.role], 1)
    rows[:, tiles.SEG_CONTEXT.value] = np.asarray(schedule.workload.contexts, np.int64)[segs.seq]
    rows[:, tiles.SEG_SLOT.value] = -1
    is_peer = segs.role == ROLE_PEER
    if (red.host_cta == LAST_ARRIVAL).any():  # slots and merge ranges from the Reductions peer list
        slot = combine_slots(segs, red, is_peer)
        row = np.repeat(np.arange(len(red)), np.diff(red.peer_offsets))[slot]
        rows[is_peer, tiles.SEG_SLOT.value] = slot
        rows[is_peer, tiles.SEG_MERGE_LO.value] = red.peer_offsets[row]
        rows[is_peer, tiles.SEG_MERGE_HI.value] = red.peer_offsets[row + 1]
        return rows
    if not (red.host_cta >= 0).any():  # no host CTAs: combine-launch slots, if any
        if (red.host_cta == -1).any() and not np.array_equal(red.peer_cta, segs.cta[is_peer]):
            rows[is_peer, tiles.SEG_SLOT.value] = combine_slots(segs, red, is_peer)
        else:  # the peer segments in CTA order are the Reductions peer list
            rows[is_peer, tiles.SEG_SLOT.value] = np.arange(is_peer.sum())
        return rows
    peer_row = dict(zip(segs.cta[is_peer].tolist(), np.flatnonzero(is_peer).tolist()))
    host_row = {(int(segs.cta[i]), int(segs.seq[i]), int(segs.kv_head[i]), int(segs.q_block[i])): i
                for i in np.flatnonzero(segs.role == ROLE_HOST)}
    merges_of: dict[int, list[int]] = {}  # segment row -> publishing programs it merges
    for r in np.flatnonzero(red.host_cta >= 0):
        children, top = merge_tree(red.peers_of(r), branching)
        for parent, kids in children.items():
            merges_of[peer_row[parent]] = kids
        merges_of[host_row[(int(red.host_cta[r]), int(red.seq[r]), int(red.kv_head[r]), int(red.q_block[r]))]] = top
    n_slots = 0
    for i in range(len(segs)):
        kids = merges_of.get(i, [])
        rows[i, tiles.SEG_MERGE_LO.value], rows[i, tiles.SEG_MERGE_HI.value] = n_slots, n_slots + len(kids)
        rows[[peer_row[k] for k in kids], tiles.SEG_SLOT.value] = np.arange(n_slots, n_slots + len(kids))
        n_slots += len(kids)
    return rows


def combine_slots(segs, red, is_peer: np.ndarray) -> np.ndarray:
    """The Reductions peer index of each peer segment (int64 [n_peer_segments], CTA order), where a
    plan lists peers in another order than its CTAs (FlashMLA's grid: parts x q-blocks, parts
    fastest; a last-arrival stream-K CTA contributing to two outputs, or several chunks of one). A
    combine program (or a last arrival) reads its row's slots contiguously either way."""
    n_peers = np.diff(red.peer_offsets)
    owner = zip(red.peer_cta.tolist(), *(np.repeat(a, n_peers).tolist() for a in (red.seq, red.kv_head, red.q_block)))
    index = {key: i for i, key in enumerate(numbered(owner))}  # (cta, seq, kv_head, q_block, k) -> peer index
    keys = zip(*(a[is_peer].tolist() for a in (segs.cta, segs.seq, segs.kv_head, segs.q_block)))
    slots = np.array([index.get(k, -1) for k in numbered(keys)], np.int64)
    if len(index) != len(red.peer_cta) or (slots < 0).any() or len(set(slots.tolist())) != len(slots):
        raise RuntimeError("the peer segments are not the Reductions peers one to one")
    return slots


def numbered(keys):
    """Each key with how many times it came before: a CTA contributing several chunks to one output
    (partition/streamk_chunks.py) lists them in KV order both as segments and as Reductions peers."""
    seen: dict = {}
    for key in keys:
        seen[key] = seen.get(key, -1) + 1
        yield (*key, seen[key])


def check_merge_order(schedule: Schedule, rows: np.ndarray) -> None:
    """In-kernel reduction safety: each program publishes at most once, every slot is published once
    and merged once, and only by a higher program id (with a co-resident grid: no deadlock)."""
    segs = schedule.attention.segments
    is_peer = segs.role == ROLE_PEER
    if len(np.unique(segs.cta[is_peer])) != is_peer.sum():
        raise RuntimeError("the plan gives a program two peer segments")
    slot = rows[:, tiles.SEG_SLOT.value]
    lo, hi = rows[:, tiles.SEG_MERGE_LO.value], rows[:, tiles.SEG_MERGE_HI.value]
    if sorted(slot[is_peer].tolist()) != list(range(is_peer.sum())) or (hi - lo).sum() != is_peer.sum():
        raise RuntimeError("merge tree does not consume every published partial exactly once")
    publisher = np.empty(is_peer.sum(), np.int64)
    publisher[slot[is_peer]] = segs.cta[is_peer]
    if (publisher >= np.repeat(segs.cta, hi - lo)).any():
        raise RuntimeError("a segment would wait on a program id >= its own (may deadlock)")


@dataclass(frozen=True)
class DeviceTables:
    """What the kernels index, uploaded once per launcher."""

    seg_offsets: torch.Tensor  # int32 [grid + 1]: segments of program p are rows seg_offsets[p]:[p + 1]
    segments: torch.Tensor  # int32 [n_segments, SEG_COLS]
    reductions: torch.Tensor  # int32 [n_reductions, SEG_COLS]: seq, kv_head, q_block (combine launch)
    peer_offsets: torch.Tensor  # int32 [n_reductions + 1]: combine slots of row r
    o_part: torch.Tensor  # fp32 [slots, BLOCK_M, v_dim]: one normalised partial per ROLE_PEER segment
    lse_part: torch.Tensor  # fp32 [slots, BLOCK_M]
    flags: torch.Tensor  # int32 [slots], 0 between launches (stream-K flags, last-arrival counters)

    @staticmethod
    def build(schedule: Schedule, block_m: int, branching: int, device: torch.device,
              in_kernel_reduction: bool) -> "DeviceTables":
        """in_kernel_reduction: the strategy's plans merge partials in-kernel (checked for deadlock freedom)."""
        segs, red, grid = schedule.attention.segments, schedule.reductions, schedule.grid
        rows = segment_rows(schedule, branching)
        if in_kernel_reduction or (red.host_cta >= 0).any():
            check_merge_order(schedule, rows)
        red_rows = np.zeros((len(red), int(tiles.SEG_COLS.value)), np.int64)
        red_rows[:, :3] = np.stack([red.seq, red.kv_head, red.q_block], 1).reshape(len(red), 3)
        slots = max(1, int((segs.role == ROLE_PEER).sum()), len(red.peer_cta))  # last arrival: a slot per CTA
        d = schedule.workload.partial_dim  # partial o width: the tiles' (head_dim padded), or MLA's kv_lora_rank

        def i32(values) -> torch.Tensor:
            return torch.from_numpy(np.array(values, dtype=np.int32)).to(device)

        return DeviceTables(
            seg_offsets=i32(segs.offsets(grid)), segments=i32(rows), reductions=i32(red_rows),
            peer_offsets=i32(red.peer_offsets),
            o_part=torch.zeros(slots, block_m, d, dtype=torch.float32, device=device),
            lse_part=torch.zeros(slots, block_m, dtype=torch.float32, device=device),
            flags=torch.zeros(slots, dtype=torch.int32, device=device),
        )


