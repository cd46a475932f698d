"""Speedup / time vs context length, one line per strategy."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from attnsim.fileio import save_figure  # noqa: E402


def plot_speedup(frame: pd.DataFrame, out_path=None):
    """Left: time vs context (log-log) with the KV-bytes floor; right: speedup vs FA2. Returns the figure."""
    frame = frame.assign(context_tokens=pd.to_numeric(frame["context"], errors="coerce")).dropna(subset=["context_tokens"])
    fig, (ax_t, ax_s) = plt.subplots(1, 2, figsize=(11, 4.2))
    for strategy, rows in frame.groupby("strategy", sort=False):
        rows = rows.sort_values("context_tokens")
        ax_t.plot(rows["context_tokens"], rows["time_us"], marker="o", label=strategy)
        ax_s.plot(rows["context_tokens"], rows["speedup_vs_fa2"], marker="o", label=strategy)
    floor = frame.drop_duplicates("context_tokens").sort_values("context_tokens")
    if "floor_us" in floor:
        ax_t.plot(floor["context_tokens"], floor["floor_us"], "k--", label="floor (KV bytes / bandwidth)")
    ax_t.set(xscale="log", yscale="log", xlabel="context length (tokens)", ylabel="time (µs)", title="Decode time")
    ax_s.set(xscale="log", xlabel="context length (tokens)", ylabel="speedup vs fa2", title="Speedup vs FA2")
    for ax in (ax_t, ax_s):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    if out_path:
        save_figure(fig, out_path, dpi=120)
    return fig
