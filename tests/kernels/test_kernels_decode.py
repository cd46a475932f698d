"""The three decode kernels against the float64 reference on small shapes (CPU interpreter or GPU).

Tiny KV tiles (16 tokens) and small grids force every path: FlashDecoding with empty trailing
splits, stream-K ranges that straddle outputs and sequences, hosts merging several peers.
"""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attnsim import strategies
from attnsim.errors import InputError
from attnsim.kernels.launch import launcher_for
from attnsim.kernels.reference import attention_reference, max_relative_error
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.schedule import ROLE_HOST
from attnsim.simulator.workload import DecodeWorkload
from kernel_helpers import TOLERANCE, decode_inputs, run_checked

STRATEGIES = strategies.ours()  # every strategy our kernels run, from the registry

# (batch, q_heads, kv_heads, head_dim, contexts, dtype, splits, grid): MHA, GQA, MQA, a group > 64
# (two q-blocks), ragged and odd lengths, fp16 and bf16, d 64 and 128, and padded d 96 and 160.
CASES = {
    "mha-ragged-fp16-d64": (3, 2, 2, 64, (37, 100, 5), "float16", 3, 5),
    "gqa4-fp16-d128": (2, 8, 2, 128, (65, 17), "float16", 2, 3),
    "mqa-bf16-d64": (3, 8, 1, 64, (33, 129, 1), "bfloat16", 4, 7),
    "gqa2-bf16-d128-odd": (2, 4, 2, 128, (31, 97), "bfloat16", 8, 4),
    "mqa128-two-qblocks": (1, 128, 1, 64, (40,), "float16", 2, 2),
    "one-output-many-peers": (1, 4, 1, 128, (631,), "bfloat16", 40, 40),  # merge tree of depth 3
    # FA2's head dims that are not powers of two: tiles of the padded width, q / K / V / o masked (tiles.D_VALID)
    "gqa2-fp16-d96-padded": (2, 4, 2, 96, (37, 100), "float16", 3, 5),
    "mqa-bf16-d160-padded": (2, 4, 1, 160, (33, 70), "bfloat16", 2, 3),
}


def case_inputs(name: str):
    batch, hq, hkv, d, contexts, dtype, splits, grid = CASES[name]
    workload = DecodeWorkload.build(batch, hq, hkv, d, list(contexts), dtype=dtype)
    return workload, PlanConfig(kv_tile_tokens=16, splits=splits, grid=grid)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_matches_reference(strategy, case, device, h100):
    workload, config = case_inputs(case)
    _, err = run_checked(strategy, workload, h100, config, device, seed=sum(map(ord, case)))
    assert err <= TOLERANCE


@pytest.mark.parametrize("strategy", ["flashdecoding", "streamk"])
def test_default_grid_and_splits(strategy, device, h100):
    """No overrides: stream-K's grid is the resident capacity capped at the tile count (one tile per
    program here, so every output straddles), FlashDecoding's splits come from FA2's heuristic."""
    workload = DecodeWorkload.build(2, 4, 2, 64, [50, 23], dtype="float16")
    launcher, err = run_checked(strategy, workload, h100, PlanConfig(kv_tile_tokens=16), device, seed=3)
    assert err <= TOLERANCE
    if strategy == "streamk":
        assert launcher.schedule.grid == launcher.schedule.notes["total_tiles"]


def test_streamk_cases_exercise_reductions(device, h100):
    """The stream-K cases above really straddle: hosts with several peers, segments of several sequences."""
    workload, config = case_inputs("mha-ragged-fp16-d64")
    schedule = launcher_for("streamk", workload, h100, config, device=device).schedule
    segs = schedule.attention.segments
    assert (np.diff(schedule.reductions.peer_offsets) >= 2).any()
    assert any(len(set(segs.seq[segs.cta == c])) > 1 for c in range(schedule.grid))
    assert (segs.role == ROLE_HOST).sum() == len(schedule.reductions)
    workload, config = case_inputs("one-output-many-peers")
    assert len(launcher_for("streamk", workload, h100, config, device=device).schedule.reductions.peers_of(0)) == 39


@pytest.mark.parametrize("strategy", ["flashdecoding", "streamk"])
def test_repeated_runs_reuse_scratch(strategy, device, h100):
    """Flags re-arm themselves and partial slots are rewritten: every run is as right as the first."""
    workload, config = case_inputs("gqa4-fp16-d128")
    launcher, err = run_checked(strategy, workload, h100, config, device, seed=5, runs=3)
    assert err <= TOLERANCE
    assert int(launcher.tables.flags.abs().sum()) == 0


