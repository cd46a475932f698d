"""Error tables for the report, from a frame with time_us, predicted_us, pct_error, abs_pct_error.

The per-strategy figures (MAPE, median, p90, max) and the rank accuracy are
validation.compare's, as `attnsim validate` prints them; this adds the signed bias and the share
of points within ±10 % / ±25 %, and lays them out as DataFrames. Errors are relative to the
measurement, in percent; a positive bias means the model predicts slower than measured.
"""

from __future__ import annotations

import pandas as pd

from attnsim import strategies
from attnsim.validation.compare import error_metrics, rank_metrics

POINT_COLUMNS = ["gpu", "strategy", "batch", "q_heads", "kv_heads", "head_dim", "context", "time_us",
                 "predicted_us", "pct_error"]


def _extras(rows: pd.DataFrame) -> dict:
    return {"bias_pct": rows["pct_error"].mean(), "within_10pct_share": 100 * (rows["abs_pct_error"] <= 10).mean(),
            "within_25pct_share": 100 * (rows["abs_pct_error"] <= 25).mean()}


def error_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per strategy and one 'all' row: n, MAPE, median, p90, max, bias, and the share of
    points within ±10 % / ±25 % (all in percent)."""
    per_strategy = error_metrics(frame)
    rows = [{"strategy": s, **{k: v for k, v in m.items() if k != "worst"},
             **_extras(frame[frame["strategy"] == s])} for s, m in per_strategy.items()]
    ape = frame["abs_pct_error"]
    rows.append({"strategy": "all", "n": len(frame), "mape": ape.mean(), "median_ape": ape.median(),
                 "p90_ape": ape.quantile(0.9), "max_ape": ape.max(), **_extras(frame)})
    return pd.DataFrame(rows).rename(columns={"mape": "mape_pct", "median_ape": "median_ape_pct",
                                              "p90_ape": "p90_ape_pct", "max_ape": "max_ape_pct"})


def ranking_summary(frame: pd.DataFrame) -> dict:
    """How often the predicted fastest strategy is the measured fastest (over workloads measured
    with every one of the registry's default strategies present); NaN when fewer than two are."""
    ours = [s for s in strategies.default_names() if s in set(frame["strategy"])]
    if len(ours) < 2:
        return {"points": 0, "rank_accuracy": float("nan")}
    return rank_metrics(frame, tuple(ours))


def worst_points(frame: pd.DataFrame, count: int = 10) -> pd.DataFrame:
    """The `count` rows with the largest absolute error."""
    return frame.nlargest(count, "abs_pct_error")[[c for c in POINT_COLUMNS if c in frame.columns]]
