"""Prediction vs measurement figures: log-log scatter with y = x, and error vs context length.

Input: the frame from simulator.validation.predict_frame (time_us measured, predicted_us,
pct_error, strategy, context).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from attnsim.fileio import save_figure  # noqa: E402


def plot_predicted_vs_measured(frame: pd.DataFrame, out_path=None, title: str = "Predicted vs measured"):
    fig, ax = plt.subplots(figsize=(6.2, 5.6))
    for strategy, rows in frame.groupby("strategy"):
        ape = rows["abs_pct_error"].mean()
        ax.scatter(rows["time_us"], rows["predicted_us"], s=12, alpha=0.7, label=f"{strategy} (MAPE {ape:.1f}%)")
    lo = float(min(frame["time_us"].min(), frame["predicted_us"].min())) * 0.8
    hi = float(max(frame["time_us"].max(), frame["predicted_us"].max())) * 1.25
    ax.plot([lo, hi], [lo, hi], "k-", lw=1, label="y = x")
    ax.fill_between([lo, hi], [lo * 0.9, hi * 0.9], [lo * 1.1, hi * 1.1], color="grey", alpha=0.15, label="±10%")
    ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi), xlabel="measured time (µs)",
           ylabel="predicted time (µs)", title=title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    if out_path:
        save_figure(fig, out_path, dpi=120)
    return fig


def plot_error_vs_context(frame: pd.DataFrame, out_path=None):
    """Signed % error of each point against its (max) context length, per strategy."""
    tokens = pd.to_numeric(frame["context"].astype(str).str.split(";").str[0], errors="coerce")
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    rng = np.random.default_rng(0)
    for strategy, rows in frame.assign(tokens=tokens).groupby("strategy"):
        jitter = np.exp(rng.uniform(-0.08, 0.08, len(rows)))  # spread points that share a context
        ax.scatter(rows["tokens"] * jitter, rows["pct_error"], s=10, alpha=0.6, label=strategy)
    ax.axhline(0, color="k", lw=1)
    for bound in (-10, -5, 5, 10):
        ax.axhline(bound, color="grey", lw=0.6, ls="--")
    ax.set(xscale="log", xlabel="context length (tokens)", ylabel="prediction error (%)",
           title="Error vs context length")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    if out_path:
        save_figure(fig, out_path, dpi=120)
    return fig
