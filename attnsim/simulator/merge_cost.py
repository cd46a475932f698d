"""The merges' cost: how many dependent rounds a host CTA or a last arrival spends folding partials.

A host CTA (Reductions.host_cta) merges its peers' partials one after another, or a level of a fanin-ary tree at a
time (merge_steps); cost.cta_fixed_us bills fixup_per_peer_us per step. An output merged by its last arrival
(Reductions LAST_ARRIVAL) bills a fix-up to whichever peer arrives last (last_arrival_merge_us), once the engine knows
who that is, per load round of the merge (last_arrival_steps: query rows x partials, not partials alone), with the
terms of the launch's merge_family (stream-K's epilogue=last borrows split-KV's).
"""

from __future__ import annotations

import numpy as np

from attnsim.simulator.hardware import CostParams
from attnsim.simulator.schedule import LAST_ARRIVAL, Reductions
from attnsim.simulator.workload import Q_BLOCK_ROWS, DecodeWorkload


def merge_steps(n_peers: np.ndarray, fanin: float) -> np.ndarray:
    """Merge steps on a host's critical path: one per peer, or one per level of a fanin-ary tree
    (P peers + the host's own partial need ceil(log_fanin(P + 1)) levels)."""
    if fanin < 2:
        return n_peers.astype(np.float64)
    return np.ceil(np.log(n_peers + 1.0) / np.log(fanin) - 1e-9)



# The last-arrival merge (kernels/arrival.py merge_store) takes its q-block's valid query rows
# LAST_ARRIVAL_MERGE_ROWS at a time; for each row group it loads LAST_ARRIVAL_STEP_ELEMS // width partials
# (fp32, width = v_dim) a step, one software pipeline over every (row group, step), two steps ahead
# across row groups too; a step is billed as a round (fixup_per_peer_us, fitted on the kernel's merges).
LAST_ARRIVAL_MERGE_ROWS = 4
LAST_ARRIVAL_STEP_ELEMS = 1024


def last_arrival_steps(workload: DecodeWorkload, q_block: np.ndarray, n_merged: np.ndarray) -> np.ndarray:
    """Dependent L2 load rounds of last-arrival merges of `n_merged` partials of q-blocks `q_block` [n]:
    ceil(rows / 4) row groups x ceil(n_merged / (1024 / width)) steps + 1 (the prologue's loads).

    A round moves 4 rows x 1024 / width partials whatever the q-block's rows, so a verify block of 64
    packed rows (q_len 8 x group 8) merges in 16x the rounds of a decode q-block of <= 4 rows: the
    merge is paced by these round trips (~0.4 µs each on the H200), not by the partials' bytes."""
    rows = np.minimum(workload.q_len * workload.group - np.asarray(q_block) * Q_BLOCK_ROWS, Q_BLOCK_ROWS)
    per_step = max(1, LAST_ARRIVAL_STEP_ELEMS // workload.v_dim)
    n_merged = np.asarray(n_merged, np.float64)
    return np.where(n_merged > 0, np.ceil(rows / LAST_ARRIVAL_MERGE_ROWS) * np.ceil(n_merged / per_step) + 1, 0.0)


def last_arrival_merge_us(params: CostParams, reductions: Reductions, peer_arrival_us: np.ndarray,
                          grid: int, workload: DecodeWorkload) -> np.ndarray:
    """Merge time per CTA [grid] of the outputs merged by their last arrival: each such output's fix-up
    (fixup_fixed_us + fixup_per_peer_us per load round of its merge, last_arrival_steps, over the
    partials its peers published: an empty split arrives but publishes none) lands on the peer with the
    latest arrival in `peer_arrival_us` [n_peers] (ties: the highest CTA id)."""
    rows = reductions.host_cta == LAST_ARRIVAL
    n_peers = reductions.peer_offsets[1:] - reductions.peer_offsets[:-1]
    row_of_peer = np.arange(len(reductions)).repeat(n_peers)
    kept = rows[row_of_peer]
    peers, row_ids = reductions.peer_cta[kept], row_of_peer[kept]
    order = np.lexsort((peers, peer_arrival_us[kept], row_ids))  # by row, then arrival, then CTA id
    last = peers[order[n_peers[rows].cumsum() - 1]]  # [rows]: each row's last peer
    published = np.bincount(row_of_peer, weights=reductions.peer_done_bytes > 0, minlength=len(reductions))
    steps = last_arrival_steps(workload, reductions.q_block[rows], published[rows])
    fixup = params.fixup_fixed_us + params.fixup_per_peer_us * steps
    return np.bincount(last, weights=fixup, minlength=grid)
