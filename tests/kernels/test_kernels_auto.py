"""`auto`: the launcher runs exactly the plan the planner chose (fp64-checked on small shapes), and
its batch-invariant mode gives one sequence bitwise the same output alone and in any batch.

CPU interpreter (TRITON_INTERPRET=1) or a GPU; plans for the calibrated H200 profile."""

from __future__ import annotations

import pytest
import torch

from attnsim.kernels.launch import launcher_for
from attnsim.kernels.reference import attention_reference, max_relative_error
from attnsim.planner.candidates import INVARIANT_CHUNK_TILES
from attnsim.planner.search import search
from attnsim.plans.spec import parse_plan_spec
from attnsim.simulator.partition.common import PlanConfig
from attnsim.profiles import resolve_gpu
from attnsim.simulator.workload import DecodeWorkload
from kernel_helpers import TOLERANCE, decode_inputs

H200 = resolve_gpu("h200")
TILE = 16  # small KV tiles: the interpreter runs few tokens
INVARIANT = PlanConfig(kv_tile_tokens=TILE, batch_invariant=1)


@pytest.mark.parametrize("contexts,q_heads,kv_heads", [((700,), 8, 2), ((37, 900, 129), 4, 1), ((3000,), 4, 4)])
def test_auto_runs_the_planners_choice(contexts, q_heads, kv_heads, device):
    workload = DecodeWorkload.build(len(contexts), q_heads, kv_heads, 64, list(contexts))
    chosen = search(workload, H200, PlanConfig(kv_tile_tokens=TILE)).chosen
    launcher = launcher_for("auto", workload, H200, PlanConfig(kv_tile_tokens=TILE), device=device)
    strategy, options = parse_plan_spec(launcher.meta["plan"])  # the chosen options + the user's tile
    assert (strategy.name, launcher.strategy, launcher.schedule.grid) == (chosen.strategy, chosen.strategy, chosen.grid)
    assert options.set() == {"kv_tile_tokens": TILE, **dict(chosen.options)}
    assert launcher.meta["requested"] == f"auto:kv_tile_tokens={TILE}"
    q, k, v = decode_inputs(workload, device, seed=len(contexts))
    out = launcher.run(q, k, v, torch.full_like(q, float("nan")))
    assert max_relative_error(out, attention_reference(q, k, v, workload.contexts)) <= TOLERANCE


def output_in_batch(contexts, position: int, mine, device) -> torch.Tensor:
    """The output of sequence `mine` (q, k, v of one sequence) at `position` of a random batch, planned
    by `auto` in batch-invariant mode."""
    q_s, k_s, v_s = mine
    workload = DecodeWorkload.build(len(contexts), 4, 2, 64, list(contexts))
    q, k, v = decode_inputs(workload, device, seed=7 * len(contexts) + position)
    n = k_s.shape[1]
    q[position], k[position, :, :n], v[position, :, :n] = q_s, k_s, v_s
    launcher = launcher_for("auto", workload, H200, INVARIANT, device=device)
    assert launcher.meta["plan"] == f"balanced:kv_tile_tokens={TILE},chunk_tokens={INVARIANT_CHUNK_TILES * TILE}"
    return launcher.run(q, k, v)[position]


def test_auto_batch_invariant_is_bitwise_invariant(device):
    """600 tokens in 256-token chunks: three partials merged in the same order in every batch."""
    alone = DecodeWorkload.build(1, 4, 2, 64, 600)
    q, k, v = decode_inputs(alone, device, seed=5)
    mine = (q[0], k[0, :, :600], v[0, :, :600])
    reference = output_in_batch((600,), 0, mine, device)
    assert max_relative_error(reference, attention_reference(q, k, v, alone.contexts)[0]) <= TOLERANCE
    for contexts, position in (((37, 600, 129), 1), ((1000, 17, 600), 2), ((600, 600, 64, 300), 0)):
        assert torch.equal(output_in_batch(contexts, position, mine, device), reference), contexts
