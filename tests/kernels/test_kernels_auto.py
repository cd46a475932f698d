"""`auto`: the launcher runs exactly the plan the planner chose (fp64-checked on small shapes). Its
batch-invariant mode: tests/kernels/test_kernels_invariant.py.

CPU interpreter (TRITON_INTERPRET=1) or a GPU; plans for the calibrated H200 profile."""

from __future__ import annotations

import pytest
import torch

from attnsim.kernels.launch import launcher_for
from attnsim.kernels.reference import attention_reference, max_relative_error
from attnsim.planner.search import search
from attnsim.plans.spec import parse_plan_spec
from attnsim.simulator.partition.common import PlanConfig
from attnsim.profiles import resolve_gpu
from attnsim.simulator.workload import DecodeWorkload
from kernel_helpers import TOLERANCE, decode_inputs

H200 = resolve_gpu("h200")
TILE = 16  # small KV tiles: the interpreter runs few tokens


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
