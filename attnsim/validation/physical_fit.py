"""Fits that carry: cost families fitted from the datasheet model's values, shapes held at its physics.

A free fit of every STREAMING parameter finds degenerate pairs that fit one GPU and not another: on
the H100 PyTorch's unsplit FA2 kernel saturates at 2.4 TB/s (0.77 of its HBM), which a per-CTA rate of
~9 GB/s explains (its tile math; the same on the H200, where it also reads 2.3 TB/s) and so does a
22 GB/s rate under a soft knee, or a saturated bandwidth x 0.8. Carried to the H200 the second and
third predict 3.6 TB/s. What a calibration set cannot tell apart must come from physics: here the
fit starts at the datasheet model's costs (simulator/datasheet.py) and moves only per-CTA and
per-launch quantities, which a transfer carries as they are or scales by the clock (simulator/
transfer.py) and the points identify; the knee, the saturated-bandwidth share and the dirty-L2 share
(SHAPE_PARAMS) stay at the datasheet's values.

`cv_predictions` scores such a fit on rows it did not see: K folds over workloads, each fold
predicted by a fit to the others (the honest MAPE of a fit to a sweep that is also scored).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from attnsim import strategies
from attnsim.profiles.datasheet import datasheet_spec
from attnsim.simulator import hardware, terms
from attnsim.simulator.calibration import FitResult
from attnsim.simulator.hardware import GpuSpec
from attnsim.validation.bands import WORKLOAD_KEY
from attnsim.validation.compare import predict_measurements
from attnsim.validation.fit import fit_points
from attnsim.validation.measurements import measured_points

# Shapes of the bandwidth curve relative to the chip's HBM: held at the datasheet model's values.
SHAPE_PARAMS = ("bw_knee", "hbm_scale", "l2_dirty_fraction")
RATE_FACTOR = 2.0  # a fitted per-CTA rate stays within this factor of the datasheet's (rate_bounds)


def free_params(strategy: str) -> dict[str, tuple[str, ...]]:
    """The parameters fitted per family of `strategy`: the registry's, less SHAPE_PARAMS (per-CTA
    rates, launch, per-CTA / segment / merge costs: what a transfer carries or scales by the clock)."""
    return {f: tuple(p for p in params if p not in SHAPE_PARAMS) for f, params in strategies.get(strategy).families.items()}


def datasheet_start(spec: GpuSpec, strategy: str) -> GpuSpec:
    """`spec` with the strategy's families at the datasheet model's costs for the spec's GPU, their
    serving terms (simulator/terms.py) kept as the spec has them, except those a family's decode fit
    moves (FA2's CUDA kernels' tile-math rate: their decode is math-capped), which start from physics."""
    physics = datasheet_spec(hardware.from_name(spec.name))
    on_decode = strategies.serving_fields_fitted_on_decode()
    start = {f: dataclasses.replace(physics.cost[f], **{t: getattr(spec.cost_for(f), t) for t in terms.SERVING_FIELDS
                                                         if t not in on_decode.get(f, ())})
             for f in strategies.families_of(strategy)}
    return dataclasses.replace(spec, cost={**spec.cost, **start})


def rate_bounds(start: GpuSpec, strategy: str) -> dict:
    """(family, cta_stream_gbps_per_warp) -> within RATE_FACTOR of the datasheet's Little's law: a rate
    the points cannot see (every CTA bandwidth-bound, as stream-K's resident grid on the H100) stays
    physical instead of running to the fit's global bound."""
    name = "cta_stream_gbps_per_warp"
    return {(f, name): (getattr(start.cost[f], name) / RATE_FACTOR, getattr(start.cost[f], name) * RATE_FACTOR)
            for f, params in free_params(strategy).items() if name in params}


def fit_strategy(spec: GpuSpec, rows: pd.DataFrame, strategy: str) -> FitResult:
    """Fit `strategy`'s families on its rows of `rows`, from the datasheet, shapes held (module doc)."""
    start = datasheet_start(spec, strategy)
    points = measured_points(rows[rows["strategy"] == strategy], start)
    return fit_points(points, start, free_params(strategy), rate_bounds(start, strategy))


def fold_of(rows: pd.DataFrame, folds: int, seed: int = 0) -> pd.Series:
    """A fold per row, by workload (both dtypes of a shape and all its rows in one fold)."""
    keys = rows[WORKLOAD_KEY].astype(str).agg("|".join, axis=1)
    order = np.random.default_rng(seed).permutation(sorted(set(keys)))
    return keys.map({k: i % folds for i, k in enumerate(order)})


def cv_predictions(spec: GpuSpec, rows: pd.DataFrame, strategy: str, folds: int = 5) -> pd.DataFrame:
    """Every row of `strategy` predicted by a fit to the other folds (predict_measurements columns)."""
    rows = rows[rows["strategy"] == strategy]
    fold = fold_of(rows, folds)
    parts = []
    for f in range(folds):
        fitted = fit_strategy(spec, rows[fold != f], strategy).spec
        parts.append(predict_measurements(rows[fold == f], fitted))
    return pd.concat(parts, ignore_index=True)
