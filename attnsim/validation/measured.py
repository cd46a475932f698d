"""Measurements or a validation CSV -> a frame with time_us, predicted_us and the % errors, for reports.

Loading, checking and predicting are `validation.measurements` / `validation.compare` (the same
code `attnsim validate` runs); this adds what a report needs on top: rows of several GPUs predicted each with its own
profile, predicted_us taken as given where a validation CSV already has it, and total KV tokens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from attnsim import strategies
from attnsim.errors import InputError
from attnsim.simulator.hardware import GpuSpec
from attnsim.profiles import resolve_gpu
from attnsim.validation.compare import predict_measurements
from attnsim.validation.measurements import check_rows_gpu, drop_unscorable, load_measurements, named_preset


def gpu_for(name: str, override: GpuSpec | None = None, preferred: Sequence[GpuSpec] = ()) -> GpuSpec:
    """The profile a row is predicted with: `override` when given; else a `preferred` profile (the
    report's GPUs, possibly calibrated) whose name the row's gpu column contains; else the preset it
    names ('NVIDIA H100 80GB HBM3' -> h100-sxm)."""
    if override is not None:
        return override
    key = str(name).lower().replace(" ", "-")
    for spec in preferred:
        if spec.name in key or key in spec.name:
            return spec
    preset = named_preset(name)
    if preset is not None:
        return resolve_gpu(preset)
    raise InputError("measurements.gpu", f"unknown GPU {name!r}; pass --gpu NAME|PROFILE to predict these rows")


def check_measurements_file(path: str | Path, gpu: GpuSpec | None = None,
                            preferred: Sequence[GpuSpec] = ()) -> list[dict]:
    """Before any modelling: the file reads and checks, and every row's GPU has a profile (`gpu`'s, a
    `preferred` one or a preset's); returns the rows measured_frame will leave out ({line, reason}: a
    strategy attnsim does not model), for the caller to name."""
    frame = load_measurements(path)
    if gpu is not None:
        check_rows_gpu(frame, gpu, path)
    for name in frame["gpu"].unique():
        gpu_for(name, gpu, preferred)
    return drop_unscorable(frame, None, path, skip=True)[1]


def measured_frame(path: str | Path, gpu: GpuSpec | None = None, preferred: Sequence[GpuSpec] = ()) -> pd.DataFrame:
    """Rows the model predicts (or a validation CSV predicted), with pct_error, abs_pct_error, total_tokens.

    Rows of strategies attnsim does not model are left out (check_measurements_file lists them first).
    """
    frame = load_measurements(path)
    if gpu is not None:
        check_rows_gpu(frame, gpu, path)
    frame = drop_unscorable(frame, None, path, skip=True)[0]
    given = pd.to_numeric(frame["predicted_us"], errors="coerce") if "predicted_us" in frame else None
    if given is not None and given.notna().all():
        rows = frame.assign(predicted_us=given)
    else:
        parts = [predict_measurements(part.drop(columns="predicted_us", errors="ignore"),
                                          gpu_for(name, gpu, preferred))
                 for name, part in frame.groupby("gpu", sort=False)]
        rows = pd.concat(parts, ignore_index=True)
    if rows.empty:
        raise InputError("measurements", f"{path}: no rows of a strategy the model predicts "
                                         f"({', '.join(strategies.predictable())})")
    pct = 100.0 * (rows["predicted_us"] - rows["time_us"]) / rows["time_us"]
    return rows.assign(pct_error=pct, abs_pct_error=pct.abs(),
                       total_tokens=[total_tokens(c, b) for c, b in zip(rows["context"], rows["batch"])])


def total_tokens(context_label, batch) -> int:
    """KV tokens over the whole batch: context x batch, or the sum of a ragged batch's lengths."""
    lengths = [int(float(part)) for part in str(context_label).split(";") if part.strip()]
    return lengths[0] * int(batch) if len(lengths) == 1 else sum(lengths)
