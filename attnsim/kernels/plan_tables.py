"""The plan as device tensors: the Schedule's segment and reduction tables turned into int32 arrays
once per launcher, plus the stream-K merge tree and the partial-slot scratch.

Segment rows follow tiles.SEG_* columns: seq, kv_head, q_block, first_tile, n_tiles, role,
merge_lo, merge_hi, where merge_slots[merge_lo:merge_hi] are the program ids whose partials the
segment merges (stream-K only; empty elsewhere).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from attnsim.kernels import tiles
from attnsim.simulator.schedule import ROLE_HOST, ROLE_PEER, Schedule


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


def segment_rows(schedule: Schedule, branching: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows int64 [n_segments, SEG_COLS], merge_slots int64 [n_merges]) for the kernels."""
    segs, red = schedule.attention.segments, schedule.reductions
    rows = np.zeros((len(segs), int(tiles.SEG_COLS.value)), np.int64)
    rows[:, :6] = np.stack([segs.seq, segs.kv_head, segs.q_block, segs.first_tile, segs.n_tiles, segs.role], 1)
    merges_of: dict[int, list[int]] = {}  # segment row -> slots it merges
    peer_row = {int(c): i for i, c in zip(np.flatnonzero(segs.role == ROLE_PEER), segs.cta[segs.role == ROLE_PEER])}
    host_row = {(int(segs.cta[i]), int(segs.seq[i]), int(segs.kv_head[i]), int(segs.q_block[i])): i
                for i in np.flatnonzero(segs.role == ROLE_HOST)}
    for r in np.flatnonzero(red.host_cta >= 0):
        children, top = merge_tree(red.peers_of(r), branching)
        for parent, kids in children.items():
            merges_of[peer_row[parent]] = kids
        merges_of[host_row[(int(red.host_cta[r]), int(red.seq[r]), int(red.kv_head[r]), int(red.q_block[r]))]] = top
    flat: list[int] = []
    for i in range(len(segs)):
        rows[i, tiles.SEG_MERGE_LO.value] = len(flat)
        flat.extend(merges_of.get(i, []))
        rows[i, tiles.SEG_MERGE_HI.value] = len(flat)
    return rows, np.asarray(flat, np.int64)


def check_merge_order(schedule: Schedule, rows: np.ndarray, merge_slots: np.ndarray) -> None:
    """In-kernel reduction safety: each program publishes at most once, every published slot is
    merged exactly once, and only by a higher program id (co-resident grid: no deadlock)."""
    segs = schedule.attention.segments
    publishers = segs.cta[segs.role == ROLE_PEER]
    if len(np.unique(publishers)) != len(publishers):
        raise RuntimeError("stream-K plan gives a program two peer segments (one partial slot each)")
    if sorted(merge_slots.tolist()) != sorted(publishers.tolist()):
        raise RuntimeError("merge tree does not consume every published partial exactly once")
    lo, hi = rows[:, tiles.SEG_MERGE_LO.value], rows[:, tiles.SEG_MERGE_HI.value]
    waiter = np.repeat(segs.cta, hi - lo)
    if (merge_slots >= waiter).any():
        raise RuntimeError("a segment would wait on a program id >= its own (may deadlock)")


@dataclass(frozen=True)
class DeviceTables:
    """What the kernels index, uploaded once per launcher."""

    seg_offsets: torch.Tensor  # int32 [grid + 1]: segments of program p are rows seg_offsets[p]:[p + 1]
    segments: torch.Tensor  # int32 [n_segments, SEG_COLS]
    merge_slots: torch.Tensor  # int32 [n_merges]
    reductions: torch.Tensor  # int32 [n_reductions, SEG_COLS]: seq, kv_head, q_block (combine launch)
    peer_offsets: torch.Tensor  # int32 [n_reductions + 1]
    peer_cta: torch.Tensor  # int32 [n_peers]
    lengths: torch.Tensor  # int32 [batch]: tokens per sequence
    o_part: torch.Tensor  # fp32 [slots, BLOCK_M, head_dim]: partial of program p in slot p
    lse_part: torch.Tensor  # fp32 [slots, BLOCK_M]
    flags: torch.Tensor  # int32 [grid], 0 between launches (stream-K)

    @staticmethod
    def build(schedule: Schedule, block_m: int, block_p: int, device: torch.device) -> "DeviceTables":
        segs, red, grid = schedule.attention.segments, schedule.reductions, schedule.grid
        rows, merge_slots = segment_rows(schedule, branching=block_p + 1)
        if schedule.strategy == "streamk":
            check_merge_order(schedule, rows, merge_slots)
        red_rows = np.zeros((len(red), int(tiles.SEG_COLS.value)), np.int64)
        red_rows[:, :3] = np.stack([red.seq, red.kv_head, red.q_block], 1).reshape(len(red), 3)
        slots = grid if len(red) else 1
        d = schedule.workload.head_dim

        def i32(values) -> torch.Tensor:
            return torch.from_numpy(np.array(values, dtype=np.int32)).to(device)

        return DeviceTables(
            seg_offsets=i32(segs.offsets(grid)), segments=i32(rows), merge_slots=i32(merge_slots),
            reductions=i32(red_rows), peer_offsets=i32(red.peer_offsets), peer_cta=i32(red.peer_cta),
            lengths=i32(schedule.workload.contexts),
            o_part=torch.zeros(slots, block_m, d, dtype=torch.float32, device=device),
            lse_part=torch.zeros(slots, block_m, dtype=torch.float32, device=device),
            flags=torch.zeros(max(grid, 1), dtype=torch.int32, device=device),
        )


def merge_block(block_m: int, head_dim: int) -> int:
    """Partials merged per step (BLOCK_P): a [BLOCK_P, BLOCK_M, head_dim] fp32 tile of <= 8192 elements."""
    return max(1, 2 ** int(math.log2(max(1, 8192 // (block_m * head_dim)))))
