"""scripts/sm_waves_packed.py (every SM past one wave, refilled SM by SM under the per-SM limit), the reference of
the engine's one-clock packed share: two full waves take twice the engine's one wave, a tail packed onto few SMs
streams slower than the same CTAs one an SM would, the engine's waves agree with it on uniform launches, and
one-wave launches are the engine's."""

from __future__ import annotations

import dataclasses

import pytest

from attnsim.planner.choose import make_plan
from attnsim.profiles import resolve_gpu
from attnsim.simulator import cost
from attnsim.simulator.engine import simulate
from attnsim.simulator.occupancy import resident_capacity
from attnsim.simulator.sm_wave import sm_single_wave
from attnsim.simulator.workload import DecodeWorkload
from script_helpers import load_script

packed = load_script("sm_waves_packed")
GPU = resolve_gpu("h200")


def _fa2(grid: int):
    """An fa2 plan of `grid` CTAs (batch x one head) of 4k tokens, and its attention launch's engine inputs."""
    plan = make_plan("fa2", DecodeWorkload.build(grid, 1, 1, 128, 4096, dtype="bfloat16"), GPU)
    launch = plan.schedule.launches[0]
    args = (cost.cta_work_bytes(launch), cost.cta_fixed_us(GPU.cost_for(launch.family), launch, plan.schedule),
            resident_capacity(GPU, launch.resources), cost.bandwidth_model(GPU, launch, plan.schedule))
    return plan, args


def _span(grid: int) -> float:
    _, args = _fa2(grid)
    _, stream_end, _ = packed.packed_waves(*args)
    return float((stream_end + args[1]).max())


def _engine_span(grid: int) -> float:
    """The engine's span with every SM alike, as packed_waves runs them (no fast SMs' lead: engine._tail_rate)."""
    plan, _ = _fa2(grid)
    launch = simulate(plan.schedule, dataclasses.replace(GPU, fast_sms=0)).launches[0]
    return launch.end_us - launch.start_us


def test_two_full_waves_take_twice_the_engines_one_wave():
    slots = _fa2(1)[1][2]
    _, (work, fixed, _, bw) = _fa2(2 * slots)  # one launch's bandwidth (its write-back share) for both
    _, one_wave, _ = sm_single_wave(work[:slots], GPU.sm_count, bw)
    assert _span(2 * slots) == pytest.approx(2 * (one_wave.max() + fixed.max()), rel=1e-9)


def test_a_packed_tail_streams_slower_than_lone_ctas():
    slots = _fa2(1)[1][2]
    per_sm = slots // GPU.sm_count
    _, (work, fixed, _, bw) = _fa2(slots + GPU.sm_count // 2)
    assert per_sm * bw.cta_rate > bw.sm_stream_rate  # the per-SM limit binds on a full SM
    tail = GPU.sm_count // 2  # on a sixth of the SMs, three each, instead of one each on half of them
    _, lone, _ = sm_single_wave(work[:tail], GPU.sm_count, bw)  # the same tail one an SM
    _, one_wave, _ = sm_single_wave(work[:slots], GPU.sm_count, bw)
    assert _span(slots + tail) > 1.05 * (one_wave.max() + lone.max() + 2 * fixed.max())


@pytest.mark.parametrize("extra", [4, 66, 131, 264])
def test_the_engines_waves_are_every_sms_on_uniform_launches(extra):
    slots = _fa2(1)[1][2]
    assert _engine_span(slots + extra) == pytest.approx(_span(slots + extra), rel=0.01)


def test_one_wave_launches_are_the_engines():
    plan, _ = _fa2(200)
    with packed.packed_engine():
        inside = simulate(plan.schedule, GPU).total_us
    assert inside == simulate(plan.schedule, GPU).total_us
