"""What-if across GPU profiles: the same scenario on several GPUs, best strategy per point.

Input: `scenarios.run.predict_frame(scenario, gpus=...)` (one row per gpu, case and strategy). The
first GPU in the frame is the baseline the others are compared with.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from attnsim.errors import InputError
from attnsim.reports.style import (
    common_settings, context_axis, figure_title, finish, format_tokens, gpu_color, new_grid, panels, shape_label,
    uniform_rows,
)

CASE_KEYS = ["model", "mix", "batch", "q_heads", "kv_heads", "head_dim", "context"]
RAGGED_UPRIGHT_LABELS = 4  # ragged groups whose two-line labels fit side by side in a half-width panel


def best_per_gpu(frame: pd.DataFrame) -> pd.DataFrame:
    """For each (case, gpu): the fastest strategy's row."""
    keys = [k for k in CASE_KEYS if k in frame.columns] + ["gpu"]
    return frame.loc[frame.groupby(keys, sort=False)["time_us"].idxmin()].reset_index(drop=True)


def whatif_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per case: per GPU the best time (µs) and strategy; speedup of each GPU over the first."""
    best = best_per_gpu(frame)
    gpus = list(dict.fromkeys(frame["gpu"]))
    keys = [k for k in ("model", "mix", "batch", "context") if k in best.columns]
    time = best.pivot_table(index=keys, columns="gpu", values="time_us", sort=False)[gpus]
    winner = best.pivot_table(index=keys, columns="gpu", values="strategy", aggfunc="first", sort=False)[gpus]
    table = pd.DataFrame(index=time.index)
    for gpu in gpus:
        table[f"{gpu} µs"] = time[gpu].round(1)
        table[f"{gpu} best"] = winner[gpu]
    for gpu in gpus[1:]:
        table[f"{gpu} vs {gpus[0]}"] = (time[gpus[0]] / time[gpu]).round(2)
    table = table.reset_index()
    if "context" in table:
        table["context"] = [_context_label(c) for c in table["context"]]
    return table


def _context_label(context) -> str:
    text = str(context)
    return format_tokens(int(text)) if text.isdigit() else f"ragged ({len(text.split(';'))} seqs)"


def plot_whatif(frame: pd.DataFrame, out_path=None):
    """Per (model, batch): best time vs context per GPU with its floor, and speedup over the first
    GPU; then, when the frame has ragged mixes, their best time per GPU as grouped bars."""
    best = best_per_gpu(frame)
    uniform = uniform_rows(best)
    ragged = best[pd.to_numeric(best["context"], errors="coerce").isna()]
    if uniform.empty and ragged.empty:
        raise InputError("scenario", "nothing to compare: the frame has no rows")
    gpus = list(dict.fromkeys(frame["gpu"]))
    groups = panels(uniform, keys=("model", "batch")) if not uniform.empty else []
    fig, axes = new_grid(len(groups) + (not ragged.empty), 2, row_height=3.3)
    if ragged_cases(ragged) > RAGGED_UPRIGHT_LABELS:
        fig.set_figheight(fig.get_figheight() + 1.2)  # room for the labels turned 90°
    for (title, rows), (ax_t, ax_r) in zip(groups, axes):
        _draw_group(ax_t, ax_r, rows, gpus)
        ax_t.set_title(f"{title}: fastest strategy per GPU", fontsize=10)
        ax_r.set_title(f"{title}: speedup over {gpus[0]}", fontsize=10)
    if not ragged.empty:
        _draw_ragged(axes[-1], ragged, gpus)
    handles = axes[0][0].get_legend_handles_labels()[0] + ([] if uniform.empty else MARK_HANDLES)
    axes[0][0].legend(handles=handles, fontsize=8, loc="upper left")  # a GPU's colour is the same everywhere
    figure_title(fig, f"What-if: the fastest strategy on {', '.join(gpus)}", common_settings(frame))
    return finish(fig, out_path)


# What the shading and dashes of the time panels mean (kept out of the y-label: it ran into the next row's)
MARK_HANDLES = [Patch(color="grey", alpha=0.25, label="shaded: error band"),
                Line2D([], [], color="grey", linestyle="--", linewidth=0.9,
                       label="dashed: floor (a pure read of the bytes)")]


def ragged_cases(ragged: pd.DataFrame) -> int:
    """Groups of bars: one per (model, mix)."""
    return len(ragged.drop_duplicates(["model", "mix"])) if not ragged.empty else 0


def _draw_ragged(axes, ragged: pd.DataFrame, gpus: list[str]) -> None:
    """Grouped bars, one group per (model, mix): best time (left) and speedup over gpus[0] (right)."""
    ragged = ragged.assign(case=[f"{s} · {m}" for s, m in zip(ragged.apply(shape_label, axis=1), ragged["mix"])])
    time = ragged.pivot_table(index="case", columns="gpu", values="time_us", sort=False)
    width = 0.8 / len(gpus)
    for k, gpu in enumerate(gpus):
        if gpu not in time:
            continue
        x = np.arange(len(time)) - 0.4 + (k + 0.5) * width
        axes[0].bar(x, time[gpu], width, color=gpu_color(gpu), label=gpu_label(ragged, gpu))
        axes[1].bar(x, time[gpus[0]] / time[gpu], width, color=gpu_color(gpu), label=gpu)
    upright = ragged_cases(ragged) <= RAGGED_UPRIGHT_LABELS  # else turned 90°: slanted labels would overlap
    for ax, label in zip(axes, ("time per layer (µs)", speedup_label(gpus[0]))):
        ax.set_xticks(np.arange(len(time)), [c.replace(" · ", "\n") if upright else c for c in time.index],
                      fontsize=8, rotation=0 if upright else 90)
        ax.set_ylabel(label)
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].set_yscale("log")
    axes[0].set_title("ragged mixes: fastest strategy per GPU", fontsize=10)
    axes[1].set_title(f"ragged mixes: speedup over {gpus[0]}", fontsize=10)


def speedup_label(base: str) -> str:
    """time on the base GPU / time on this one, short enough for one row's height."""
    return f"speedup over {base} (×)"


