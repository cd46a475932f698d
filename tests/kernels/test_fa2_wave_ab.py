"""The fa2 wave A/B (scripts/fa2_wave_ab.py) times what it says: fa2 plans of 1024 CTAs (2.6 waves at
3 CTAs/SM on the H200) on the points where the 2026-12-05 sweep measured fa2 slower, and a 2048-CTA
control, with the shipped H200 profile's plans (as `attnsim bench` makes them)."""

from attnsim.planner.choose import make_plan
from attnsim.profiles import resolve_gpu
from attnsim.simulator.workload import DecodeWorkload

from script_helpers import load_script

fa2_wave_ab = load_script("fa2_wave_ab")


def test_the_slowed_points_run_1024_ctas_and_the_control_2048():
    gpu = resolve_gpu("h200")
    grids = [make_plan("fa2", DecodeWorkload.build(b, hq, hkv, d, c), gpu).schedule.grid
             for b, hq, hkv, d, c in fa2_wave_ab.SHAPES]
    assert grids[:-1] == [1024] * (len(grids) - 1)
    assert grids[-1] == 2048
    assert fa2_wave_ab.CONDITIONS[0] == "bare" and "floor" in fa2_wave_ab.CONDITIONS
