"""Prediction vs measurement figures: log-log scatter with y = x, and error vs context length.

Input: the frame from simulator.validation.predict_frame or scenarios.measurements.measured_frame
(time_us measured, predicted_us, pct_error, abs_pct_error, strategy, context). The `draw_*`
functions fill one axes; `plot_validation` puts both side by side (`attnsim plot validation`, the
report), the `plot_*` wrappers draw one each (`attnsim validate --out-dir`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from attnsim.reports.style import finish, new_grid, strategy_color

BAND_PCT = 10.0  # the ±band drawn around y = x and around zero error


def draw_predicted_vs_measured(ax, frame: pd.DataFrame, title: str = "Predicted vs measured") -> None:
    for strategy, rows in frame.groupby("strategy"):
        ape = rows["abs_pct_error"].mean()
        ax.scatter(rows["time_us"], rows["predicted_us"], s=12, alpha=0.7, color=strategy_color(strategy),
                   label=f"{strategy} (MAPE {ape:.1f}%)")
    lo = float(min(frame["time_us"].min(), frame["predicted_us"].min())) * 0.8
    hi = float(max(frame["time_us"].max(), frame["predicted_us"].max())) * 1.25
    ax.plot([lo, hi], [lo, hi], "k-", lw=1, label="y = x")
    ax.fill_between([lo, hi], [lo * (1 - BAND_PCT / 100), hi * (1 - BAND_PCT / 100)],
                    [lo * (1 + BAND_PCT / 100), hi * (1 + BAND_PCT / 100)], color="grey", alpha=0.15,
                    label=f"±{BAND_PCT:g}%")
    ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi), xlabel="measured time (µs)",
           ylabel="predicted time (µs)", title=title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)


def draw_error_vs_context(ax, frame: pd.DataFrame) -> None:
    """Signed % error of each point against its (first) context length, per strategy."""
    tokens = pd.to_numeric(frame["context"].astype(str).str.split(";").str[0], errors="coerce")
    rng = np.random.default_rng(0)
    for strategy, rows in frame.assign(tokens=tokens).groupby("strategy"):
        jitter = np.exp(rng.uniform(-0.08, 0.08, len(rows)))  # spread points that share a context
        ax.scatter(rows["tokens"] * jitter, rows["pct_error"], s=10, alpha=0.6, color=strategy_color(strategy),
                   label=strategy)
    ax.axhline(0, color="k", lw=1)
    for bound in (-BAND_PCT, -BAND_PCT / 2, BAND_PCT / 2, BAND_PCT):
        ax.axhline(bound, color="grey", lw=0.6, ls="--")
    ax.set(xscale="log", xlabel="context length (tokens)", ylabel="prediction error (%)",
           title="Error vs context length")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)


def plot_predicted_vs_measured(frame: pd.DataFrame, out_path=None, title: str = "Predicted vs measured"):
    fig, axes = new_grid(1, 1, width=6.2, row_height=5.2)
    draw_predicted_vs_measured(axes[0][0], frame, title)
    return finish(fig, out_path)


def plot_error_vs_context(frame: pd.DataFrame, out_path=None):
    fig, axes = new_grid(1, 1, width=7.5, row_height=4.1)
    draw_error_vs_context(axes[0][0], frame)
    return finish(fig, out_path)


def plot_validation(frame: pd.DataFrame, out_path=None):
    """Both panels side by side: predicted vs measured, and signed error vs context. Returns the figure."""
    fig, axes = new_grid(1, 2, width=12.0, row_height=4.8)
    overall = frame["abs_pct_error"].mean()
    title = f"Predicted vs measured: MAPE {overall:.1f}% over {len(frame)} points"
    draw_predicted_vs_measured(axes[0][0], frame, title)
    draw_error_vs_context(axes[0][1], frame)
    return finish(fig, out_path)
