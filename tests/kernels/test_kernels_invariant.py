"""Batch invariance, bitwise: one sequence's output alone equals its output inside other batches (other
companions, other batch sizes, ragged), for every plan the planner picks with batch_invariant=1 (fa2,
a fixed chunk, a fixed chunk capped at max_splits, merged by a combine launch or by the last arriver,
a fixed split count either way, stream-K cut at fixed chunks) and for `auto` itself, in fp16 and bf16.

CPU interpreter (TRITON_INTERPRET=1) or a GPU; plans for the calibrated H200 profile, 16-token KV tiles
so that a few hundred tokens make several splits."""

from __future__ import annotations

import pytest
import torch

from attnsim.kernels.launch import launcher_for
from attnsim.kernels.reference import attention_reference, max_relative_error
from attnsim.planner import invariant
from attnsim.planner.choose import make_plan
from attnsim.profiles import resolve_gpu
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.workload import DecodeWorkload
from kernel_helpers import TOLERANCE, decode_inputs

H200 = resolve_gpu("h200")
TILE = 16
SHAPE = (4, 2, 64)  # q_heads, kv_heads, head_dim
MINE = 300  # tokens of the sequence followed: 19 tiles
# (companions with the sequence at `position`): other lengths, other sizes, ragged, longer and shorter
BATCHES = (((37, MINE, 129), 1), ((500, 17, MINE), 2), ((MINE, MINE, 64, 1000), 0), ((MINE,) * 6, 5))
PLANS = ("fa2", "balanced:chunk_tokens=64",  # 5 chunks, merged by the combine launch
         "balanced:chunk_tokens=32,max_splits=4",  # 19 tiles: 4 chunks of 5 tiles (the cap binds)
         "flashdecoding:splits=3",  # FA2's ranges of its own 19 tiles: 7 + 7 + 5
         "splitkv:splits=4",  # one launch, merged by the last arriver in split order
         "splitkv:chunk_tokens=64",  # balanced's chunks in one launch: 5 splits of its own, last arriver merges
         "splitkv:chunk_tokens=32,max_splits=4",  # the cap binds: 4 splits of 5 tiles
         "streamk:epilogue=last,chunk_tokens=64",  # 5 chunks dealt over a persistent grid, last arriver merges
         "streamk:epilogue=last,chunk_tokens=32,max_splits=4")


def sequence_alone(mine: int, dtype: str, device):
    alone = DecodeWorkload.build(1, *SHAPE, mine, dtype=dtype)
    q, k, v = decode_inputs(alone, device, seed=5)
    return alone, (q[0], k[0, :, :mine], v[0, :, :mine])


def output_in(contexts, position: int, seq, spec: str, config: PlanConfig, dtype: str, device):
    """(plan spec, output of `seq` at `position`) of a batch whose other sequences are random."""
    q_s, k_s, v_s = seq
    workload = DecodeWorkload.build(len(contexts), *SHAPE, list(contexts) if len(contexts) > 1 else contexts[0],
                                    dtype=dtype)
    q, k, v = decode_inputs(workload, device, seed=7 * len(contexts) + position)
    n = k_s.shape[1]
    q[position], k[position, :, :n], v[position, :, :n] = q_s, k_s, v_s
    launcher = launcher_for(spec, workload, H200, config, device=device)
    return launcher.meta["plan"], launcher.run(q, k, v)[position]


def check_invariant(spec: str, config: PlanConfig, mine: int, dtype: str, device) -> str:
    """Bitwise equal in every batch, right against float64 alone; returns the plan that ran."""
    alone, seq = sequence_alone(mine, dtype, device)
    plan, reference = output_in((mine,), 0, seq, spec, config, dtype, device)
    q = seq[0][None]
    truth = attention_reference(q, seq[1][None], seq[2][None], alone.contexts)[0]
    assert max_relative_error(reference, truth) <= TOLERANCE
    for contexts, position in BATCHES:
        contexts = tuple(mine if c == MINE else c for c in contexts)
        ran, out = output_in(contexts, position, seq, spec, config, dtype, device)
        assert ran == plan, (contexts, ran, plan)  # the same concrete plan whatever the batch
        assert torch.equal(out, reference), (spec, dtype, contexts)
    return plan


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("spec", PLANS)
def test_fixed_plans_are_bitwise_batch_invariant(spec, dtype, device):
    check_invariant(spec, PlanConfig(kv_tile_tokens=TILE), MINE, dtype, device)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_a_one_chunk_sequence_written_alone_or_merged_in_a_batch_has_the_same_bits(dtype, device):
    """40 tokens, one 64-token chunk: alone the grid has one split and the program writes o; beside a
    1,000-token sequence the grid has 16 and its one partial is merged by its last arrival (weight 1)."""
    plan = check_invariant("splitkv:chunk_tokens=64", PlanConfig(kv_tile_tokens=TILE), 40, dtype, device)
    assert plan == "splitkv:kv_tile_tokens=16,chunk_tokens=64"


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_auto_batch_invariant_is_bitwise_batch_invariant(dtype, device, monkeypatch):
    """Whatever plan the planner fixes for the shape (scored on a small grid here, to save time): it cuts
    1,300 tokens into several pieces, merged in the same order in every batch."""
    monkeypatch.setattr(invariant, "GRID_BATCHES", (1, 8, 64))
    monkeypatch.setattr(invariant, "GRID_CONTEXTS", (1024, 16384, 131072))
    monkeypatch.setattr(invariant, "_CHOICES", {})
    plan = check_invariant("auto", PlanConfig(kv_tile_tokens=TILE, batch_invariant=1), 1300, dtype, device)
    assert plan.split(":")[0] in ("fa2", "balanced", "flashdecoding", "splitkv")
    alone = make_plan(plan, DecodeWorkload.build(1, *SHAPE, 1300, dtype=dtype), H200).schedule
    assert (alone.launches[0].segments.kv_head == 0).sum() > 1, plan
