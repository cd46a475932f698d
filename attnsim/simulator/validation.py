"""Model vs measurement: turn a measurements CSV into planned points, predict them, score the error.

A measurements file has one row per (strategy, workload) with columns gpu, strategy, batch,
q_heads, kv_heads, head_dim, context, dtype, time_us; optionally `contexts` (';'-separated lengths
of a ragged batch), and the kernel's own plan inputs (num_warps, kv_tile_tokens, registers,
smem_bytes, grid, splits) so the prediction plans exactly the work that ran.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from attnsim.errors import InputError
from attnsim.simulator.calibration import MeasuredPoint
from attnsim.simulator.engine import simulate
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.occupancy import CtaResources
from attnsim.simulator.partition import PlanConfig, plan
from attnsim.simulator.predict import plan_config_for
from attnsim.simulator.workload import DecodeWorkload

REQUIRED = ("gpu", "strategy", "batch", "q_heads", "kv_heads", "head_dim", "context", "dtype", "time_us")
PREDICTABLE = ("fa2", "flashdecoding", "streamk", "torch-flash")
OURS = ("fa2", "flashdecoding", "streamk")
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


def row_config(row, workload: DecodeWorkload, spec: GpuSpec) -> PlanConfig:
    """The plan inputs the measured kernel ran with, filled from the profile where the row is silent."""
    strategy = row["strategy"]
    warps, regs, smem = _optional(row, "num_warps"), _optional(row, "registers"), _optional(row, "smem_bytes")
    resources = CtaResources(32 * warps, regs, smem) if None not in (warps, regs, smem) else None
    config = PlanConfig(
        kv_tile_tokens=_optional(row, "kv_tile_tokens"), num_warps=warps or 4, resources=resources,
        splits=_optional(row, "splits") if strategy in ("flashdecoding", "torch-flash") else None,
        grid=_optional(row, "grid") if strategy == "streamk" else None,
    )
    if strategy == "torch-flash":  # FA2's CUDA kernel: its config is the plan's own, not Triton's
        return PlanConfig(splits=config.splits)
    return plan_config_for(strategy, workload, spec, config)


def measured_points(frame: pd.DataFrame, spec: GpuSpec) -> list[MeasuredPoint]:
    """Rows of predictable strategies as MeasuredPoints (others, e.g. torch-cudnn, are skipped)."""
    points = []
    for idx, row in frame[frame["strategy"].isin(PREDICTABLE)].iterrows():
        try:
            workload = row_workload(row)
            points.append(MeasuredPoint(row["strategy"], workload, float(row["time_us"]),
                                        row_config(row, workload, spec)))
        except (InputError, ValueError) as exc:
            raise InputError("measurements", f"row {idx + 2}: {exc}") from None
    return points


def predict_frame(frame: pd.DataFrame, spec: GpuSpec) -> pd.DataFrame:
    """The predictable rows with predicted_us, pct_error (signed) and abs_pct_error added."""
    rows = frame[frame["strategy"].isin(PREDICTABLE)].copy()
    points = measured_points(frame, spec)
    rows["predicted_us"] = [simulate(plan(p.strategy, p.workload, spec, p.config), spec).total_us for p in points]
    rows["pct_error"] = (rows["predicted_us"] / rows["time_us"] - 1.0) * 100.0
    rows["abs_pct_error"] = rows["pct_error"].abs()
    return rows.reset_index(drop=True)


def _key_columns(frame: pd.DataFrame) -> list[str]:
    keys = ["batch", "q_heads", "kv_heads", "head_dim", "context", "dtype"]
    return keys + (["contexts"] if "contexts" in frame.columns else [])


def error_metrics(rows: pd.DataFrame) -> dict[str, dict]:
    """Per strategy: n, MAPE, median and p90 absolute % error, the worst points."""
    out = {}
    for strategy, group in rows.groupby("strategy"):
        ape = group["abs_pct_error"].to_numpy()
        worst = group.nlargest(3, "abs_pct_error")
        out[strategy] = {
            "n": int(len(group)), "mape": float(ape.mean()), "median_ape": float(np.median(ape)),
            "p90_ape": float(np.percentile(ape, 90)), "max_ape": float(ape.max()),
            "worst": [_describe(r) for _, r in worst.iterrows()],
        }
    return out


def _describe(row) -> str:
    return (f"b{row['batch']} h{row['q_heads']}/{row['kv_heads']} d{row['head_dim']} ctx {row['context']}: "
            f"measured {row['time_us']:.1f} us, predicted {row['predicted_us']:.1f} us ({row['pct_error']:+.1f}%)")


def rank_metrics(rows: pd.DataFrame, strategies=OURS, tolerance_pct: float = 5.0) -> dict:
    """How often the predicted fastest of `strategies` is the measured fastest (exact, and within tolerance)."""
    ours = rows[rows["strategy"].isin(strategies)]
    keys = _key_columns(ours)
    exact = near = total = decisive = decisive_right = 0
    ratio_errors: dict[str, list[float]] = {}
    for _, group in ours.groupby(keys, dropna=False):
        if group["strategy"].nunique() < len(strategies):
            continue
        by = group.set_index("strategy")
        total += 1
        pred_best, meas_best = by["predicted_us"].idxmin(), by["time_us"].idxmin()
        exact += pred_best == meas_best
        near += by.loc[pred_best, "time_us"] <= by["time_us"].min() * (1 + tolerance_pct / 100)
        first, second = np.sort(by["time_us"].to_numpy())[:2]
        if second > first * (1 + tolerance_pct / 100):  # the measured winner wins clearly
            decisive += 1
            decisive_right += pred_best == meas_best
        for other in strategies:
            if other != "streamk" and "streamk" in by.index:
                pred_ratio = by.loc[other, "predicted_us"] / by.loc["streamk", "predicted_us"]
                meas_ratio = by.loc[other, "time_us"] / by.loc["streamk", "time_us"]
                ratio_errors.setdefault(f"{other}/streamk", []).append(abs(pred_ratio / meas_ratio - 1) * 100)
    return {
        "points": total, "rank_accuracy": exact / total if total else float("nan"),
        f"rank_accuracy_within_{tolerance_pct:g}pct": near / total if total else float("nan"),
        "decisive_points": decisive,
        "rank_accuracy_decisive": decisive_right / decisive if decisive else float("nan"),
        "speedup_ratio_mape": {k: float(np.mean(v)) for k, v in ratio_errors.items()},
    }


def overall_mape(rows: pd.DataFrame) -> float:
    return float(rows["abs_pct_error"].mean()) if len(rows) else float("nan")
