"""Measurement files -> planned points: one row per (strategy, workload) as `attnsim bench` writes them.

Columns: gpu, strategy, batch, q_heads, kv_heads, head_dim, context, dtype, time_us; optionally
`contexts` (';'-separated lengths of a ragged batch), and the kernel's own plan inputs (num_warps,
num_stages, kv_tile, registers, smem_bytes, grid, splits) so the prediction plans exactly the work
that ran — through the same resolver the launcher used (attnsim.resolve).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from attnsim import strategies
from attnsim.errors import InputError
from attnsim.resolve import resolve
from attnsim.simulator.calibration import MeasuredPoint
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.occupancy import CtaResources
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.workload import DecodeWorkload

REQUIRED = ("gpu", "strategy", "batch", "q_heads", "kv_heads", "head_dim", "context", "dtype", "time_us")
_ALIASES = {"registers": ("registers", "n_regs", "regs", "regs_per_thread"),
            "smem_bytes": ("smem_bytes", "shared_memory", "shared_bytes", "smem"),
            "kv_tile_tokens": ("kv_tile_tokens", "kv_tile", "block_n")}


def load_measurements(path: str | Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise InputError("measurements", f"cannot read {path}: {exc}") from None
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise InputError("measurements", f"{path} lacks column(s) {', '.join(missing)}")
    if "status" in frame.columns:  # `attnsim bench` keeps failed or unavailable points as rows
        frame = frame[frame["status"].fillna("ok") == "ok"].reset_index(drop=True)
    bad = frame[pd.to_numeric(frame["time_us"], errors="coerce").fillna(-1) <= 0]
    if len(bad):
        raise InputError("measurements", f"{path} row {bad.index[0] + 2}: time_us must be a positive number")
    return frame


def _optional(row, name):
    for col in _ALIASES.get(name, (name,)):
        if col in row and not _is_missing(row[col]):
            return int(row[col])
    return None


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def row_workload(row) -> DecodeWorkload:
    contexts = row.get("contexts")
    if not _is_missing(contexts) and ";" in str(contexts):
        context = [int(c) for c in str(contexts).split(";")]
    elif ";" in str(row["context"]):
        context = [int(c) for c in str(row["context"]).split(";")]
    else:
        context = int(row["context"])
    return DecodeWorkload.build(int(row["batch"]), int(row["q_heads"]), int(row["kv_heads"]),
                                int(row["head_dim"]), context, dtype=str(row["dtype"]))


def row_options(row) -> PlanConfig:
    """The plan inputs a measured row records (the resolver drops those its strategy does not take)."""
    warps, regs, smem = _optional(row, "num_warps"), _optional(row, "registers"), _optional(row, "smem_bytes")
    return PlanConfig(
        kv_tile_tokens=_optional(row, "kv_tile_tokens"), num_warps=warps, num_stages=_optional(row, "num_stages"),
        resources=CtaResources(32 * warps, regs, smem) if None not in (warps, regs, smem) else None,
        splits=_optional(row, "splits"), grid=_optional(row, "grid"),
    )


def recorded_options(row) -> PlanConfig:
    """A row's plan inputs. A baseline's plan columns (grid, splits) are what the model assumed the
    library launched when the row was written (kernels/torch_baselines.py), not measurements: its plan
    comes from its plan file alone, so a revised plan is never overridden by an older one's guess."""
    return PlanConfig() if strategies.get(row["strategy"]).baseline else row_options(row)


def measured_points(frame: pd.DataFrame, spec: GpuSpec) -> list[MeasuredPoint]:
    """Rows of predictable strategies as MeasuredPoints with their resolved plan configuration
    (rows of strategies the model does not cover, e.g. a baseline not modelled yet, are skipped)."""
    points = []
    for idx, row in frame[frame["strategy"].isin(strategies.predictable())].iterrows():
        try:
            workload = row_workload(row)
            config = resolve(row["strategy"], workload, spec, recorded_options(row)).config
            points.append(MeasuredPoint(row["strategy"], workload, float(row["time_us"]), config))
        except (InputError, ValueError) as exc:
            raise InputError("measurements", f"row {idx + 2}: {exc}") from None
    return points
