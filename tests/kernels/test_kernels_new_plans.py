"""The hybrid (DP + stream-K) and balanced split-KV plans run unchanged by the existing kernels:
hybrid by the stream-K kernel, balanced by the FlashDecoding kernel and its combine launch.

Small shapes (CPU interpreter or GPU): every case is checked against the float64 reference, and a
fixed chunk makes one sequence's output bitwise identical alone and inside other batches.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attnsim.kernels.launch import launcher_for
from attnsim.kernels.plan_tables import check_merge_order, segment_rows
from attnsim.kernels.reference import attention_reference, max_relative_error
from plan_helpers import plan
from attnsim.simulator.hardware import from_name
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.schedule import ROLE_HOST, ROLE_PEER
from attnsim.simulator.workload import DecodeWorkload
from kernel_helpers import TOLERANCE, decode_inputs

H100 = from_name("h100")


def h100_launcher(strategy: str, workload: DecodeWorkload, config: PlanConfig, device):
    """launcher_for() plans both strategies and prepares the kernel that runs them (the registry's entries)."""
    return launcher_for(strategy, workload, H100, config, device=device)


def ragged(contexts=(37, 300, 129), q_heads: int = 8, kv_heads: int = 2) -> DecodeWorkload:
    return DecodeWorkload.build(len(contexts), q_heads, kv_heads, 64, list(contexts))


# (strategy, PlanConfig kwargs): DP waves with hosts and peers after them, DP only, no DP (stream-K),
# balanced with a searched chunk (small target / default capacity) and with fixed chunks.
CASES = {
    "hybrid-dp2-grid2": ("hybrid", dict(kv_tile_tokens=16, grid=2, dp_outputs=2)),
    "hybrid-dp4-grid4": ("hybrid", dict(kv_tile_tokens=16, grid=4, dp_outputs=4)),
    "hybrid-dp3-grid3-tile32": ("hybrid", dict(kv_tile_tokens=32, grid=3, dp_outputs=3)),
    "hybrid-default-dp-grid2": ("hybrid", dict(kv_tile_tokens=16, grid=2)),
    "hybrid-no-dp": ("hybrid", dict(kv_tile_tokens=16, grid=5, dp_outputs=0)),
    "balanced-target8": ("balanced", dict(kv_tile_tokens=16, grid=8)),
    "balanced-default": ("balanced", dict(kv_tile_tokens=16)),
    "balanced-chunk64": ("balanced", dict(kv_tile_tokens=16, chunk_tokens=64)),
    "balanced-chunk32-tile32": ("balanced", dict(kv_tile_tokens=32, chunk_tokens=32)),
}


@pytest.mark.parametrize("case", CASES)
def test_matches_reference(case, device):
    strategy, options = CASES[case]
    workload = ragged()
    launcher = h100_launcher(strategy, workload, PlanConfig(**options), device)
    q, k, v = decode_inputs(workload, device, seed=sum(map(ord, case)))
    out = torch.full_like(q, float("nan"))
    launcher.run(q, k, v, out)
    assert max_relative_error(out, attention_reference(q, k, v, workload.contexts)) <= TOLERANCE
    if strategy == "hybrid":
        assert int(launcher.tables.flags.abs().sum()) == 0, "every published flag was taken"


def test_cases_exercise_dp_and_reductions():
    """The hybrid cases above really mix DP work with in-kernel merges; balanced ones split and don't."""
    for case in ("hybrid-dp2-grid2", "hybrid-dp4-grid4", "hybrid-dp3-grid3-tile32"):
        sched = plan("hybrid", ragged(), H100, PlanConfig(**CASES[case][1]))
        assert sched.notes["dp_outputs"] > 0 and (sched.attention.segments.role == ROLE_HOST).any()
    assert plan("balanced", ragged(), H100, PlanConfig(**CASES["balanced-chunk64"][1])).notes["split_outputs"] == 4


@settings(max_examples=40, deadline=None)
@given(contexts=st.lists(st.integers(1, 400), min_size=1, max_size=4), kv_heads=st.sampled_from([1, 2, 4]),
       grid=st.integers(1, 24), dp_outputs=st.one_of(st.none(), st.integers(0, 16)),
       tile=st.sampled_from([16, 32]), branching=st.sampled_from([2, 3, 5]))
def test_kernel_tables_accept_every_hybrid_plan(contexts, kv_heads, grid, dp_outputs, tile, branching):
    """segment_rows + check_merge_order: one publication per program, every slot merged once by a
    higher program id; balanced plans of the same workloads get slot = peer index."""
    workload = ragged(contexts, 2 * kv_heads, kv_heads)
    config = PlanConfig(kv_tile_tokens=tile, grid=grid, dp_outputs=dp_outputs)
    schedule = plan("hybrid", workload, H100, config)
    check_merge_order(schedule, segment_rows(schedule, branching))
    balanced = plan("balanced", workload, H100, config)
    rows, is_peer = segment_rows(balanced, branching), balanced.attention.segments.role == ROLE_PEER
    assert rows[is_peer, 7].tolist() == list(range(is_peer.sum()))  # tiles.SEG_SLOT


def sequence_output_in(batch_contexts, position: int, seq_inputs, device) -> torch.Tensor:
    """Output of the sequence (q [q_heads, d], k, v [kv_heads, n, d]) placed at `position` of a batch
    whose other sequences are random, planned balanced with a fixed 64-token chunk."""
    q_s, k_s, v_s = seq_inputs
    workload = ragged(batch_contexts)
    q, k, v = decode_inputs(workload, device, seed=len(batch_contexts) * 7 + position)
    n = k_s.shape[1]
    q[position], k[position, :, :n], v[position, :, :n] = q_s, k_s, v_s
    launcher = h100_launcher("balanced", workload, PlanConfig(kv_tile_tokens=16, chunk_tokens=64), device)
    return launcher.run(q, k, v)[position]


def test_fixed_chunk_is_batch_invariant_bitwise(device):
    """300 tokens in 64-token chunks: five partials merged in the same order in every batch."""
    alone = ragged((300,))
    q, k, v = decode_inputs(alone, device, seed=11)
    mine = (q[0], k[0, :, :300], v[0, :, :300])
    reference = sequence_output_in((300,), 0, mine, device)
    assert max_relative_error(reference, attention_reference(q, k, v, alone.contexts)[0]) <= TOLERANCE
    for contexts, position in (((37, 300, 129), 1), ((500, 17, 300), 2), ((300, 300, 64, 1000), 0)):
        assert torch.equal(sequence_output_in(contexts, position, mine, device), reference), contexts
    in_batch = plan("balanced", ragged((500, 17, 300)), H100, PlanConfig(kv_tile_tokens=16, chunk_tokens=64))
    assert np.diff(in_batch.reductions.peer_offsets).tolist() == [8, 8, 5, 5]  # per kv-head: 500, 300 tokens
