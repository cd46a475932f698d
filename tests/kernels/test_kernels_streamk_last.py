"""Stream-K with the last-arrival epilogue (epilogue=last, kernels/lean_last.py) on small shapes (CPU
interpreter or GPU): against the float64 reference on uniform and ragged batches, q_len 1 and verify,
paged, fp8, fp16 and bf16, through the stream-K and the hybrid plans; the arrival counters are 0
after every launch; repeated launches are bitwise identical; the slots, merge ranges and counters the
kernel reads are the plan's Reductions (one plan, two consumers); and the plan the model simulates is
the one the launcher uploads.
"""

from dataclasses import replace

import numpy as np
import pytest
import torch

from attnsim.errors import InputError
from attnsim.kernels import tiles
from attnsim.kernels.launch import launcher_for
from attnsim.kernels.reference import attention_reference, max_relative_error
from attnsim.planner.choose import make_plan
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.schedule import LAST_ARRIVAL, ROLE_PEER
from attnsim.simulator.workload import DecodeWorkload
from kernel_helpers import TOLERANCE, decode_inputs, run_serving
from test_kernels_serving import CASES as SERVING_CASES, case as serving_case
from test_plan_contract import _same_schedule

LAST = PlanConfig(kv_tile_tokens=16, epilogue="last")
# name: (batch, q_heads, kv_heads, head_dim, contexts, dtype, grid); 16-token KV tiles
CASES = {
    "uniform-gqa4-fp16": (2, 8, 2, 64, (100, 100), "float16", 5),  # 14 tiles on 5 CTAs: every output straddles
    "ragged-bf16": (3, 8, 2, 64, (5, 100, 33), "bfloat16", 5),
    "mqa-all-ctas-d128": (1, 8, 1, 128, (200,), "float16", 7),  # one output over every CTA
    "mha-d32-more-ctas-than-slots": (2, 4, 4, 32, (70, 40), "bfloat16", 9),
    "d256": (1, 4, 2, 256, (50,), "float16", 3),
}


def case(name: str):
    batch, hq, hkv, d, contexts, dtype, grid = CASES[name]
    return DecodeWorkload.build(batch, hq, hkv, d, list(contexts), dtype=dtype), replace(LAST, grid=grid)


@pytest.mark.parametrize("strategy", ["streamk", "hybrid"])
@pytest.mark.parametrize("name", CASES)
def test_matches_reference_and_leaves_counters_at_zero(name, strategy, device, h100):
    workload, config = case(name)
    launcher = launcher_for(strategy, workload, h100, config, device=device)
    assert launcher.kernel.function == "lean_last_kernel" and "epilogue=last" in launcher.meta["plan"]
    q, k, v = decode_inputs(workload, device, seed=sum(map(ord, name)))
    ref = attention_reference(q, k, v, workload.contexts)
    for _ in range(2):
        out = launcher.run(q, k, v, torch.full_like(q, float("nan")))
        assert max_relative_error(out, ref) <= TOLERANCE
        assert int(launcher.tables.flags.abs().sum()) == 0


@pytest.mark.parametrize("name", ["paged16-tile16-gqa4", "paged16-tile32-mqa", "fp8-mqa-bf16-paged32", "qlen4-gqa2",
                                  "qlen16-two-qblocks", "qlen8-short-last-tiles", "qlen3-fp8-paged16-tile32"])
def test_serving_inputs_match_reference(name, device, h100):
    workload, config = serving_case(name)
    config = replace(config, epilogue="last", grid=3)  # few CTAs: outputs straddle them
    launcher, err = run_serving("streamk", workload, h100, config, device, seed=sum(map(ord, name)), runs=2)
    assert err <= TOLERANCE and launcher.kernel.function == "lean_last_kernel"
    assert len(launcher.schedule.reductions) > 0  # straddled outputs exercised the epilogue
    assert int(launcher.tables.flags.abs().sum()) == 0


