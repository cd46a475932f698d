"""scripts/sm_waves_proto.py (the engine past one wave at the SM level, a prototype scored on the traces): with
every SM alike it gives the engine's span of a one-wave and a two-wave uniform launch, and fast SMs end a wave's
CTAs early without moving the launch's bytes."""

from __future__ import annotations

import pytest

from attnsim.planner.choose import make_plan
from attnsim.profiles import resolve_gpu
from attnsim.simulator import cost
from attnsim.simulator.engine import simulate
from attnsim.simulator.occupancy import resident_capacity
from attnsim.simulator.workload import DecodeWorkload
from script_helpers import load_script

proto = load_script("sm_waves_proto")


def _span(grid: int, ratio: float) -> tuple[float, float]:
    gpu = resolve_gpu("h100")
    plan = make_plan("fa2", DecodeWorkload.build(grid, 1, 1, 128, 4096, dtype="bfloat16"), gpu)
    launch = plan.schedule.launches[0]
    args = (cost.cta_work_bytes(launch), cost.cta_fixed_us(gpu.cost_for(launch.family), launch, plan.schedule),
            resident_capacity(gpu, launch.resources), cost.bandwidth_model(gpu, launch, plan.schedule))
    engine = simulate(plan.schedule, gpu).launches[0]
    return proto.sm_waves_span(*args, 24 / 132, ratio), engine.end_us - engine.start_us


@pytest.mark.parametrize("grid", [396, 792])
def test_with_every_sm_alike_it_is_the_engine(grid):
    span, engine = _span(grid, 1.0)
    assert span == pytest.approx(engine, rel=0.005)


def test_fast_sms_leave_a_full_wave_as_long_and_make_a_small_tail_start_early():
    full, _ = _span(396, 1.3)
    assert full == pytest.approx(_span(396, 1.0)[0], rel=0.01)  # the slow SMs still end the wave
    assert _span(400, 1.3)[0] < _span(400, 1.0)[0]  # the tail starts on the fast SMs, before the wave ends
