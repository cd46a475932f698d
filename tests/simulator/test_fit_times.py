"""ScheduleTimes (simulator/fit_times.py): a calibration fit's totals, re-simulating only the launches
whose costs moved, are engine.simulate's totals bit for bit, whichever costs move between calls."""

from __future__ import annotations

import dataclasses

import pytest

from attnsim.profiles import resolve_gpu
from attnsim.simulator.calibration import with_params
from attnsim.simulator.engine import simulate
from attnsim.simulator import fit_times
from attnsim.simulator.fit_times import ScheduleTimes
from attnsim.simulator.workload import DecodeWorkload
from plan_helpers import plan

RAGGED = [1000 * (i + 1) ** 2 % 70001 + 37 for i in range(24)]
WORKLOADS = (DecodeWorkload.build(1, 32, 8, 128, 4096), DecodeWorkload.build(48, 32, 32, 128, 3000),
             DecodeWorkload.build(24, 32, 8, 128, RAGGED))
# single and multi-wave launches, a combine launch, host and last-arrival merges, a kernel fixing its tile rows
SPECS = ("fa2", "flashdecoding", "flashdecoding:splits=3", "streamk", "hybrid", "splitkv", "balanced", "torch-flash")
# (family, field, factor) moved one after another, then back to the start: the fit's Jacobian columns and steps
MOVES = [("flashdecoding", "cta_stream_gbps_per_warp", 1.3), ("flashdecoding-combine", "cta_fixed_us", 2.0),
         ("flashdecoding", "launch_overhead_us", 1.5), ("streamk", "fixup_per_peer_us", 0.5),
         ("splitkv", "fixup_fixed_us", 3.0), ("torch-flash-nosplit", "mma_flop_per_sm_clock", 0.7),
         ("fa2", "bw_knee", 1.1), ("balanced", "l2_dirty_fraction", 0.5)]


@pytest.fixture(scope="module")
def schedules():
    gpu = resolve_gpu("h200")
    return gpu, [plan(spec, w, gpu) for spec in SPECS for w in WORKLOADS]


def _moved(gpu, moves):
    return with_params(gpu, {(f, name): getattr(gpu.cost_for(f), name) * factor for f, name, factor in moves})


@pytest.mark.parametrize("steps", [len(MOVES), 1])  # each move on the last, or each alone from the start
def test_totals_are_simulates_bit_for_bit_as_costs_move(schedules, steps):
    gpu, scheds = schedules
    times = ScheduleTimes(scheds)
    specs = [gpu] + [_moved(gpu, MOVES[max(0, k + 1 - steps):k + 1]) for k in range(len(MOVES))] + [gpu]
    for spec in specs:
        assert times(spec).tolist() == [simulate(s, spec).total_us for s in scheds]


def test_a_launch_overhead_moves_the_total_without_a_new_simulation(schedules, monkeypatch):
    gpu, scheds = schedules
    times = ScheduleTimes(scheds)
    before = times(gpu)
    monkeypatch.setattr("attnsim.simulator.fit_times.launch_span_us", _refuse)
    later = times(_moved(gpu, [(f, "launch_overhead_us", 2.0) for f in gpu.cost]))
    assert (later > before).all()


def _refuse(*_):
    raise AssertionError("simulated again though only launch overheads moved")


def test_points_planning_the_same_work_are_simulated_once(schedules, monkeypatch):
    # a hybrid plan without data-parallel outputs is a stream-K plan: two points, one simulation
    gpu, _ = schedules
    w = WORKLOADS[2]
    same = [plan("streamk:grid=192", w, gpu), plan("hybrid:grid=192,dp_outputs=0", w, gpu)]
    other = plan("streamk:grid=100", w, gpu)
    calls = []
    real = fit_times.launch_span_us
    monkeypatch.setattr(fit_times, "launch_span_us", lambda *a: calls.append(a[0]) or real(*a))
    totals = ScheduleTimes(same + [other])(gpu)
    assert totals.tolist() == [simulate(s, gpu).total_us for s in same + [other]]
    assert totals[0] == totals[1] != totals[2]
    assert len(calls) == 2