def test_custom_scale(device, h100):
    workload = DecodeWorkload.build(1, 4, 4, 64, 48)
    launcher = launcher_for("streamk", workload, h100, PlanConfig(kv_tile_tokens=16, grid=2), device=device, sm_scale=0.3)
    q, k, v = decode_inputs(workload, device, seed=9)
    out = launcher.run(q, k, v)
    assert max_relative_error(out, attention_reference(q, k, v, workload.contexts, sm_scale=0.3)) <= TOLERANCE


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(contexts=st.lists(st.integers(1, 90), min_size=1, max_size=3), group=st.sampled_from([1, 2, 8]),
       grid=st.integers(1, 12), seed=st.integers(0, 10**6))
def test_streamk_any_grid(contexts, group, grid, seed, device, h100):
    """Any ragged batch and any grid up to the tile count: stream-K equals the reference."""
    workload = DecodeWorkload.build(len(contexts), 2 * group, 2, 64, contexts)
    _, err = run_checked("streamk", workload, h100, PlanConfig(kv_tile_tokens=16, grid=grid), device, seed=seed)
    assert err <= TOLERANCE


def test_rejects_grid_above_capacity(device, h100):
    workload = DecodeWorkload.build(1, 8, 8, 64, 4096)
    with pytest.raises(InputError, match="resident capacity"):
        launcher_for("streamk", workload, h100, PlanConfig(grid=10**5), device=device)  # under limits.MAX_PLAN_CTAS


@pytest.mark.parametrize("kwargs, field", [(dict(head_dim=80), "head_dim"), (dict(kv_dtype="float32"), "kv_dtype"),
                                           (dict(dtype="float32"), "dtype")])
def test_rejects_unsupported_workloads(kwargs, field, h100):
    """A head dim FA2 does not compile (80), a float32 cache and float32 queries are refused by the workload
    (no decode kernel runs them), before any launcher is built."""
    with pytest.raises(InputError) as info:
        workload = DecodeWorkload(**{**dict(batch=1, q_heads=4, kv_heads=4, head_dim=64, contexts=(64,)), **kwargs})
        launcher_for("fa2", workload, h100, device="cpu")
    assert info.value.field == field


def test_rejects_mismatched_inputs(device, h100):
    workload = DecodeWorkload.build(2, 4, 2, 64, 32)
    launcher = launcher_for("fa2", workload, h100, PlanConfig(kv_tile_tokens=16), device=device)
    q, k, v = decode_inputs(workload, device, seed=1)
    with pytest.raises(InputError, match="k_cache"):
        launcher.run(q, k[:, :, :16], v)
    with pytest.raises(InputError, match="q"):
        launcher.run(q.to(torch.bfloat16), k, v)


def nan_padded(x: torch.Tensor, width: int) -> torch.Tensor:
    """x [..., d] as a view of a buffer [..., width] whose columns past d are NaN (rows `width` apart)."""
    buffer = torch.full((*x.shape[:-1], width), float("nan"), dtype=x.dtype, device=x.device)
    buffer[..., :x.shape[-1]] = x
    return buffer[..., :x.shape[-1]]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_padded_head_dim_reads_and_writes_only_its_columns(strategy, device, h100):
    """d 96 runs tiles 128 wide: q, K and V sit in buffers whose columns 96-127 are NaN (rows 128 apart), so a
    load past the head's columns poisons the output; o's columns 96-127 hold a sentinel that must survive."""
    workload = DecodeWorkload.build(2, 4, 2, 96, [37, 100], dtype="float16")
    launcher = launcher_for(strategy, workload, h100, PlanConfig(kv_tile_tokens=16, splits=3, grid=5), device=device)
    q, k, v = decode_inputs(workload, device, seed=11)
    ref = attention_reference(q, k, v, workload.contexts)
    out = torch.full((*q.shape[:-1], 128), 7.0, dtype=q.dtype, device=q.device)
    launcher.run(nan_padded(q, 128), nan_padded(k, 128), nan_padded(v, 128), out[..., :96])
    assert max_relative_error(out[..., :96], ref) <= TOLERANCE
    assert bool((out[..., 96:] == 7.0).all())