def test_repeated_launches_are_bitwise_identical(device, h100):
    workload, config = case("ragged-bf16")
    launcher = launcher_for("streamk", workload, h100, config, device=device)
    q, k, v = decode_inputs(workload, device, seed=7)
    first = launcher.run(q, k, v, torch.full_like(q, float("nan"))).clone()
    for _ in range(3):
        assert torch.equal(launcher.run(q, k, v, torch.full_like(q, float("nan"))), first)
        assert int(launcher.tables.flags.abs().sum()) == 0


@pytest.mark.parametrize("name", ["ragged-bf16", "mqa-all-ctas-d128", "uniform-gqa4-fp16"])
def test_kernel_reads_slots_ranges_and_counters_from_the_plan(name, device, h100):
    """Contributor k of reduction row r writes slot peer_offsets[r] + k; its merge range (and counter,
    flags[merge_lo]) is row r's; contributors are listed in KV order; every contributor of a row is a
    segment (else its counter would never reach the count and o would stay NaN)."""
    workload, config = case(name)
    launcher = launcher_for("streamk", workload, h100, config, device=device)
    sched, rows = launcher.schedule, launcher.tables.segments.cpu().numpy()
    segs, red = sched.attention.segments, sched.reductions
    assert len(red) and (red.host_cta == LAST_ARRIVAL).all()
    peer = np.flatnonzero(segs.role == ROLE_PEER)
    slot = rows[peer, tiles.SEG_SLOT.value]
    assert sorted(slot.tolist()) == list(range(len(red.peer_cta)))  # one contributor segment per peer entry
    for r in range(len(red)):
        lo, hi = red.peer_offsets[r], red.peer_offsets[r + 1]
        mine = peer[(slot >= lo) & (slot < hi)]
        assert (segs.seq[mine] == red.seq[r]).all() and (segs.kv_head[mine] == red.kv_head[r]).all()
        assert (rows[mine, tiles.SEG_MERGE_LO.value] == lo).all() and (rows[mine, tiles.SEG_MERGE_HI.value] == hi).all()
        by_slot = mine[np.argsort(slot[(slot >= lo) & (slot < hi)])]
        assert (np.diff(segs.first_tile[by_slot]) > 0).all()  # slot order = KV order
        assert segs.cta[by_slot].tolist() == red.peers_of(r).tolist()


@pytest.mark.parametrize("strategy", ["streamk", "hybrid"])
@pytest.mark.parametrize("name", CASES)
def test_model_plans_what_the_launcher_uploads(name, strategy, h100):
    """The Schedule the model simulates is the launcher's, and its spec plans it again."""
    workload, config = case(name)
    plan = make_plan(strategy, workload, h100, config)
    launcher = launcher_for(strategy, workload, h100, config, device="cpu")
    _same_schedule(plan.schedule, launcher.schedule)
    assert np.array_equal(plan.schedule.reductions.peer_done_bytes, launcher.schedule.reductions.peer_done_bytes)
    again = make_plan(plan.spec, workload, h100)
    assert again.spec == plan.spec and "epilogue=last" in plan.spec and again.kernel.name == "lean_last"
    _same_schedule(again.schedule, plan.schedule)


def test_no_coresidency_needed_but_the_tree_still_refuses(h100):
    """A grid past the resident capacity: the tree's host could wait on a CTA that never starts; the
    last arrival waits on nobody, so its plan takes it."""
    workload = DecodeWorkload.build(4, 32, 8, 128, 65536)
    capacity = make_plan("streamk", workload, h100).capacity
    with pytest.raises(InputError):
        make_plan(f"streamk:grid={capacity + 1}", workload, h100)
    plan = make_plan(f"streamk:grid={capacity + 1},epilogue=last", workload, h100)
    assert plan.schedule.grid == capacity + 1 and not plan.waits_on_peers


def test_mla_refuses_the_last_arrival_epilogue():
    from attnsim.simulator.hardware import from_name

    mla = DecodeWorkload.build(1, 16, 1, 576, 4096, dtype="bfloat16", kv_lora_rank=512)
    with pytest.raises(InputError, match="epilogue"):
        make_plan("streamk:epilogue=last", mla, from_name("h200"))
