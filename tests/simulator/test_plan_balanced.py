"""Balanced split-KV (partition/balanced.py), on random workloads and options:

- every (sequence, kv-head, q-block, KV tile) covered once, one segment per CTA;
- each output cut into ceil(tiles / k) chunks of k tiles on consecutive CTAs, ascending;
- CTA order longest-processing-time first (descending context, ties by output index);
- split outputs (only) merged by one combine row each, peers in CTA order = slot order;
- the searched chunk is the smallest multiple of the tile whose chunk count fits the target grid;
- a fixed chunk cuts a sequence the same way alone or inside any batch.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attnsim.errors import InputError
from attnsim.simulator.hardware import PRESETS
from attnsim.simulator.occupancy import resident_capacity
from plan_helpers import plan
from attnsim.simulator.partition.common import PlanConfig, kernel_family, outputs
from attnsim.simulator.partition.flashdecoding import combine_pieces
from attnsim.simulator.partition.balanced import chunk_for_grid
from attnsim.simulator.schedule import ROLE_COMPLETE, ROLE_PEER
from attnsim.simulator.workload import DecodeWorkload

from sim_helpers import (
    assert_common_invariants, expected_tiles, gpu_specs, plan_configs, planned, segments_by_output, workloads,
)

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
H100 = PRESETS["h100-sxm"]


def chunk_counts(sched) -> dict[tuple[int, int, int], int]:
    k = sched.notes["chunk_tokens"] // sched.kv_tile_tokens
    return {key: -(-tiles // k) for key, tiles in expected_tiles(sched).items()}


@PROPERTY
@given(planned("balanced"))
def test_every_kv_tile_is_covered_exactly_once(case):
    sched, config, _ = case
    assert_common_invariants(sched)
    segs = sched.attention.segments
    assert (segs.cta == np.arange(sched.grid)).all(), "one segment per CTA"
    assert sched.strategy == "balanced" and sched.splits == 0
    assert sched.notes["chunk_fixed"] == (config.chunk_tokens is not None)
    assert sched.notes["chunk_tokens"] % sched.kv_tile_tokens == 0


@PROPERTY
@given(planned("balanced"))
def test_outputs_are_cut_into_equal_chunks_on_consecutive_ctas(case):
    sched, _, _ = case
    segs, k = sched.attention.segments, sched.notes["chunk_tokens"] // sched.kv_tile_tokens
    counts, tiles = chunk_counts(sched), expected_tiles(sched)
    for key, rows in segments_by_output(sched).items():
        assert len(rows) == counts[key]
        assert (np.diff(segs.cta[rows]) == 1).all(), "an output's chunks run on consecutive CTAs"
        assert segs.first_tile[rows].tolist() == [c * k for c in range(len(rows))]
        assert segs.n_tiles[rows].tolist() == [min(k, tiles[key] - c * k) for c in range(len(rows))]
        assert (segs.role[rows] == (ROLE_COMPLETE if len(rows) == 1 else ROLE_PEER)).all()


@PROPERTY
@given(planned("balanced"))
def test_longest_outputs_run_first(case):
    sched, _, _ = case
    segs, contexts = sched.attention.segments, sched.workload.contexts
    outputs = list(expected_tiles(sched))  # common.outputs order
    first_rows = sorted((rows[0], key) for key, rows in segments_by_output(sched).items())
    lpt = sorted(outputs, key=lambda key: (-contexts[key[0]], outputs.index(key)))
    assert [key for _, key in first_rows] == lpt
    assert (np.diff(np.asarray(contexts)[segs.seq]) <= 0).all()


@PROPERTY
@given(planned("balanced"))
def test_only_split_outputs_are_combined_in_cta_order(case):
    sched, _, _ = case
    segs, red = sched.attention.segments, sched.reductions
    rows_of = segments_by_output(sched)
    split = sorted((rows[0], key) for key, rows in rows_of.items() if len(rows) > 1)
    assert [(int(red.seq[i]), int(red.kv_head[i]), int(red.q_block[i])) for i in range(len(red))] == \
        [key for _, key in split]
    assert (red.host_cta == -1).all()
    assert np.array_equal(red.peer_cta, segs.cta[segs.role == ROLE_PEER])  # slot = peer index
    assert np.array_equal(red.peer_done_bytes, segs.kv_bytes[segs.role == ROLE_PEER])
    for i, (_, key) in enumerate(split):
        assert red.peers_of(i).tolist() == segs.cta[rows_of[key]].tolist()
    if not split:
        assert len(sched.launches) == 1
        return
    combine = sched.launches[1]
    assert combine.name == "combine" and combine.family == kernel_family(sched.workload, "flashdecoding-combine")
    w = sched.workload
    pieces = combine_pieces(w, outputs(w, sched.kv_tile_tokens))  # MLA: column pieces; else row blocks
    assert combine.grid == pieces * len(red)
    rows = combine.cta_write_bytes / (w.v_dim * w.dtype_bytes)  # the rows (MLA: row-columns) each CTA writes
    read = rows > 0
    partial = combine.cta_read_bytes[read] / (np.tile(np.diff(red.peer_offsets), pieces)[read] * rows[read])
    assert np.allclose(partial, partial[0])  # reads its rows of one partial per chunk of its output


@PROPERTY
@given(planned("balanced"))
def test_searched_chunk_is_the_smallest_that_fits_the_target_grid(case):
    sched, config, gpu = case
    if config.chunk_tokens is not None:
        assert sched.notes["chunk_tokens"] == config.chunk_tokens
        return
    target = config.grid or resident_capacity(gpu, sched.attention.resources)
    tile, chunk = sched.kv_tile_tokens, sched.notes["chunk_tokens"]
    n_outputs, max_tiles = len(expected_tiles(sched)), max(expected_tiles(sched).values())
    if n_outputs > target:  # nothing fits: every output whole
        assert chunk == max_tiles * tile and sched.grid == n_outputs
        return
    assert sched.grid <= target
    assert chunk >= tile
    if chunk > tile:
        smaller = plan("balanced", sched.workload, gpu, dataclasses.replace(config, chunk_tokens=chunk - tile))
        assert smaller.grid > target


@PROPERTY
@given(workloads(), gpu_specs(), st.data())
def test_fixed_chunk_cuts_a_sequence_as_if_it_were_alone(workload, gpu, data):
    config = data.draw(plan_configs("balanced", workload, gpu))
    tile = plan("balanced", workload, gpu, config).kv_tile_tokens
    config = dataclasses.replace(config, chunk_tokens=tile * data.draw(st.integers(1, 12)))
    seq = data.draw(st.integers(0, workload.batch - 1))
    alone = DecodeWorkload.build(1, workload.q_heads, workload.kv_heads, workload.head_dim,
                                 [workload.contexts[seq]])
    in_batch, by_itself = plan("balanced", workload, gpu, config), plan("balanced", alone, gpu, config)
    a, b = in_batch.attention.segments, by_itself.attention.segments
    mine = np.flatnonzero(a.seq == seq)
    for name in ("kv_head", "q_block", "first_tile", "n_tiles", "role", "kv_bytes"):
        assert np.array_equal(getattr(a, name)[mine], getattr(b, name)), name
    red_a, red_b = in_batch.reductions, by_itself.reductions
    rows = np.flatnonzero(red_a.seq == seq)
    assert np.array_equal(np.diff(red_a.peer_offsets)[rows], np.diff(red_b.peer_offsets))


def test_hand_worked_target_of_eight_ctas():
    """contexts 37, 300, 129 at 16-token tiles: 3, 19, 9 tiles, 2 kv-heads. Chunks of k tiles need
    2 x (ceil(3/k) + ceil(19/k) + ceil(9/k)) CTAs: 10 at k = 9, 8 at k = 10, so the chunk is 160
    tokens. LPT: sequence 1 (two chunks per head), then 2, then 0."""
    workload = DecodeWorkload.build(3, 8, 2, 64, [37, 300, 129])
    sched = plan("balanced", workload, H100, PlanConfig(kv_tile_tokens=16, grid=8))
    segs, red = sched.attention.segments, sched.reductions
    assert sched.notes["chunk_tokens"] == 160 and sched.grid == 8
    assert segs.seq.tolist() == [1, 1, 1, 1, 2, 2, 0, 0]
    assert segs.kv_head.tolist() == [0, 0, 1, 1, 0, 1, 0, 1]
    assert segs.first_tile.tolist() == [0, 10, 0, 10, 0, 0, 0, 0]
    assert segs.n_tiles.tolist() == [10, 9, 10, 9, 9, 9, 3, 3]
    assert segs.role.tolist() == [ROLE_PEER] * 4 + [ROLE_COMPLETE] * 4
    assert red.seq.tolist() == [1, 1] and red.kv_head.tolist() == [0, 1]
    assert red.peer_offsets.tolist() == [0, 2, 4] and red.peer_cta.tolist() == [0, 1, 2, 3]
    assert [launch.grid for launch in sched.launches] == [8, 2]


def test_chunk_for_grid_examples():
    workload = DecodeWorkload.build(3, 8, 2, 64, [37, 300, 129])
    assert chunk_for_grid(workload, 16, 62) == 16  # one tile per chunk: 62 CTAs
    assert chunk_for_grid(workload, 16, 61) == 32  # 2 x (2 + 10 + 5) = 34
    assert chunk_for_grid(workload, 16, 6) == 304  # one chunk per output: 19 tiles
    assert chunk_for_grid(workload, 16, 5) == 304  # cannot fit: no split
    mqa = DecodeWorkload.build(1, 128, 1, 64, 1000)  # one sequence, two q-blocks
    assert chunk_for_grid(mqa, 64, 4) == 512  # 2 x ceil(16 / 8)


def test_no_split_has_no_combine_launch():
    workload = DecodeWorkload.build(4, 8, 8, 128, 1000)
    sched = plan("balanced", workload, H100, PlanConfig(chunk_tokens=1024, kv_tile_tokens=64))
    assert len(sched.launches) == 1 and len(sched.reductions) == 0 and sched.grid == 32


@pytest.mark.parametrize("chunk", [0, -64, 96])
def test_a_chunk_that_is_not_a_multiple_of_the_tile_is_refused(chunk):
    with pytest.raises(InputError) as err:
        plan("balanced", DecodeWorkload.build(2, 8, 2, 64, 100), H100, PlanConfig(kv_tile_tokens=64, chunk_tokens=chunk))
    assert err.value.field == "chunk_tokens"
