"""Model vs measurement: predict measured rows with the plan that ran, and score the error."""

from __future__ import annotations

import numpy as np
import pandas as pd

from attnsim import strategies
from attnsim.plans.spec import spec_strategy
from attnsim.predict import finite
from attnsim.simulator.engine import simulate
from attnsim.simulator.hardware import GpuSpec
from attnsim.validation.measurements import measured_points


def predict_measurements(frame: pd.DataFrame, spec: GpuSpec) -> pd.DataFrame:
    """The predictable rows with predicted_us, pct_error (signed) and abs_pct_error added, each
    predicted as the concrete plan it ran (`plan`), `requested` saying what it asked for."""
    rows = frame[frame["strategy"].isin(strategies.predictable())].copy()
    points = measured_points(frame, spec)
    results = [finite(simulate(p.plan.schedule, spec), spec) for p in points]
    rows["requested"] = [p.requested for p in points]
    rows["plan"] = [p.plan.spec for p in points]
    rows["kv_bytes"] = [p.workload.kv_bytes() for p in points]
    rows["predicted_us"] = [r.total_us for r in results]
    rows["family"] = [r.schedule.attention.family for r in results]  # the regime key of error bands
    rows["pct_error"] = (rows["predicted_us"] / rows["time_us"] - 1.0) * 100.0
    rows["abs_pct_error"] = rows["pct_error"].abs()
    return rows.reset_index(drop=True)


def _key_columns(frame: pd.DataFrame) -> list[str]:
    keys = ["batch", "q_heads", "kv_heads", "head_dim", "context", "dtype"]
    return keys + [c for c in ("contexts", "kv_dtype", "page_size", "q_len") if c in frame.columns]


def asked_strategy(rows: pd.DataFrame) -> pd.Series:
    """The strategy each row asked for ('auto' for the planner's choice, whichever plan ran)."""
    asked = rows["requested"] if "requested" in rows.columns else rows["strategy"]
    return asked.astype(str).map(spec_strategy)


def error_metrics(rows: pd.DataFrame) -> dict[str, dict]:
    """Per strategy asked for: n, MAPE, median and p90 absolute % error, the worst points."""
    out = {}
    for strategy, group in rows.groupby(asked_strategy(rows)):
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


def rank_metrics(rows: pd.DataFrame, names=None, tolerance_pct: float = 5.0) -> dict:
    """How often the predicted fastest of `names` (default: the registry's defaults) is the measured
    fastest (exact, and within tolerance), over workloads measured with all of them; and the error
    of each predicted speedup ratio against the last of `names`."""
    names = tuple(names or strategies.default_names())
    base = names[-1]
    asked = rows["requested"] if "requested" in rows.columns else rows["strategy"]
    # the default plans only: rows that asked for explicit plan options are not ranked
    ours = rows.assign(strategy=asked)[asked.isin(names) & _default_plan(rows)]
    keys = _key_columns(ours)
    exact = near = total = decisive = decisive_right = 0
    ratio_errors: dict[str, list[float]] = {}
    for _, group in ours.groupby(keys, dropna=False):
        if group["strategy"].nunique() < len(names):
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
        for other in names[:-1]:
            pred_ratio = by.loc[other, "predicted_us"] / by.loc[base, "predicted_us"]
            meas_ratio = by.loc[other, "time_us"] / by.loc[base, "time_us"]
            ratio_errors.setdefault(f"{other}/{base}", []).append(abs(pred_ratio / meas_ratio - 1) * 100)
    return {
        "points": total, "rank_accuracy": exact / total if total else None,  # None, not NaN: JSON
        f"rank_accuracy_within_{tolerance_pct:g}pct": near / total if total else None,
        "decisive_points": decisive,
        "rank_accuracy_decisive": decisive_right / decisive if decisive else None,
        "speedup_ratio_mape": {k: float(np.mean(v)) for k, v in ratio_errors.items()},
    }


def _default_plan(rows: pd.DataFrame) -> pd.Series:
    """Rows that asked for a strategy's default plan: a `requested` name without options, or (older
    CSVs without `requested`) no options."""
    if "requested" in rows.columns:
        return ~rows["requested"].astype(str).str.contains(":")
    if "options" in rows.columns:
        return rows["options"].isna() | (rows["options"].astype(str).str.strip() == "")
    return pd.Series(True, index=rows.index)


def overall_mape(rows: pd.DataFrame) -> float | None:
    return float(rows["abs_pct_error"].mean()) if len(rows) else None
