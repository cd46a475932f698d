"""The wave drift (engine._tail_rate): a uniform launch's last partial wave starts ahead on the fast SMs' slots
(GpuSpec.fast_sms) when it fits them: behind one full wave a lead early, behind two or more (at most fast slots x
(waves - 1) CTAs) ending with the full waves, its bytes at their rate; too large for those slots, or on a GPU
without measured fast SMs, it pays a packed tail."""

from __future__ import annotations

import dataclasses

import pytest

from attnsim.errors import InputError
from attnsim.planner.choose import make_plan
from attnsim.profiles import resolve_gpu
from attnsim.simulator.engine import simulate
from attnsim.simulator.hardware import PRESETS, spec_from_dict, spec_to_dict
from attnsim.simulator.occupancy import resident_capacity
from attnsim.simulator.workload import DecodeWorkload

GPU = resolve_gpu("h200")


def _span(grid: int, gpu=GPU) -> float:
    """The fa2 attention launch's span, µs: `grid` CTAs (batch x one head) of 4k tokens each."""
    plan = make_plan("fa2", DecodeWorkload.build(grid, 1, 1, 128, 4096, dtype="bfloat16"), gpu)
    launch = simulate(plan.schedule, gpu).launches[0]
    return launch.end_us - launch.start_us


def _slots() -> int:
    plan = make_plan("fa2", DecodeWorkload.build(1, 1, 1, 128, 4096, dtype="bfloat16"), GPU)
    return resident_capacity(GPU, plan.schedule.launches[0].resources)


def _fast_slots() -> int:
    return GPU.fast_sms * (_slots() // GPU.sm_count)


def test_the_shipped_gh100_profiles_carry_the_traced_fast_sms():
    assert resolve_gpu("h200").fast_sms == resolve_gpu("h100").fast_sms == 24
    assert resolve_gpu("a100").fast_sms == 0  # not measured there: none modelled


def test_a_small_tail_behind_two_full_waves_costs_its_bytes_at_the_full_waves_rate():
    slots, tail = _slots(), _fast_slots()
    two_waves, wave = _span(2 * slots), _span(2 * slots) - _span(slots)
    assert _span(2 * slots + tail) - two_waves == pytest.approx(wave * tail / slots, rel=0.05)


def test_a_tail_larger_than_the_fast_slots_pays_a_packed_tail():
    slots = _slots()
    over = _fast_slots() + 32
    two_waves, wave = _span(2 * slots), _span(2 * slots) - _span(slots)
    assert _span(2 * slots + over) - two_waves > 1.5 * wave * over / slots  # its bytes at the full rate: 0.26 wave


def test_behind_one_full_wave_a_small_tail_starts_a_lead_early_and_a_large_one_does_not():
    slots, plain = _slots(), dataclasses.replace(GPU, fast_sms=0)
    wave = _span(2 * slots) - _span(slots)
    packed = _span(slots + 4, plain) - _span(slots, plain)
    early = _span(slots + 4) - _span(slots)
    assert wave * 4 / slots < early < packed - 0.15 * wave  # FAST_SM_LEAD of the wave's stream sooner
    over = _fast_slots() + 8
    assert _span(slots + over) == _span(slots + over, plain)


def test_more_full_waves_hide_larger_tails():
    slots, fast = _slots(), _fast_slots()
    wave = _span(2 * slots) - _span(slots)
    tail = 2 * fast  # too many behind two waves, not behind three
    assert _span(2 * slots + tail) - _span(2 * slots) > 0.3 * wave
    assert _span(3 * slots + tail) - _span(3 * slots) == pytest.approx(wave * tail / slots, rel=0.05)


def test_without_fast_sms_the_tail_pays_as_before():
    slots = _slots()
    plain = dataclasses.replace(GPU, fast_sms=0)
    wave = _span(2 * slots, plain) - _span(slots, plain)
    assert _span(2 * slots + 8, plain) - _span(2 * slots, plain) > 0.3 * wave
    assert _span(2 * slots + 8) < _span(2 * slots + 8, plain)


def test_a_profile_with_more_fast_sms_than_sms_is_refused():
    data = spec_to_dict(PRESETS["h200"])
    data["fast_sms"] = data["sm_count"] + 1
    with pytest.raises(InputError) as err:
        spec_from_dict(data, "test profile")
    assert err.value.field == "gpu.fast_sms"


def test_a_profile_written_without_fast_sms_takes_its_presets():
    data = spec_to_dict(PRESETS["h100-sxm"])
    del data["fast_sms"]
    assert spec_from_dict(data, "test profile").fast_sms == PRESETS["h100-sxm"].fast_sms
