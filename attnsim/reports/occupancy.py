"""Occupancy: CTAs per SM that each CUDA limit allows, and the one that binds, per kernel configuration.

Input: rows of `scenarios.run.occupancy_frame` (gpu, kernel, head_dim, threads, regs_per_thread,
smem_bytes, blocks_per_sm, limiter, warps_limit, registers_limit, shared_memory_limit,
blocks_limit, resident_ctas, and the serving settings of the kernels: tp, kv_dtype, page_size, q_len). Launches with the same CTA shape on the same GPU are one
configuration: 'fa2, flashdecoding, streamk / attention' is drawn once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.patches import Patch

from attnsim.reports.style import common_settings, finish, new_grid

LIMITS = ("warps", "registers", "shared_memory", "blocks")
LIMIT_COLORS = {"warps": "#8DA0CB", "registers": "#66C2A5", "shared_memory": "#FC8D62", "blocks": "#A6A6A6"}
SHAPE_COLUMNS = ["gpu", "head_dim", "threads", "regs_per_thread", "smem_bytes"]


def kernel_configs(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per distinct (gpu, CTA shape); `kernel` lists every strategy/launch that uses it."""
    names = frame.groupby(SHAPE_COLUMNS, sort=False)["kernel"].agg(_join_kernels).rename("kernel")
    first = frame.drop(columns="kernel").drop_duplicates(SHAPE_COLUMNS).set_index(SHAPE_COLUMNS)
    return first.join(names).reset_index()


def _join_kernels(kernels) -> str:
    """['fa2/attention', 'streamk/attention'] -> 'fa2, streamk / attention'."""
    by_launch: dict[str, list[str]] = {}
    for kernel in kernels:
        strategy, _, launch = kernel.partition("/")
        by_launch.setdefault(launch, []).append(strategy)
    return "; ".join(f"{', '.join(s)} / {launch}" for launch, s in by_launch.items())


def config_label(row) -> str:
    return (f"{row['kernel']}\n{row['gpu']} · d{row['head_dim']} · {row['threads']} thr · "
            f"{row['regs_per_thread']} regs · {row['smem_bytes'] / 1024:.0f} KiB smem")


def occupancy_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The configurations with their limits, compact enough for a report table."""
    configs = kernel_configs(frame)
    return pd.DataFrame({
        "kernel": configs["kernel"], "gpu": configs["gpu"], "head_dim": configs["head_dim"],
        "CTA: threads / regs / smem": [f"{r.threads} / {r.regs_per_thread} / {r.smem_bytes / 1024:.0f} KiB"
                                       for r in configs.itertuples()],
        "limit by warps / regs / smem / cap": ["{} / {} / {} / {}".format(*(getattr(r, f"{k}_limit") for k in LIMITS))
                                               for r in configs.itertuples()],
        "CTAs/SM": configs["blocks_per_sm"], "binding": configs["limiter"].str.replace("_", " "),
        "resident CTAs": configs["resident_ctas"],
    })


def plot_occupancy(frame: pd.DataFrame, out_path=None):
    """Horizontal bars: CTAs/SM each limit allows per configuration; the binding one outlined. Returns the figure.

    Bars are cut at the hardware's CTAs-per-SM cap (no limit can do better than it); a cut bar is
    labelled with its real value (e.g. shared memory 228 for a kernel that uses none).
    """
    configs = kernel_configs(frame)
    fig, axes = new_grid(1, 1, width=11.0, row_height=0.75 * len(configs) + 1.4)
    ax = axes[0][0]
    y = np.arange(len(configs))[::-1].astype(float)  # first configuration on top
    cap = configs["blocks_limit"].to_numpy()
    width = 0.8 / len(LIMITS)
    for k, limit in enumerate(LIMITS):
        values = configs[f"{limit}_limit"].to_numpy()
        binding = (configs["limiter"] == limit).to_numpy()
        ys = y + 0.3 - k * width
        ax.barh(ys, np.minimum(values, cap * 1.08), height=width * 0.9, color=LIMIT_COLORS[limit],
                edgecolor=np.where(binding, "black", "none"), linewidth=np.where(binding, 1.8, 0))
        for yi, v, c in zip(ys, values, cap):
            if v > c:
                ax.text(c * 1.08, yi, f" {v}", va="center", fontsize=7)
    _annotate(ax, configs, y, cap)
    ax.set_yticks(y, [config_label(r) for _, r in configs.iterrows()], fontsize=8)
    ax.set_xlabel("CTAs per SM allowed by each limit (outlined: the binding limit)")
    ax.set_title(" · ".join(t for t in ("Occupancy: blocks per SM and the binding limit of each kernel configuration",
                                        common_settings(frame)) if t), fontsize=10)
    ax.set_xlim(0, cap.max() * 1.9)
    ax.grid(True, axis="x", alpha=0.3)
    handles = [Patch(color=LIMIT_COLORS[k], label=k.replace("_", " ")) for k in LIMITS]
    # below the axes: inside, it hid the note of the lowest configuration
    fig.legend(handles=handles, fontsize=8, loc="outside lower center", ncol=len(LIMITS), title="CTAs per SM allowed by",
               title_fontsize=8, frameon=False)
    return finish(fig, out_path)


def _annotate(ax, configs: pd.DataFrame, y: np.ndarray, cap: np.ndarray) -> None:
    for yi, c, (_, row) in zip(y, cap, configs.iterrows()):
        limiter = row["limiter"].replace("_", " ")
        text = f"→ {row['blocks_per_sm']} CTAs/SM ({limiter}),\n   {row['resident_ctas']} resident on the GPU"
        ax.text(c * 1.3, yi, text, va="center", fontsize=8)
