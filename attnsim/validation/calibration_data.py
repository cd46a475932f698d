"""Calibration data checked before a fit: the `calibration_data` and `device` tables of a profile or
of the .data.json `attnsim calibrate` writes, each mistake refused naming its field.

Types and ranges first, for any data. Then, against the GPU the profile is for (`target`), sense:
- the data was measured on that GPU: an A100's curve fitted as an H200's gave an H200 profile at
  an A100's bandwidth, without a word;
- the bandwidth curve is a sweep a fit can read: from a few CTAs (latency-bound, where the per-warp
  rate shows) to more CTAs than SMs (saturated, the peak), within what the GPU's HBM delivers;
- its fit lands inside the cost model's physical bounds: a curve of one CTA count once fitted to
  9e162 GB/s per warp.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from attnsim import limits
from attnsim.errors import InputError
from attnsim.simulator import profile_checks
from attnsim.simulator.calibration import BOUNDS, fit_bandwidth_curve
from attnsim.simulator.hardware import GpuSpec
from attnsim.validation.measurements import check_measurement_frame, drop_unscorable, named_preset

FULL_KEYS = ("bandwidth", "points", "kernels", "launch_overhead_us")  # what the full fit reads
QUICK_KEYS = ("bandwidth", "launch_overhead_us")  # what `calibrate --quick` reads
MAX_LAUNCH_OVERHEAD_US = 1000.0  # an empty kernel's launch: ~5 us on Hopper; a millisecond is a unit error
MAX_WARPS_PER_CTA = 32  # 1024 threads
# Saturated read bandwidth measured / the datasheet's HBM figure: 0.92 on the H100, 0.94 on the H200.
# Above 1.2 no HBM delivers it (a timing or unit error); below 0.5 the curve did not saturate, or was
# measured on a slower GPU.
DATASHEET_FRACTION = (0.5, 1.2)
MIN_CTA_COUNTS = 3  # the fit has three parameters: per-warp rate, knee, peak


def check_calibration_data(doc: dict, path, field: str = "from-data", keys=FULL_KEYS,
                           target: GpuSpec | None = None) -> tuple[dict, pd.DataFrame | None]:
    """(device, checked points or None) of a profile or raw calibration data, before the fit starts:
    every table of `keys` the fit reads, with its types and ranges, and with `target` its sense. A
    profile without calibration data (a transfer, a hand-written one) is refused here, not by a
    KeyError minutes later."""
    data, device = _tables(doc, path, field, keys)
    limits.check_positive(data["launch_overhead_us"], f"{field}.launch_overhead_us", MAX_LAUNCH_OVERHEAD_US)
    _check_bandwidth_rows(data["bandwidth"], path, field)
    if data.get("floors") is not None:  # measured since 2026-12-07; older data has none
        _check_floor_rows(data["floors"], path, field)
    points = _checked_points(data, path, field) if "points" in keys else None
    if target is not None:
        _check_device(device, target, path, field)
        _check_bandwidth_curve(data["bandwidth"], target, path, field)
        if points is not None:  # a point of an unknown strategy or another GPU: refused, not left out
            drop_unscorable(points, target, path, f"{field}.points")
    return device, points


def _tables(doc: dict, path, field: str, keys) -> tuple[dict, dict]:
    data, device = doc.get("calibration_data"), doc.get("device", {})
    if not isinstance(data, dict) or not data:
        raise InputError(field, f"{path} holds no calibration data (a transferred or hand-written profile); "
                                "give a profile `attnsim calibrate` wrote, or its .data.json")
    missing = [k for k in keys if k not in data]
    if missing or not isinstance(device, dict):
        raise InputError(f"{field}.calibration_data", f"{path} lacks {', '.join(missing) or 'a device table'}")
    return data, device


def _checked_points(data: dict, path, field: str) -> pd.DataFrame:
    profile_checks.kernel_tables(data["kernels"], str(path))
    if not isinstance(data["points"], list) or not all(isinstance(p, dict) for p in data["points"]):
        raise InputError(f"{field}.points", f"{path}: must be a list of measured rows")
    limits.check_max(len(data["points"]), limits.MAX_MEASUREMENT_ROWS, f"{field}.points", "rows")
    return check_measurement_frame(pd.DataFrame(data["points"]), path, f"{field}.points")


def _check_bandwidth_rows(rows, path, field: str) -> None:
    """The membw curve: at least two rows of whole positive num_ctas and num_warps, positive read_gbps."""
    if not isinstance(rows, list) or len(rows) < 2 or not all(isinstance(r, dict) for r in rows):
        raise InputError(f"{field}.bandwidth", f"{path}: must be a list of at least two measured points")
    for i, row in enumerate(rows):
        for key, high in (("num_ctas", limits.MAX_PLAN_CTAS), ("num_warps", MAX_WARPS_PER_CTA)):
            count = limits.check_positive(row.get(key), f"{field}.bandwidth[{i}].{key}", high)
            if count != int(count):
                raise InputError(f"{field}.bandwidth[{i}].{key}", f"must be a whole number, got {count!r}")
        limits.check_positive(row.get("read_gbps"), f"{field}.bandwidth[{i}].read_gbps", limits.MAX_GBPS)


def _check_floor_rows(rows, path, field: str) -> None:
    """The measured floors: at least four rows of positive read_bytes and floor_us (the model has four numbers)."""
    if not isinstance(rows, list) or len(rows) < 4 or not all(isinstance(r, dict) for r in rows):
        raise InputError(f"{field}.floors", f"{path}: must be a list of at least four measured floors")
    for i, row in enumerate(rows):
        limits.check_positive(row.get("read_bytes"), f"{field}.floors[{i}].read_bytes", 1e13)
        limits.check_positive(row.get("floor_us"), f"{field}.floors[{i}].floor_us", 1e8)


def _check_device(device: dict, target: GpuSpec, path, field: str) -> None:
    """The device table names the target GPU (when it names a known one) and has its SM count."""
    name, sm_count = device.get("name"), device.get("sm_count")
    if name is not None and not isinstance(name, str):
        raise InputError(f"{field}.device.name", f"must be a string in {path}, got {name!r}")
    preset = named_preset(name) if name else None
    if preset is not None and preset != target.name:
        raise InputError(f"{field}.device.name", f"{path} was measured on {name!r} ({preset}), but the profile is "
                                                 f"for {target.name}; pass --gpu {preset}, or that GPU's data")
    if sm_count is not None and (not profile_checks.is_number(sm_count) or sm_count != target.sm_count):
        raise InputError(f"{field}.device.sm_count", f"{path} was measured on a GPU of {sm_count!r} SMs, but "
                                                     f"{target.name} has {target.sm_count}")


def _check_bandwidth_curve(rows: list[dict], target: GpuSpec, path, field: str) -> None:
    """A sweep from a few CTAs to saturation, within the target's HBM bandwidth, whose fit is physical."""
    name = f"{field}.bandwidth"
    ctas = sorted({int(r["num_ctas"]) for r in rows})
    few, sms = max(1, target.sm_count // 8), target.sm_count
    if len(ctas) < MIN_CTA_COUNTS or ctas[0] > few or ctas[-1] < sms:
        raise InputError(f"{name}.num_ctas", f"{path}: CTA counts {_listed(ctas)}; a bandwidth curve needs "
                                             f"{MIN_CTA_COUNTS} or more, from {few} or fewer (the per-warp rate) "
                                             f"to {sms} or more ({target.name}'s SMs: saturation)")
    _check_read_rates(rows, target, path, name)
    try:
        per_warp, knee, _ = fit_bandwidth_curve([r["num_ctas"] for r in rows], [r["num_warps"] for r in rows],
                                                [r["read_gbps"] for r in rows])
    except (ArithmeticError, ValueError, np.linalg.LinAlgError):
        per_warp = knee = float("nan")
    low, high = BOUNDS["cta_stream_gbps_per_warp"]
    knee_low, knee_high, _ = profile_checks.COST_RANGES["bw_knee"]
    if not (low <= per_warp <= high and knee_low <= knee <= knee_high):  # False for NaN too
        raise InputError(name, f"{path}: the curve fits {per_warp:.3g} GB/s per warp and knee {knee:.3g}, outside "
                               f"[{low:g}, {high:g}] GB/s and [{knee_low:g}, {knee_high:g}]: not a bandwidth sweep")


def _check_read_rates(rows: list[dict], target: GpuSpec, path, name: str) -> None:
    low, high = DATASHEET_FRACTION
    datasheet = target.hbm_read_gbps
    for i, row in enumerate(rows):
        if row["read_gbps"] > high * datasheet:
            raise InputError(f"{name}[{i}].read_gbps", f"{path}: {row['read_gbps']:g} GB/s is above {high:g}x "
                                                       f"{target.name}'s HBM bandwidth ({datasheet:g} GB/s)")
    peak = max(r["read_gbps"] for r in rows)
    if peak < low * datasheet:
        raise InputError(f"{name}.read_gbps", f"{path}: the curve saturates at {peak:g} GB/s, under {low:g}x "
                                              f"{target.name}'s HBM bandwidth ({datasheet:g} GB/s): not saturated, "
                                              "or measured on a slower GPU")


def _listed(values: list[int], shown: int = 6) -> str:
    text = ", ".join(str(v) for v in values[:shown])
    return text + (", ..." if len(values) > shown else "")
