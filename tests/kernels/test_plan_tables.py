"""The plan's tables as the kernels see them: the stream-K merge tree and the segment rows."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from attnsim.kernels import tiles
from attnsim.kernels.plan_tables import check_merge_order, merge_block, merge_tree, segment_rows
from attnsim.simulator.hardware import from_name
from plan_helpers import plan
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.schedule import ROLE_HOST
from attnsim.simulator.workload import DecodeWorkload


@given(n_peers=st.integers(1, 400), branching=st.integers(2, 17), base=st.integers(0, 50))
def test_merge_tree_consumes_each_peer_once_from_below(n_peers, branching, base):
    peers = np.arange(base, base + n_peers)
    children, top = merge_tree(peers, branching)
    merged = sorted(top + [c for kids in children.values() for c in kids])
    assert merged == peers.tolist()  # every partial merged exactly once
    assert all(c < parent for parent, kids in children.items() for c in kids)  # waits only on lower ids
    assert base not in children  # the lowest-id peer (may stream on) never waits
    assert len(top) <= branching
    assert all(len(kids) < branching * (1 + np.log(n_peers) / np.log(branching)) for kids in children.values())


def test_segment_rows_match_the_plan():
    workload = DecodeWorkload.build(1, 8, 1, 128, 5000)
    schedule = plan("streamk", workload, from_name("h100"), PlanConfig(kv_tile_tokens=16, grid=200))
    rows = segment_rows(schedule, branching=5)
    check_merge_order(schedule, rows)
    segs = schedule.attention.segments
    assert (rows[:, tiles.SEG_N_TILES.value] == segs.n_tiles).all()
    host = np.flatnonzero(segs.role == ROLE_HOST)
    assert len(host) == 1 and rows[host[0], tiles.SEG_MERGE_HI.value] - rows[host[0], tiles.SEG_MERGE_LO.value] <= 5


@pytest.mark.parametrize("block_m, head_dim, warps, expected", [
    (16, 128, 4, 4), (16, 64, 4, 4), (32, 128, 4, 2), (32, 128, 8, 4), (64, 128, 4, 1), (64, 256, 8, 1)])
def test_merge_block_bounds_registers(block_m, head_dim, warps, expected):
    assert merge_block(block_m, head_dim, warps) == expected


def test_mirrored_triton_constants_match_the_simulator():
    """tiles.py mirrors two simulator constants as tl.constexpr (kernels cannot import numpy ones)."""
    from attnsim.simulator.workload import Q_BLOCK_ROWS
    from attnsim.simulator.schedule import ROLE_COMPLETE, ROLE_PEER

    assert tiles.Q_BLOCK_ROWS.value == Q_BLOCK_ROWS
    assert tiles.ROLE_PEER.value == ROLE_PEER and ROLE_COMPLETE != ROLE_PEER
