"""The single-launch split-KV kernel (kernels/split_kv.py) on small shapes (CPU interpreter or GPU).

Against the float64 reference with S = 1 and S > 1, MHA / GQA / MQA, d 32-256, fp16 and bf16, a
ragged batch whose short sequences leave splits empty (they must still arrive at the counter, or
their output is never merged and stays NaN). The arrival counters are 0 after every launch; repeated
launches are bitwise identical; S = 1 touches no partial and no counter; and the rows the kernel
reads by program id are the plan's (one plan, two consumers).
"""

import numpy as np
import pytest
import torch

from attnsim.kernels.launch import launch_grid, launcher_for
from attnsim.kernels.reference import attention_reference, max_relative_error
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.schedule import LAST_ARRIVAL, ROLE_COMPLETE, ROLE_PEER
from attnsim.simulator.workload import DecodeWorkload
from kernel_helpers import TOLERANCE, decode_inputs, run_checked

NAME = "splitkv"
# name: (batch, q_heads, kv_heads, head_dim, contexts, dtype, splits); 16-token KV tiles
CASES = {
    "mha-one-split": (2, 4, 4, 64, (40, 70), "float16", 1),
    "gqa4-fp16-d128": (2, 8, 2, 128, (65, 17), "float16", 4),  # 17 tokens: 2 tiles, splits 2 and 3 empty
    "mqa-bf16": (1, 8, 1, 64, (200,), "bfloat16", 8),
    "ragged-empty-splits": (3, 8, 2, 64, (5, 100, 33), "float16", 4),  # 1 tile: splits 1..3 of seq 0 empty
    "gqa8-three-splits-d32": (2, 16, 2, 32, (97, 48), "bfloat16", 3),
    "d256": (1, 4, 2, 256, (50,), "float16", 2),
    # 63 tiles in 21 non-empty splits of 24: three pipelined merge steps of 8 (the last part-empty), and
    # 8 rows per kv-head: two row passes
    "many-splits-d128": (2, 16, 2, 128, (1000, 130), "float16", 24),
}


def case(name: str):
    batch, hq, hkv, d, contexts, dtype, splits = CASES[name]
    return (DecodeWorkload.build(batch, hq, hkv, d, list(contexts), dtype=dtype),
            PlanConfig(kv_tile_tokens=16, splits=splits))


@pytest.mark.parametrize("name", CASES)
def test_matches_reference_and_leaves_counters_at_zero(name, device, h100):
    workload, config = case(name)
    launcher, err = run_checked(NAME, workload, h100, config, device, seed=sum(map(ord, name)), runs=2)
    assert err <= TOLERANCE
    assert launcher.schedule.splits == config.splits
    assert int(launcher.tables.flags.abs().sum()) == 0


def test_repeated_launches_are_bitwise_identical(device, h100):
    workload, config = case("ragged-empty-splits")
    launcher = launcher_for(NAME, workload, h100, config, device=device)
    q, k, v = decode_inputs(workload, device, seed=7)
    first = launcher.run(q, k, v, torch.full_like(q, float("nan"))).clone()
    for _ in range(3):
        out = launcher.run(q, k, v, torch.full_like(q, float("nan")))
        assert torch.equal(out, first)
        assert int(launcher.tables.flags.abs().sum()) == 0
    assert max_relative_error(first, attention_reference(q, k, v, workload.contexts)) <= TOLERANCE


def test_one_split_writes_o_without_partials_or_counters(device, h100):
    workload, config = case("mha-one-split")
    launcher = launcher_for(NAME, workload, h100, config, device=device)
    t = launcher.tables
    for scratch in (t.o_part, t.lse_part, t.flags):
        scratch.fill_(7)
    q, k, v = decode_inputs(workload, device, seed=2)
    out = launcher.run(q, k, v, torch.full_like(q, float("nan")))
    assert max_relative_error(out, attention_reference(q, k, v, workload.contexts)) <= TOLERANCE
    assert len(launcher.schedule.reductions) == 0 and launcher.schedule.splits == 1
    assert bool((t.o_part == 7).all()) and bool((t.lse_part == 7).all()) and bool((t.flags == 7).all())


def test_empty_splits_are_in_the_grid_but_not_in_the_segments(device, h100):
    """Seq 0 (5 tokens) has one tile: its splits 1..3 are CTAs with no segment, peers of its reduction."""
    workload, config = case("ragged-empty-splits")
    sched = launcher_for(NAME, workload, h100, config, device=device).schedule
    outputs = workload.batch * workload.kv_heads
    assert sched.grid == outputs * 4 and len(sched.attention.segments) < sched.grid
    red = sched.reductions
    assert len(red) == outputs and (red.host_cta == LAST_ARRIVAL).all()
    assert red.peers_of(0).tolist() == [0, outputs, 2 * outputs, 3 * outputs]  # all splits, split order
    assert red.peer_done_bytes[1:4].tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("name", ["ragged-empty-splits", "gqa8-three-splits-d32", "mha-one-split"])
def test_kernel_reads_its_work_from_the_plan_rows_it_indexes(name, device, h100):
    """Program (o, s) reads row o of the uploaded segment table (split 0 of output o) and cuts tiles
    [s·per, min((s + 1)·per, n)) with n = ceil(L / tile), per = ceil(n / S): exactly the plan's segments."""
    workload, config = case(name)
    launcher = launcher_for(NAME, workload, h100, config, device=device)
    sched, rows = launcher.schedule, launcher.tables.segments.cpu().numpy()
    segs, splits = sched.attention.segments, sched.splits
    outputs, tile = sched.grid // splits, sched.kv_tile_tokens
    assert launch_grid(launcher.kernel, sched) == (outputs, splits)
    assert (segs.cta[:outputs] == np.arange(outputs)).all()  # rows 0 .. outputs - 1: split 0 of each output
    planned = {int(c): (int(f), int(n)) for c, f, n in zip(segs.cta, segs.first_tile, segs.n_tiles)}
    for o in range(outputs):
        seq, kv_head, q_block, *_, context = rows[o][:7]
        assert (seq, kv_head, q_block) == (segs.seq[o], segs.kv_head[o], segs.q_block[o])
        n = -(-int(context) // tile)
        per = -(-n // splits)
        for s in range(splits):
            first, count = s * per, max(0, min(per, n - s * per))
            assert planned.get(o + s * outputs, (first, 0)) == (first, count)
    assert (segs.role == (ROLE_PEER if splits > 1 else ROLE_COMPLETE)).all()