def gpu_label(rows: pd.DataFrame, gpu: str) -> str:
    """'h200 (calibrated)': every GPU says where its numbers come from (the profile's kind; the serving
    terms a row did not fit are the report header's badges, too long for a legend)."""
    source = rows.loc[rows["gpu"] == gpu, "profile_source"] if "profile_source" in rows else ()
    return f"{gpu} ({source.iloc[0].partition(';')[0]})" if len(source) else gpu


def _draw_group(ax_t, ax_r, rows: pd.DataFrame, gpus: list[str]) -> None:
    """Best time per GPU with its error band (shaded) and floor (dashed); speedup over gpus[0]."""
    base = rows[rows["gpu"] == gpus[0]].set_index("context_len")["time_us"]
    for gpu in gpus:
        line, color = rows[rows["gpu"] == gpu].sort_values("context_len"), gpu_color(gpu)
        if line.empty:
            continue
        ax_t.plot(line["context_len"], line["time_us"], marker="o", markersize=3, color=color,
                  label=gpu_label(rows, gpu))
        if "time_lo_us" in line:
            ax_t.fill_between(line["context_len"], line["time_lo_us"], line["time_hi_us"], color=color, alpha=0.15,
                              linewidth=0)
        ax_t.plot(line["context_len"], line["floor_us"], linestyle="--", linewidth=0.9, color=color)
        ratio = base.reindex(line["context_len"]).to_numpy() / line["time_us"].to_numpy()
        ax_r.plot(line["context_len"], ratio, marker="o", markersize=3, color=color, label=gpu)
    ax_t.set(yscale="log", ylabel="time per layer (µs)")
    ax_r.set_ylabel(speedup_label(gpus[0]))
    ax_r.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}×"))
    for ax in (ax_t, ax_r):
        context_axis(ax)
        ax.grid(True, which="both", alpha=0.3)
