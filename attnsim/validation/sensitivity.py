"""How much each calibration point tells the fit about each cost parameter.

The fit (simulator/calibration.fit_cost_params) moves each free (family, parameter) pair in an
unbounded coordinate x, the parameter being lo + (hi - lo) * sigmoid(x), and minimises the sum of
squared log(predicted / measured). The information a point carries about x is therefore its row of
the Jacobian J[i, k] = d log t_i / d x_k, here at a prior profile (the datasheet model, or a profile
already calibrated) by forward differences, one re-simulation per (point, parameter of a family its
plan launches). A parameter that a point's plan does not exercise has J = 0 there.

Each fit owner (strategies.fit_owner: the entry whose families a plan's measurements calibrate,
e.g. hybrid rows fit stream-K's) is fitted on its own, so the Jacobians come per owner.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attnsim.simulator.calibration import free_parameters, from_bounded, to_bounded, with_params
from attnsim.simulator.engine import simulate
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.schedule import Schedule

STEP = 1e-3  # forward-difference step in the fit's unbounded coordinate (x ~ O(1) across BOUNDS)


@dataclass(frozen=True)
class OwnerJacobian:
    """J of one fit owner's candidate points: rows = `members` (indices into the candidate list),
    columns = `keys` ((family, parameter), the pairs the fit would free)."""

    owner: str
    keys: tuple[tuple[str, str], ...]
    members: tuple[int, ...]
    jacobian: np.ndarray  # [len(members), len(keys)], d log t / d x

    def labels(self) -> list[str]:
        return [f"{family}.{name}" for family, name in self.keys]


def owner_jacobian(owner: str, members: list[int], schedules: list[Schedule], prior: GpuSpec,
                   free: dict[str, tuple[str, ...]]) -> OwnerJacobian:
    """J at `prior` of the owner's points (`members` index `schedules`); `free`: the owner's
    families -> the parameters the fit frees in them (the registry's)."""
    own = [schedules[i] for i in members]
    keys = tuple(free_parameters(own, free))
    x0 = [from_bounded(name, getattr(prior.cost_for(family), name)) for family, name in keys]
    at_x0 = with_params(prior, {k: to_bounded(k[1], x) for k, x in zip(keys, x0)})
    base = np.log([simulate(s, at_x0).total_us for s in own])
    jacobian = np.zeros((len(own), len(keys)))
    for column, (key, x) in enumerate(zip(keys, x0)):
        moved = with_params(at_x0, {key: to_bounded(key[1], x + STEP)})
        for row, schedule in enumerate(own):
            if key[0] in {launch.family for launch in schedule.launches}:
                jacobian[row, column] = (np.log(simulate(schedule, moved).total_us) - base[row]) / STEP
    return OwnerJacobian(owner, keys, tuple(members), jacobian)
