"""How far each profile source is trusted on a GPU we swept: MAPE per strategy and band coverage, held out.

Four sources of a GPU's profile (issue 21): `calibrated` (its shipped profile), `quick` (a transfer of
the other GPU's profile with this GPU's bandwidth curve and launch overhead: the calibration data's
two quick measurements, replayed offline), `transferred` (the other GPU's profile carried to this
one) and `datasheet` (first principles). Each is scored on rows none of it was fitted to: the
standard sweep, plus for all but `calibrated` the calibration set's rows of plans the sweep lacks
(`EXTRA_STRATEGIES`), which only the calibrated profile was fitted on.

Band coverage is held out too (`cv_coverage`): folds over workloads; each fold is checked against
bands built from the residuals of the other folds that the source's bands are made of (its own
residuals; for `datasheet`, the datasheet model's on every swept GPU).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from attnsim import strategies
from attnsim.profiles import resolve_gpu, transfer_from
from attnsim.simulator.hardware import GpuSpec, from_name
from attnsim.simulator.profile_io import read_profile_document, shipped_profile_path
from attnsim.simulator.quick import quick_profile
from attnsim.validation.bands import WORKLOAD_KEY, covered, error_bands
from attnsim.validation.compare import asked_strategy, predict_measurements

SOURCES = ("calibrated", "quick", "transferred", "datasheet")
# Plans that run another entry's kernel (own no cost family): timed in the calibration sets, not in
# the sweeps (hybrid, balanced)
EXTRA_STRATEGIES = strategies.names(lambda s: s.predictable and not s.planned and not s.families)


@dataclass(frozen=True)
class GpuData:
    """One swept GPU: its preset name, standard sweep and calibration rows (ok rows, as DataFrames)."""

    name: str
    sweep: pd.DataFrame
    calibration: pd.DataFrame
    data_doc: dict  # the calibration data document (bandwidth curve, launch overhead)


def quick_spec(source: str, target: GpuData) -> GpuSpec:
    """`attnsim calibrate --quick` on `target` from `source`'s profile, with the target's recorded
    bandwidth curve and launch overhead instead of new measurements."""
    moved, report = transfer_from(source, target.name)
    source_doc = read_profile_document(shipped_profile_path(from_name(source).name))
    data = target.data_doc["calibration_data"]
    spec, _ = quick_profile(moved, report, source_doc, data["bandwidth"], data["launch_overhead_us"],
                            f"transferred from {source}, quick-calibrated (replayed from calibration data)")
    return spec


def source_specs(gpu: GpuData, other: str) -> dict[str, GpuSpec]:
    return {"calibrated": resolve_gpu(gpu.name), "quick": quick_spec(other, gpu),
            "transferred": transfer_from(other, gpu.name)[0], "datasheet": resolve_gpu(gpu.name, "none")}


def scored_rows(source: str, spec: GpuSpec, gpu: GpuData) -> pd.DataFrame:
    """Residuals of `spec` on the rows no fit of this source saw (module docstring)."""
    frames = [gpu.sweep]
    extra = gpu.calibration[gpu.calibration["strategy"].isin(EXTRA_STRATEGIES)]
    if source != "calibrated" and not extra.empty:
        frames.append(extra)
    return predict_measurements(pd.concat(frames, ignore_index=True), spec)


def mape_by_strategy(rows: pd.DataFrame) -> dict[str, float]:
    return rows.groupby(asked_strategy(rows))["abs_pct_error"].mean().to_dict()


def cv_coverage(band_rows: pd.DataFrame, scored: pd.DataFrame, folds: int = 5, seed: int = 0) -> float:
    """Share of `scored` rows inside bands built without their fold (folds over workloads, shared by
    both frames: a held-out shape is out of the bands on every GPU)."""
    keys = [r[WORKLOAD_KEY].astype(str).agg("|".join, axis=1) for r in (band_rows, scored)]
    order = np.random.default_rng(seed).permutation(sorted(set(keys[0]) | set(keys[1])))
    fold_of = {k: i % folds for i, k in enumerate(order)}
    band_fold, scored_fold = keys[0].map(fold_of), keys[1].map(fold_of)
    hits = [covered(scored[scored_fold == f], error_bands(band_rows[band_fold != f], "cv")) for f in range(folds)]
    return float(np.concatenate(hits).mean())


def residuals_on(spec: GpuSpec, gpu: GpuData) -> pd.DataFrame:
    """`spec`'s residuals on every row of `gpu`: its calibration set and its sweep."""
    return predict_measurements(pd.concat([gpu.calibration, gpu.sweep], ignore_index=True), spec)


def band_rows(source: str, specs: dict[str, GpuSpec], gpu: GpuData, datasheet_rows: pd.DataFrame) -> pd.DataFrame:
    """The residuals a source's bands are made of: its own on this GPU (a quick or transferred
    profile's bands are the source's measured quick_bands / transfer_bands, i.e. these residuals);
    for datasheet, the model's on every swept GPU."""
    if source == "datasheet":
        return datasheet_rows
    return residuals_on(specs[source], gpu)
