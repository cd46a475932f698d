"""Total times of a fixed list of schedules under GPU specs that differ only in their cost parameters,
as a calibration fit asks for them (simulator/calibration.py): every residual evaluation of its
Levenberg-Marquardt, and every column of its finite-difference Jacobian, times all points again,
though a column moves one parameter of one family.

engine.simulate's total is, launch after launch, `clock += launch overhead`, then `clock += the
launch's span` (until its last CTA ends). A launch's span depends on the spec only through the costs
of the families it reads (its own, its merge family's, its math family's), launch overheads aside.
So each launch's span is kept per distinct set of those costs and simulated again only when they
move; the totals are summed in simulate's order, bit for bit its figures. Points that plan the same
work (a hybrid plan without data-parallel outputs is a stream-K plan) are simulated once.
"""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np

from attnsim.simulator.engine import launch_span_us
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.schedule import Schedule

MAX_SPANS_PER_LAUNCH = 64  # spans kept per launch (a fit's Jacobian asks ~1 + parameters per iteration)


class ScheduleTimes:
    """times(spec) -> total µs of each schedule [n], as engine.simulate(schedule, spec).total_us.
    Every spec handed to one instance must differ from the others in `cost` only (same chip, kernels)."""

    def __init__(self, schedules: list[Schedule]):
        distinct: dict[bytes, int] = {}
        self._of_point = np.array([distinct.setdefault(_engine_input(s), len(distinct)) for s in schedules])
        self.schedules = [None] * len(distinct)  # one per distinct engine input
        for schedule, k in zip(schedules, self._of_point):
            self.schedules[k] = schedule
        self._cost_ids: dict = {}  # CostParams less launch overhead -> a small int
        self._spans = [[{} for _ in s.launches] for s in self.schedules]  # per launch: cost ids -> span µs

    def __call__(self, spec: GpuSpec) -> np.ndarray:
        ids = _CostIds(spec, self._cost_ids)
        totals = np.empty(len(self.schedules))
        for i, (schedule, spans) in enumerate(zip(self.schedules, self._spans)):
            clock = 0.0
            for launch, kept in zip(schedule.launches, spans):
                clock += spec.cost_for(launch.family).launch_overhead_us
                clock += self._span(schedule, launch, spec, kept, ids)
            totals[i] = clock
        return totals[self._of_point]

    @staticmethod
    def _span(schedule: Schedule, launch, spec: GpuSpec, kept: dict, ids: _CostIds) -> float:
        key = (ids(launch.family), ids(launch.merge_family), ids(launch.math_family))
        span = kept.get(key)
        if span is None:
            if len(kept) >= MAX_SPANS_PER_LAUNCH:
                kept.clear()
            span = kept[key] = launch_span_us(schedule, launch, spec)
        return span


def _engine_input(schedule: Schedule) -> bytes:
    """Everything of a schedule that engine.simulate reads (its launches, reductions, workload and KV
    tile), as bytes: equal bytes, equal simulations. Name, notes and options are left out."""
    return pickle.dumps((schedule.launches, schedule.reductions, schedule.workload, schedule.kv_tile_tokens))


class _CostIds:
    """family -> the id of its costs in `spec` (launch overhead left out), each family looked up once."""

    def __init__(self, spec: GpuSpec, known: dict):
        self.spec, self.known, self.ids = spec, known, {None: -1, "": -1}  # no merge / math family

    def __call__(self, family: str | None) -> int:
        found = self.ids.get(family)
        if found is None:
            params = dataclasses.replace(self.spec.cost_for(family), launch_overhead_us=0.0)
            found = self.ids[family] = self.known.setdefault(params, len(self.known))
        return found
